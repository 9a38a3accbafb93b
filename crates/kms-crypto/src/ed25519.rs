//! `ECC_NIST_EDWARDS25519` KMS keys: pure Ed25519 (`ED25519_SHA_512`, `RAW` messages only) on
//! aws-lc-rs, and Ed25519ph (`ED25519_PH_SHA_512`, `RAW` or a 64-byte SHA-512 `DIGEST`, empty
//! context) on ed25519-dalek, since aws-lc-rs has no safe Ed25519ph API and the workspace
//! forbids `unsafe`. The stored material is PKCS#8 v1 (the 32-byte seed).

use aws_lc_rs::digest as sha;
use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _};
use ed25519_dalek::{SigningKey as PhSigningKey, VerifyingKey as PhVerifyingKey};
use kms_core::Rng;
use kms_core::key::{KeySpec, MessageType, SigningAlgorithm};

use crate::asymmetric::{import_digest, spki_der, unsupported_message_type};
use crate::{CryptoError, KeyOperation, SecretBytes};

const SPEC: KeySpec = KeySpec::EccNistEdwards25519;

/// An Ed25519 KMS key: the same seed loaded into aws-lc-rs (pure) and ed25519-dalek (ph).
pub(crate) struct Ed25519Key {
    pair: Ed25519KeyPair,
    prehash: PhSigningKey,
    public: Ed25519Public,
}

impl Ed25519Key {
    /// Fresh material: a 32-byte seed from `rng`, as a PKCS#8 v1 document.
    pub(crate) fn generate(rng: &dyn Rng) -> Result<SecretBytes, CryptoError> {
        let seed = zeroize::Zeroizing::new(crate::random_array::<32>(rng));
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref()).map_err(|_| CryptoError::InvalidKey)?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| CryptoError::InvalidKey)?;
        Ok(SecretBytes::new(pkcs8.as_ref().to_vec()))
    }

    /// The key over a PKCS#8 document (v1 or v2).
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let seed = pair.seed().and_then(|s| s.as_be_bytes()).map_err(|_| CryptoError::InvalidKey)?;
        let seed = zeroize::Zeroizing::new(<[u8; 32]>::try_from(seed.as_ref()).map_err(|_| CryptoError::KeyLength)?);
        let prehash = PhSigningKey::from_bytes(&seed);
        let public = Ed25519Public::from_spki(&spki_der(pair.public_key())?)?;
        Ok(Self { pair, prehash, public })
    }

    /// The public half.
    pub(crate) fn public(&self) -> &Ed25519Public {
        &self.public
    }

    /// The 64-byte signature of `message`.
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match algorithm {
            SigningAlgorithm::Ed25519Sha512 => match message_type {
                MessageType::Raw => Ok(self.pair.sign(message).as_ref().to_vec()),
                _ => Err(unsupported_message_type(algorithm, message_type)),
            },
            SigningAlgorithm::Ed25519PhSha512 => {
                let prehash = prehash(algorithm, message_type, message)?;
                let signature = self.prehash.sign_prehashed(prehash, None).map_err(|_| CryptoError::Sign)?;
                Ok(signature.to_bytes().to_vec())
            }
            _ => Err(CryptoError::UnsupportedOperation { spec: SPEC, operation: KeyOperation::Sign }),
        }
    }
}

