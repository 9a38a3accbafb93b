//! The import token of GetParametersForImport: everything ImportKeyMaterial needs to unwrap the
//! material, sealed by the root key for one key, so that no state is kept between the two calls
//! (any node sharing the store and root key accepts it).
//!
//! Token: `"FKIT" ‖ 0x01 ‖ root-wrapped payload`, the root wrap binding
//! `"ferrokms import token v1" ‖ 0 ‖ key ARN` (a token for another key does not open). Payload:
//! wrapping algorithm (1 byte), wrapping key spec (1 byte), expiry (8 bytes, Unix milliseconds,
//! big-endian), then the wrapping key's private half (PKCS#8). The private key exists nowhere
//! else, in the clear only in memory while a request uses it.

use kms_core::KmsError;
use kms_core::Timestamp;
use kms_core::error::ImportError;
use kms_core::ids::{KeyArn, KeyId, MaterialId};
use kms_core::key::KeySpec;
use kms_crypto::{KeyHandle, KeySecret, RootKeyProvider, SecretBytes, WrappingAlgorithm};

/// How long a token and its wrapping key stay valid: 24 hours, as AWS.
pub(super) const VALIDITY_MILLIS: i64 = 24 * 3600 * 1000;

const MAGIC: &[u8; 5] = b"FKIT\x01";
const HEADER_LEN: usize = 10;

/// The wrapping algorithms, by their byte in the payload.
const ALGORITHMS: [WrappingAlgorithm; 5] = [
    WrappingAlgorithm::RsaesOaepSha1,
    WrappingAlgorithm::RsaesOaepSha256,
    WrappingAlgorithm::RsaAesKeyWrapSha1,
    WrappingAlgorithm::RsaAesKeyWrapSha256,
    WrappingAlgorithm::Sm2Pke,
];

/// The wrapping key specs, by their byte in the payload.
const SPECS: [KeySpec; 4] = [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096, KeySpec::Sm2];

/// What a token carries.
pub(super) struct ImportParameters {
    /// How the material is wrapped.
    pub algorithm: WrappingAlgorithm,
    /// The wrapping key, ready to unwrap.
    pub wrapping_key: KeyHandle,
}

fn aad(arn: &KeyArn) -> Vec<u8> {
    let mut aad = b"ferrokms import token v1\0".to_vec();
    aad.extend_from_slice(arn.to_string().as_bytes());
    aad
}

fn index<T: PartialEq>(all: &[T], item: &T) -> u8 {
    all.iter().position(|x| x == item).and_then(|i| u8::try_from(i).ok()).unwrap_or(u8::MAX)
}

/// Seals a token for key `arn`: the wrapping key `secret` and `algorithm`, valid until `expires`.
pub(super) fn seal(
    root: &dyn RootKeyProvider,
    arn: &KeyArn,
    algorithm: WrappingAlgorithm,
    secret: &KeySecret,
    expires: Timestamp,
) -> Result<Vec<u8>, kms_crypto::RootKeyError> {
    // Sized once, so that no reallocation leaves a copy of the private key behind.
    let mut bytes = Vec::with_capacity(HEADER_LEN + secret.expose_secret().len());
    bytes.push(index(&ALGORITHMS, &algorithm));
    bytes.push(index(&SPECS, &secret.spec()));
    bytes.extend_from_slice(&expires.unix_millis().to_be_bytes());
    bytes.extend_from_slice(secret.expose_secret());
    let payload = SecretBytes::new(bytes);
    let mut token = MAGIC.to_vec();
    token.extend(root.wrap(&aad(arn), payload.expose_secret())?);
    Ok(token)
}

/// Opens a token for key `arn` at `now`.
///
/// # Errors
/// `InvalidImportTokenException` for a token not sealed for this key (or altered);
/// `ExpiredImportTokenException` past its 24 hours.
pub(super) fn open(
    root: &dyn RootKeyProvider,
    arn: &KeyArn,
    token: &[u8],
    now: Timestamp,
) -> Result<ImportParameters, KmsError> {
    let invalid = || KmsError::Import(ImportError::InvalidToken(arn.clone()));
    let sealed = token.strip_prefix(MAGIC.as_slice()).ok_or_else(invalid)?;
    let payload = root.unwrap(&aad(arn), sealed).map_err(|_| invalid())?;
    let (header, key) = payload.expose_secret().split_at_checked(HEADER_LEN).ok_or_else(invalid)?;
    let [algorithm, spec, expires @ ..] = header else { return Err(invalid()) };
    let algorithm = *ALGORITHMS.get(usize::from(*algorithm)).ok_or_else(invalid)?;
    let spec = *SPECS.get(usize::from(*spec)).ok_or_else(invalid)?;
    let expires = i64::from_be_bytes(expires.try_into().map_err(|_| invalid())?);
    if Timestamp::from_unix_millis(expires) <= now {
        return Err(KmsError::Import(ImportError::ExpiredToken));
    }
    let placeholder = (KeyId::from_bytes([0; 16]), MaterialId::from_bytes([0; 32]));
    let wrapping_key = KeyHandle::from_material(spec, placeholder.0, placeholder.1, SecretBytes::new(key.to_vec()))
        .map_err(|_| invalid())?;
    Ok(ImportParameters { algorithm, wrapping_key })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kms_core::ids::{AccountId, Region};

    fn arn(byte: u8) -> KeyArn {
        KeyArn {
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
            key_id: KeyId::from_bytes([byte; 16]),
        }
    }

    #[test]
    fn a_token_opens_for_its_key_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let root = kms_crypto::FileRootKey::create(&dir.path().join("root"), &kms_crypto::SystemRng).unwrap();
        let secret = KeySecret::generate(KeySpec::Sm2, &kms_crypto::SystemRng).unwrap();
        let t0 = Timestamp::from_unix_millis(1_000_000);
        let expires = t0.plus_millis(VALIDITY_MILLIS);
        let token = seal(&root, &arn(1), WrappingAlgorithm::Sm2Pke, &secret, expires).unwrap();
        let opened = open(&root, &arn(1), &token, t0).unwrap();
        assert_eq!((opened.algorithm, opened.wrapping_key.spec()), (WrappingAlgorithm::Sm2Pke, KeySpec::Sm2));
        assert!(matches!(open(&root, &arn(2), &token, t0), Err(KmsError::Import(ImportError::InvalidToken(_)))));
        assert!(matches!(open(&root, &arn(1), &token, expires), Err(KmsError::Import(ImportError::ExpiredToken))));
        let mut altered = token.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(open(&root, &arn(1), &altered, t0), Err(KmsError::Import(ImportError::InvalidToken(_)))));
        assert!(open(&root, &arn(1), b"FKIT", t0).is_err());
    }
}
