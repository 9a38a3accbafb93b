//! SHA-2 digests outside the ciphers: SHA-256 for audit-chain hashes, token digests, SigV4
//! canonical requests and advisory-lock keys; SHA-384 and SHA-512 for the digests a caller
//! signs with `MessageType=DIGEST`.

use aws_lc_rs::digest;

/// Length of a SHA-256 digest in bytes.
pub const SHA256_LEN: usize = 32;

/// `SHA-256(data)`.
pub fn sha256(data: &[u8]) -> [u8; SHA256_LEN] {
    let mut out = [0u8; SHA256_LEN];
    copy(digest::digest(&digest::SHA256, data).as_ref(), &mut out);
    out
}

/// `SHA-384(data)`.
pub fn sha384(data: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    copy(digest::digest(&digest::SHA384, data).as_ref(), &mut out);
    out
}

/// `SHA-512(data)`.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    copy(digest::digest(&digest::SHA512, data).as_ref(), &mut out);
    out
}

/// An incremental SHA-256, for data that arrives in pieces.
#[derive(Clone)]
pub struct Sha256(digest::Context);

impl Sha256 {
    /// A fresh hash.
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; SHA256_LEN] {
        let mut out = [0u8; SHA256_LEN];
        copy(self.0.finish().as_ref(), &mut out);
        out
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

/// Copies a digest into `out`, which has the digest's length.
fn copy<const N: usize>(digest: &[u8], out: &mut [u8; N]) {
    for (o, d) in out.iter_mut().zip(digest) {
        *o = *d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-2 example "abc", and the same bytes hashed in pieces.
    #[test]
    fn fips_180_abc() {
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex::encode(sha256(b"abc")), expected);
        let mut h = Sha256::new();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(hex::encode(h.finish()), expected);
    }
}
