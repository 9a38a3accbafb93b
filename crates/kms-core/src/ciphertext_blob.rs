//! The ciphertext blob: what Encrypt and GenerateDataKey return and Decrypt accepts.
//!
//! Layout of version 1 (all fixed-size fields; see `docs/ciphertext-blob.md`):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 2 | magic `0xFE 0x4B` |
//! | 2 | 1 | format version, `0x01` |
//! | 3 | 1 | algorithm, `0x01` = AES-256-GCM under a symmetric KMS key |
//! | 4 | 16 | key id (UUID bytes) |
//! | 20 | 32 | key-material id |
//! | 52 | 16 | key-derivation salt |
//! | 68 | 12 | GCM nonce |
//! | 80 | n + 16 | GCM ciphertext followed by the 16-byte tag |
//!
//! Each blob is sealed under its own key, derived from the material and the random salt, so
//! one material can seal far more than the 2^32 messages a single GCM key may take with random
//! nonces. The 80-byte header is authenticated: the GCM additional data is the header followed
//! by the canonical encryption context, so any change to the header, the sealed bytes or the
//! context fails authentication.

use crate::ids::{KeyId, MaterialId};

/// The two magic bytes that open every blob.
pub const MAGIC: [u8; 2] = [0xFE, 0x4B];
/// The current format version.
pub const VERSION_1: u8 = 0x01;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 80;
/// Length of the per-blob key-derivation salt.
pub const SALT_LEN: usize = 16;
/// Length of the AES-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;

/// The algorithm that sealed a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobAlgorithm {
    /// AES-256-GCM with a symmetric KMS key's material.
    SymmetricAes256Gcm,
}

impl BlobAlgorithm {
    const fn code(self) -> u8 {
        match self {
            Self::SymmetricAes256Gcm => 0x01,
        }
    }

    const fn from_code(code: u8) -> Option<Self> {
        match code {
            0x01 => Some(Self::SymmetricAes256Gcm),
            _ => None,
        }
    }
}

/// The header fields of a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    /// How the payload was sealed.
    pub algorithm: BlobAlgorithm,
    /// The KMS key that sealed it.
    pub key_id: KeyId,
    /// Which of the key's materials sealed it.
    pub material_id: MaterialId,
    /// The salt from which the blob's own key is derived.
    pub salt: [u8; SALT_LEN],
    /// The GCM nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl BlobHeader {
    /// The 80-byte encoded header, which is also the first part of the additional data.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [&[u8]; 7] = [
            &MAGIC,
            &[VERSION_1],
            &[self.algorithm.code()],
            self.key_id.as_bytes(),
            self.material_id.as_bytes(),
            &self.salt,
            &self.nonce,
        ];
        let mut at = 0;
        for field in fields {
            if let Some(dst) = out.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field);
            }
            at += field.len();
        }
        out
    }

    /// The additional authenticated data: header, then the canonical encryption context.
    pub fn aad(&self, canonical_context: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + canonical_context.len());
        aad.extend_from_slice(&self.encode());
        aad.extend_from_slice(canonical_context);
        aad
    }
}

/// A blob split into its header and sealed payload (ciphertext followed by tag), borrowing the
/// input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob<'a> {
    /// The header.
    pub header: BlobHeader,
    /// Ciphertext followed by the 16-byte GCM tag.
    pub sealed: &'a [u8],
}

/// Why bytes are not a blob of ours. Callers report every case as `InvalidCiphertextException`;
/// the variants exist for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Shorter than a header and a tag.
    #[error("ciphertext blob is too short")]
    TooShort,
    /// Does not start with our magic bytes.
    #[error("ciphertext blob has an unknown magic")]
    Magic,
    /// A version this build does not know.
    #[error("ciphertext blob version {0} is not supported")]
    Version(u8),
    /// An algorithm code this build does not know.
    #[error("ciphertext blob algorithm {0} is not supported")]
    Algorithm(u8),
}

