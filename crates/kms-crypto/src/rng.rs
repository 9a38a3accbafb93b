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

/// Random bytes for values that are public once used — AES-GCM nonces, blob salts, request
/// and event ids — drawn from an inner generator [`PublicRandom::POOL`] bytes at a time.
///
/// Each draw of aws-lc's generator has a fixed cost, whatever its size: the one salt-and-nonce
/// draw per Encrypt was about 2% of the server's time per request (profiled). These
/// values must be unpredictable and never repeat, which bytes of a larger draw are as much as
/// those of a small one: every byte of the pool is handed out once and wiped as it is. Secret
/// values (key material, data keys, `GenerateRandom`) do not come from here: they are drawn
/// directly, so that no secret waits in memory before it is needed.
pub struct PublicRandom {
    inner: std::sync::Arc<dyn kms_core::Rng>,
    pool: std::sync::Mutex<Pool>,
}

struct Pool {
    bytes: [u8; PublicRandom::POOL],
    used: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

impl PublicRandom {
    /// Bytes drawn at a time: the 28-byte salts and nonces of 36 Encrypts, or the 32 bytes of
    /// request and event ids of 32 requests.
    pub const POOL: usize = 1024;
    /// Larger requests bypass the pool (they would spend most of it).
    pub const MAX_POOLED: usize = 64;

    /// A pool over `inner`, empty until first used.
    pub fn new(inner: std::sync::Arc<dyn kms_core::Rng>) -> Self {
        Self { inner, pool: std::sync::Mutex::new(Pool { bytes: [0; Self::POOL], used: Self::POOL }) }
    }
}

impl std::fmt::Debug for PublicRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicRandom").finish_non_exhaustive()
    }
}

impl kms_core::Rng for PublicRandom {
    fn fill(&self, buf: &mut [u8]) {
        if buf.len() > Self::MAX_POOLED {
            self.inner.fill(buf);
            return;
        }
        // A poisoned lock still guards whole draws: every byte is wiped as it is handed out,
        // so nothing a panicking holder left half done can be handed out twice.
        let mut pool = self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.used + buf.len() > Self::POOL {
            self.inner.fill(&mut pool.bytes);
            pool.used = 0;
        }
        let start = pool.used;
        if let Some(next) = pool.bytes.get_mut(start..start + buf.len()) {
            buf.copy_from_slice(next);
            next.fill(0);
        }
        pool.used += buf.len();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kms_core::Rng;

    use super::*;

    /// Fills with a running byte count and counts its draws and their sizes.
    #[derive(Default)]
    struct Counting {
        draws: AtomicUsize,
        next: AtomicUsize,
        sizes: std::sync::Mutex<Vec<usize>>,
    }

    impl Rng for Counting {
        fn fill(&self, buf: &mut [u8]) {
            self.draws.fetch_add(1, Ordering::SeqCst);
            self.sizes.lock().unwrap().push(buf.len());
            for b in buf {
                // A running count modulo a prime: no stretch of the stream repeats at a
                // power-of-two distance.
                let n = self.next.fetch_add(1, Ordering::SeqCst);
                *b = (n % 251) as u8;
            }
        }
    }

    /// One draw serves as many small fills as fit in the pool; each fill gets the next unused
    /// bytes of the draw, in order; the fill that does not fit draws again (the leftover tail
    /// of the old draw is discarded, not reused).
    #[test]
    fn small_fills_share_one_draw_and_never_reuse_a_byte() {
        let inner = Arc::new(Counting::default());
        let rng = PublicRandom::new(Arc::clone(&inner) as Arc<dyn Rng>);
        let per_pool = PublicRandom::POOL / 28;
        let mut seen = Vec::new();
        for _ in 0..per_pool {
            let mut salt_and_nonce = [0u8; 28];
            rng.fill(&mut salt_and_nonce);
            seen.extend_from_slice(&salt_and_nonce);
        }
        assert_eq!(inner.draws.load(Ordering::SeqCst), 1);
        let stream: Vec<u8> = (0..seen.len()).map(|n| (n % 251) as u8).collect();
        assert_eq!(seen, stream, "each byte of the draw handed out once, in order");
        assert!(rng.pool.lock().unwrap().bytes[..seen.len()].iter().all(|&b| b == 0), "spent bytes are wiped");

        let mut next = [0u8; 28];
        rng.fill(&mut next);
        assert_eq!(inner.draws.load(Ordering::SeqCst), 2);
        let second_draw_starts = PublicRandom::POOL;
        let expected: Vec<u8> = (second_draw_starts..second_draw_starts + 28).map(|n| (n % 251) as u8).collect();
        assert_eq!(next.to_vec(), expected, "the next fill starts a fresh draw");
    }

    /// A fill larger than [`PublicRandom::MAX_POOLED`] goes to the inner generator as it is,
    /// leaving the pool untouched.
    #[test]
    fn large_fills_bypass_the_pool() {
        let inner = Arc::new(Counting::default());
        let rng = PublicRandom::new(Arc::clone(&inner) as Arc<dyn Rng>);
        let mut small = [0u8; 16];
        rng.fill(&mut small);
        let mut large = [0u8; PublicRandom::MAX_POOLED + 1];
        rng.fill(&mut large);
        assert_eq!(*inner.sizes.lock().unwrap(), vec![PublicRandom::POOL, PublicRandom::MAX_POOLED + 1]);
        assert_eq!(rng.pool.lock().unwrap().used, 16);
    }

    /// Two threads filling at once never get the same bytes.
    #[test]
    fn concurrent_fills_get_distinct_bytes() {
        let rng = Arc::new(PublicRandom::new(Arc::new(SystemRng)));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let rng = Arc::clone(&rng);
                std::thread::spawn(move || {
                    (0..2_000)
                        .map(|_| {
                            let mut id = [0u8; 16];
                            rng.fill(&mut id);
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<[u8; 16]> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }
}