/// The SHA-512 digest Ed25519ph signs: of the message for `RAW`, the message itself (64 bytes)
/// for `DIGEST`.
fn prehash(
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Sha512Output, CryptoError> {
    let digest = match message_type {
        MessageType::Raw => sha::digest(&sha::SHA512, message),
        MessageType::Digest => import_digest(algorithm, message)?,
        MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
    };
    let bytes = <[u8; 64]>::try_from(digest.as_ref()).map_err(|_| CryptoError::DigestLength { expected: 64 })?;
    Ok(Sha512Output(bytes))
}

/// A finished SHA-512 digest, handed to ed25519-dalek where it takes a SHA-512 hasher (its
/// API has no way to pass digest bytes): dalek's `sign_prehashed` and `verify_prehashed` only
/// call `finalize` on it, and this "hasher" finalizes to the digest it was made from. `update`
/// ignores its input; if a later dalek fed the prehash more data, signatures would no longer
/// match RFC 8032's, which the test vector below checks.
#[derive(Clone)]
struct Sha512Output([u8; 64]);

impl Default for Sha512Output {
    fn default() -> Self {
        Self([0; 64])
    }
}

impl ::digest::HashMarker for Sha512Output {}

impl ::digest::OutputSizeUser for Sha512Output {
    type OutputSize = ::digest::consts::U64;
}

impl ::digest::Update for Sha512Output {
    fn update(&mut self, _data: &[u8]) {}
}

impl ::digest::FixedOutput for Sha512Output {
    fn finalize_into(self, out: &mut ::digest::Output<Self>) {
        out.copy_from_slice(&self.0);
    }
}

/// An Ed25519 public key, for both pure and ph verification.
pub(crate) struct Ed25519Public {
    key: signature::ParsedPublicKey,
    prehash: PhVerifyingKey,
    spki: Vec<u8>,
}

impl Ed25519Public {
    /// A public key from its SubjectPublicKeyInfo DER.
    pub(crate) fn from_spki(spki_der: &[u8]) -> Result<Self, CryptoError> {
        if spki_der.len() == signature::ED25519_PUBLIC_KEY_LEN {
            // aws-lc-rs would take a bare 32-byte key too; only SubjectPublicKeyInfo is a public key here.
            return Err(CryptoError::InvalidPublicKey);
        }
        let key = signature::ParsedPublicKey::new(&signature::ED25519, spki_der)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let raw = spki_der.get(spki_der.len().saturating_sub(32)..).ok_or(CryptoError::InvalidPublicKey)?;
        let raw = <[u8; 32]>::try_from(raw).map_err(|_| CryptoError::InvalidPublicKey)?;
        let prehash = PhVerifyingKey::from_bytes(&raw).map_err(|_| CryptoError::InvalidPublicKey)?;
        Ok(Self { key, prehash, spki: spki_der.to_vec() })
    }

    /// The SubjectPublicKeyInfo DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `signature` is a valid signature of `message`.
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        match algorithm {
            SigningAlgorithm::Ed25519Sha512 => match message_type {
                MessageType::Raw => Ok(self.key.verify_sig(message, signature).is_ok()),
                _ => Err(unsupported_message_type(algorithm, message_type)),
            },
            SigningAlgorithm::Ed25519PhSha512 => {
                let prehash = prehash(algorithm, message_type, message)?;
                let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                    return Ok(false);
                };
                Ok(self.prehash.verify_prehashed(prehash, None, &signature).is_ok())
            }
            _ => Err(CryptoError::UnsupportedOperation { spec: SPEC, operation: KeyOperation::Verify }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.3, test "abc": Ed25519ph of "abc" with an empty context, as RAW and
    /// as the SHA-512 DIGEST of "abc".
    #[test]
    fn rfc8032_ed25519ph_abc() {
        let seed = hex::decode("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42").unwrap();
        let expected = "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                        31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406";
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let key = Ed25519Key::from_pkcs8(pair.to_pkcs8v1().unwrap().as_ref()).unwrap();
        let ph = SigningAlgorithm::Ed25519PhSha512;
        let raw = key.sign(ph, MessageType::Raw, b"abc").unwrap();
        assert_eq!(hex::encode(&raw), expected);
        let digest = sha::digest(&sha::SHA512, b"abc");
        assert_eq!(key.sign(ph, MessageType::Digest, digest.as_ref()).unwrap(), raw);
        let public = key.public();
        assert!(public.verify(ph, MessageType::Raw, b"abc", &raw).unwrap());
        assert!(public.verify(ph, MessageType::Digest, digest.as_ref(), &raw).unwrap());
        assert!(!public.verify(ph, MessageType::Raw, b"abd", &raw).unwrap());
        assert!(!public.verify(SigningAlgorithm::Ed25519Sha512, MessageType::Raw, b"abc", &raw).unwrap());
        assert!(
            public
                .spki_der()
                .ends_with(&hex::decode("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf").unwrap())
        );
    }
}