/// Encodes a blob: the header followed by the sealed payload.
pub fn encode(header: &BlobHeader, sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(sealed);
    out
}

/// Decodes a blob without copying its payload. Never panics, whatever the input.
///
/// # Errors
/// [`BlobError`] for anything that is not a version-1 blob of ours.
pub fn decode(bytes: &[u8]) -> Result<Blob<'_>, BlobError> {
    if bytes.len() < HEADER_LEN + TAG_LEN {
        return Err(BlobError::TooShort);
    }
    let (header, sealed) = bytes.split_at(HEADER_LEN);
    let (magic, rest) = header.split_at(2);
    if magic != MAGIC {
        return Err(BlobError::Magic);
    }
    let ([version, algorithm], rest) = split_array::<2>(rest);
    if version != VERSION_1 {
        return Err(BlobError::Version(version));
    }
    let algorithm = BlobAlgorithm::from_code(algorithm).ok_or(BlobError::Algorithm(algorithm))?;
    let (key_id, rest) = split_array::<16>(rest);
    let (material, rest) = split_array::<32>(rest);
    let (salt, rest) = split_array::<SALT_LEN>(rest);
    let (nonce, _) = split_array::<NONCE_LEN>(rest);
    Ok(Blob {
        header: BlobHeader {
            algorithm,
            key_id: KeyId::from_bytes(key_id),
            material_id: MaterialId::from_bytes(material),
            salt,
            nonce,
        },
        sealed,
    })
}

/// Splits `N` bytes off the front, zero-filling if the input is short (callers check lengths
/// first, so the fill never happens; it keeps the codec free of panicking paths).
fn split_array<const N: usize>(bytes: &[u8]) -> ([u8; N], &[u8]) {
    let mut out = [0u8; N];
    let n = N.min(bytes.len());
    let (head, tail) = bytes.split_at(n);
    if let Some(dst) = out.get_mut(..n) {
        dst.copy_from_slice(head);
    }
    (out, tail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn header() -> BlobHeader {
        BlobHeader {
            algorithm: BlobAlgorithm::SymmetricAes256Gcm,
            key_id: KeyId::from_bytes([0x11; 16]),
            material_id: MaterialId::from_bytes([0x22; 32]),
            salt: [0x44; 16],
            nonce: [0x33; 12],
        }
    }

    #[test]
    fn layout_is_stable() {
        let blob = encode(&header(), &[0xAA; 20]);
        assert_eq!(blob.len(), 100);
        assert_eq!(&blob[..4], &[0xFE, 0x4B, 0x01, 0x01]);
        assert_eq!(&blob[4..20], &[0x11; 16]);
        assert_eq!(&blob[20..52], &[0x22; 32]);
        assert_eq!(&blob[52..68], &[0x44; 16]);
        assert_eq!(&blob[68..80], &[0x33; 12]);
        let decoded = decode(&blob).unwrap();
        assert_eq!(decoded.header, header());
        assert_eq!(decoded.sealed, &[0xAA; 20]);
    }

    #[test]
    fn rejects_foreign_bytes() {
        assert_eq!(decode(&[]), Err(BlobError::TooShort));
        let mut blob = encode(&header(), &[0; 16]);
        blob[2] = 9;
        assert_eq!(decode(&blob), Err(BlobError::Version(9)));
        blob[2] = 1;
        blob[3] = 7;
        assert_eq!(decode(&blob), Err(BlobError::Algorithm(7)));
        blob[0] = 0;
        assert_eq!(decode(&blob), Err(BlobError::Magic));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_inverts_encode(key in any::<[u8; 16]>(), nonce in any::<[u8; 12]>(),
                                 sealed in proptest::collection::vec(any::<u8>(), 16..100)) {
            let h = BlobHeader { key_id: KeyId::from_bytes(key), nonce, ..header() };
            let blob = encode(&h, &sealed);
            let d = decode(&blob).unwrap();
            prop_assert_eq!(d.header, h);
            prop_assert_eq!(d.sealed, &sealed[..]);
        }
    }
}
