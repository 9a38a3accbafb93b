//! The ciphertext blob codec (`kms_core::ciphertext_blob`): `decode` never panics, `encode` inverts it, and
//! it inverts `encode`.

use kms_core::ciphertext_blob::{self as blob, Blob, BlobAlgorithm, BlobError, BlobHeader, HEADER_LEN, TAG_LEN};
use kms_core::ids::{KeyId, MaterialId};

/// Takes `N` bytes off the front of `input`, zero-filled when it runs out.
fn take<const N: usize>(input: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(input.len());
    let (head, tail) = input.split_at(n);
    for (dst, src) in out.iter_mut().zip(head) {
        *dst = *src;
    }
    *input = tail;
    out
}

/// Checks the codec on arbitrary bytes, both as a blob to decode and as the fields of a blob to
/// encode.
pub fn check(data: &[u8]) {
    // 1. Arbitrary bytes as a blob: decoding never panics, and whatever decodes re-encodes to
    //    exactly the same bytes (one encoding per blob, so a blob cannot be malleated).
    match blob::decode(data) {
        Ok(decoded) => {
            assert!(data.len() >= HEADER_LEN + TAG_LEN, "a blob shorter than header and tag decoded");
            assert_eq!(blob::encode(&decoded.header, decoded.sealed), data, "encode(decode(x)) != x");
        }
        Err(e) => {
            // Every failure has a message (the server logs it; the client sees only
            // InvalidCiphertextException).
            assert!(!e.to_string().is_empty());
        }
    }

    // 2. The same bytes as header fields and a payload: decode inverts encode.
    let mut rest = data;
    let header = BlobHeader {
        algorithm: BlobAlgorithm::SymmetricAes256Gcm,
        key_id: KeyId::from_bytes(take::<16>(&mut rest)),
        material_id: MaterialId::from_bytes(take::<32>(&mut rest)),
        salt: take(&mut rest),
        nonce: take(&mut rest),
    };
    let encoded = blob::encode(&header, rest);
    assert_eq!(encoded.len(), HEADER_LEN + rest.len());
    let expected = if rest.len() >= TAG_LEN { Ok(Blob { header, sealed: rest }) } else { Err(BlobError::TooShort) };
    assert_eq!(blob::decode(&encoded), expected, "decode(encode(h, s)) != (h, s)");
}
