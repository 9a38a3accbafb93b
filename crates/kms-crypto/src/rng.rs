//! The system CSPRNG.

/// Random bytes from aws-lc-rs's system-seeded generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRng;

impl kms_core::Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        // aws-lc-rs's fill aborts the process rather than returning weak bytes; an error here
        // would mean the OS entropy source is gone, and continuing would be worse than stopping.
        if aws_lc_rs::rand::fill(buf).is_err() {
            std::process::abort();
        }
    }
}
