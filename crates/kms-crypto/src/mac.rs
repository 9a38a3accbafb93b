//! HMAC-SHA-256 as a generic primitive: ferrokms's own tokens (forward access tokens), SigV4
//! signing keys, webhook signatures. A secret key that never prints, tags, and constant-time
//! verification.

use aws_lc_rs::hmac;

use crate::SecretBytes;

/// Length of a tag in bytes.
pub const TAG_LEN: usize = 32;

/// An HMAC-SHA-256 key, held as keyed state (its inner and outer pads already hashed), so a
/// tag costs only the data's own hashing; aws-lc cleanses that state on drop.
#[derive(Clone)]
pub struct MacKey {
    key: hmac::Key,
}

impl MacKey {
    /// A key from secret bytes (for example unwrapped from storage).
    pub fn new(secret: &SecretBytes) -> Self {
        Self::from_bytes(secret.expose_secret())
    }

    /// A key from bytes the caller holds (and zeroizes) itself, such as an intermediate SigV4
    /// key or a configured webhook secret. Any length is accepted, as HMAC allows.
    pub fn from_bytes(key: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key) }
    }

    /// The tag of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        self.sign_into(data, &mut out);
        out
    }

    /// Writes the tag of `data` into `out`, so that a caller deriving keys from tags (SigV4)
    /// can keep the only copy in a buffer that zeroizes.
    pub fn sign_into(&self, data: &[u8], out: &mut [u8; TAG_LEN]) {
        let tag = hmac::sign(&self.key, data);
        // HMAC-SHA-256 tags are always TAG_LEN bytes.
        for (o, t) in out.iter_mut().zip(tag.as_ref()) {
            *o = *t;
        }
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, data, tag).is_ok()
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe").
    #[test]
    fn rfc4231_case_2() {
        let key = MacKey::new(&SecretBytes::new(b"Jefe".to_vec()));
        let tag = key.sign(b"what do ya want for nothing?");
        assert_eq!(hex::encode(tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(key.verify(b"what do ya want for nothing?", &tag));
        assert!(!key.verify(b"what do ya want for nothing!", &tag));
        assert!(!key.verify(b"what do ya want for nothing?", &tag[..31]));
        assert_eq!(format!("{key:?}"), "MacKey([REDACTED])");
    }
}
