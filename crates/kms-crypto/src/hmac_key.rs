//! `HMAC_224`/`256`/`384`/`512` KMS keys: GenerateMac and VerifyMac. The stored material is
//! the raw HMAC key.

use aws_lc_rs::hmac;
use kms_core::Rng;
use kms_core::key::{KeySpec, MacAlgorithm};

use crate::{CryptoError, KeyOperation, SecretBytes};

/// One HMAC KMS key, its pads already hashed (aws-lc cleanses the state on drop).
pub(crate) struct HmacKey {
    spec: KeySpec,
    algorithm: MacAlgorithm,
    key: hmac::Key,
}

/// What AWS fixes per HMAC spec: its algorithm, the length KMS generates (the hash's output
/// length) and the longest imported key it accepts (the hash's block length).
struct HmacSpec {
    algorithm: MacAlgorithm,
    hmac: hmac::Algorithm,
    generated_len: usize,
    max_len: usize,
}

fn hmac_spec(spec: KeySpec) -> Option<HmacSpec> {
    let (algorithm, hmac, generated_len, max_len) = match spec {
        KeySpec::Hmac224 => (MacAlgorithm::HmacSha224, hmac::HMAC_SHA224, 28, 64),
        KeySpec::Hmac256 => (MacAlgorithm::HmacSha256, hmac::HMAC_SHA256, 32, 64),
        KeySpec::Hmac384 => (MacAlgorithm::HmacSha384, hmac::HMAC_SHA384, 48, 128),
        KeySpec::Hmac512 => (MacAlgorithm::HmacSha512, hmac::HMAC_SHA512, 64, 128),
        _ => return None,
    };
    Some(HmacSpec { algorithm, hmac, generated_len, max_len })
}

impl HmacKey {
    /// Fresh material: as many bytes from `rng` as the hash's output (224 bits for
    /// `HMAC_224`, …, 512 bits for `HMAC_512`), as AWS generates.
    pub(crate) fn generate(spec: KeySpec, rng: &dyn Rng) -> Result<SecretBytes, CryptoError> {
        let facts = hmac_spec(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let mut bytes = SecretBytes::new(vec![0u8; facts.generated_len]);
        rng.fill(bytes.expose_secret_mut());
        Ok(bytes)
    }

    /// The key over stored material: between the hash's output length and its block length,
    /// the range AWS accepts for imported HMAC material.
    pub(crate) fn new(spec: KeySpec, material: &[u8]) -> Result<Self, CryptoError> {
        let facts = hmac_spec(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        if !(facts.generated_len..=facts.max_len).contains(&material.len()) {
            return Err(CryptoError::KeyLength);
        }
        Ok(Self { spec, algorithm: facts.algorithm, key: hmac::Key::new(facts.hmac, material) })
    }

    fn check(&self, algorithm: MacAlgorithm, operation: KeyOperation) -> Result<(), CryptoError> {
        if algorithm == self.algorithm {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedOperation { spec: self.spec, operation })
        }
    }

    /// The MAC of `message`.
    pub(crate) fn generate_mac(&self, algorithm: MacAlgorithm, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.check(algorithm, KeyOperation::GenerateMac)?;
        Ok(hmac::sign(&self.key, message).as_ref().to_vec())
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time.
    pub(crate) fn verify_mac(&self, algorithm: MacAlgorithm, message: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        self.check(algorithm, KeyOperation::VerifyMac)?;
        Ok(hmac::verify(&self.key, message, mac).is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe") for each hash; the 4-byte key is below AWS's minimum, so
    /// the keyed state is built directly.
    #[test]
    fn rfc4231_case_2_for_every_spec() {
        let cases = [
            (KeySpec::Hmac224, MacAlgorithm::HmacSha224, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
            (
                KeySpec::Hmac384,
                MacAlgorithm::HmacSha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
            ),
        ];
        for (spec, algorithm, expected) in cases {
            let facts = hmac_spec(spec).unwrap();
            let key = HmacKey { spec, algorithm, key: hmac::Key::new(facts.hmac, b"Jefe") };
            let mac = key.generate_mac(algorithm, b"what do ya want for nothing?").unwrap();
            assert_eq!(hex::encode(&mac), expected);
            assert!(key.verify_mac(algorithm, b"what do ya want for nothing?", &mac).unwrap());
        }
    }

    #[test]
    fn lengths_and_algorithms_are_checked() {
        assert!(matches!(HmacKey::new(KeySpec::Hmac256, &[1; 31]), Err(CryptoError::KeyLength)));
        assert!(matches!(HmacKey::new(KeySpec::Hmac256, &[1; 65]), Err(CryptoError::KeyLength)));
        assert!(HmacKey::new(KeySpec::Hmac512, &[1; 128]).is_ok());
        let key = HmacKey::new(KeySpec::Hmac256, &[1; 32]).unwrap();
        assert_eq!(
            key.generate_mac(MacAlgorithm::HmacSha512, b"m").unwrap_err(),
            CryptoError::UnsupportedOperation { spec: KeySpec::Hmac256, operation: KeyOperation::GenerateMac }
        );
    }
}
