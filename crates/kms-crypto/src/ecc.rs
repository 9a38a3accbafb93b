//! `ECC_NIST_P256`/`P384`/`P521` and `ECC_SECG_P256K1` KMS keys on aws-lc-rs: ECDSA Sign and
//! Verify (ASN.1 DER signatures), ECDH for the NIST curves. The stored material is PKCS#8 v1.

use aws_lc_rs::agreement;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, KeyPair as _};
use kms_core::Rng;
use kms_core::key::{KeyAgreementAlgorithm, KeySpec, MessageType, SigningAlgorithm};

use crate::asymmetric::{import_digest, spki_der, unsupported_message_type};
use crate::{CryptoError, KeyOperation, SecretBytes};

/// The facts of one curve.
pub(crate) struct Curve {
    spec: KeySpec,
    signing: &'static EcdsaSigningAlgorithm,
    verification: &'static EcdsaVerificationAlgorithm,
    /// ECDH, for the curves AWS allows `KEY_AGREEMENT` on.
    agreement: Option<&'static agreement::Algorithm>,
    algorithm: SigningAlgorithm,
    /// Length of a private scalar in bytes.
    scalar_len: usize,
    /// The curve's OID, DER contents (for the RFC 5915 document a generated scalar is put in).
    oid: &'static [u8],
}

const P256: Curve = Curve {
    spec: KeySpec::EccNistP256,
    signing: &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    verification: &signature::ECDSA_P256_SHA256_ASN1,
    agreement: Some(&agreement::ECDH_P256),
    algorithm: SigningAlgorithm::EcdsaSha256,
    scalar_len: 32,
    oid: &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
};
const P384: Curve = Curve {
    spec: KeySpec::EccNistP384,
    signing: &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    verification: &signature::ECDSA_P384_SHA384_ASN1,
    agreement: Some(&agreement::ECDH_P384),
    algorithm: SigningAlgorithm::EcdsaSha384,
    scalar_len: 48,
    oid: &[0x2b, 0x81, 0x04, 0x00, 0x22],
};
const P521: Curve = Curve {
    spec: KeySpec::EccNistP521,
    signing: &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
    verification: &signature::ECDSA_P521_SHA512_ASN1,
    agreement: Some(&agreement::ECDH_P521),
    algorithm: SigningAlgorithm::EcdsaSha512,
    scalar_len: 66,
    oid: &[0x2b, 0x81, 0x04, 0x00, 0x23],
};
const SECP256K1: Curve = Curve {
    spec: KeySpec::EccSecgP256k1,
    signing: &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
    verification: &signature::ECDSA_P256K1_SHA256_ASN1,
    agreement: None,
    algorithm: SigningAlgorithm::EcdsaSha256,
    scalar_len: 32,
    oid: &[0x2b, 0x81, 0x04, 0x00, 0x0a],
};

/// The curve of an ECC spec.
pub(crate) fn curve(spec: KeySpec) -> Option<&'static Curve> {
    match spec {
        KeySpec::EccNistP256 => Some(&P256),
        KeySpec::EccNistP384 => Some(&P384),
        KeySpec::EccNistP521 => Some(&P521),
        KeySpec::EccSecgP256k1 => Some(&SECP256K1),
        _ => None,
    }
}

/// Draws at most this many scalars before giving up; a draw is out of range with probability
/// below 2^-32 on every curve, so a failure means a broken generator.
const MAX_DRAWS: usize = 16;

/// An ECC KMS key: the ECDSA signer, the ECDH key of the same scalar (NIST curves) and the
/// parsed public key.
pub(crate) struct EccKey {
    curve: &'static Curve,
    signer: EcdsaKeyPair,
    agreement: Option<agreement::PrivateKey>,
    public: EcPublic,
}

impl EccKey {
    /// Fresh material: a private scalar drawn from `rng` (rejection-sampled into [1, n)),
    /// as a PKCS#8 v1 document.
    pub(crate) fn generate(spec: KeySpec, rng: &dyn Rng) -> Result<SecretBytes, CryptoError> {
        let curve = curve(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        for _ in 0..MAX_DRAWS {
            let mut scalar = SecretBytes::new(vec![0u8; curve.scalar_len]);
            rng.fill(scalar.expose_secret_mut());
            if curve.scalar_len == 66 {
                // P-521: the order is just below 2^521, so only the lowest bit of the first
                // byte may be set; clearing the rest keeps the draw uniform below 2^521.
                if let Some(first) = scalar.expose_secret_mut().first_mut() {
                    *first &= 0x01;
                }
            }
            let document = SecretBytes::new(rfc5915_document(curve, scalar.expose_secret()));
            // aws-lc rejects a scalar of zero or not below the order; draw again then.
            if let Ok(pair) = EcdsaKeyPair::from_private_key_der(curve.signing, document.expose_secret()) {
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| CryptoError::InvalidKey)?;
                return Ok(SecretBytes::new(pkcs8.as_ref().to_vec()));
            }
        }
        Err(CryptoError::InvalidKey)
    }

    /// The key over a PKCS#8 document of `spec`'s curve.
    pub(crate) fn from_pkcs8(spec: KeySpec, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let curve = curve(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let signer = EcdsaKeyPair::from_pkcs8(curve.signing, pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let agreement = match curve.agreement {
            Some(algorithm) => Some(
                agreement::PrivateKey::from_private_key_der(algorithm, pkcs8).map_err(|_| CryptoError::InvalidKey)?,
            ),
            None => None,
        };
        let public = EcPublic::from_spki(curve, &spki_der(signer.public_key())?)?;
        Ok(Self { curve, signer, agreement, public })
    }

    /// The public half.
    pub(crate) fn public(&self) -> &EcPublic {
        &self.public
    }

    /// The ECDSA signature (ASN.1 DER) of `message`.
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.public.check(algorithm, KeyOperation::Sign)?;
        let signature = match message_type {
            MessageType::Raw => self.signer.sign(&SystemRandom::new(), message),
            MessageType::Digest => self.signer.sign_digest(&import_digest(algorithm, message)?),
            MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
        };
        signature.map(|s| s.as_ref().to_vec()).map_err(|_| CryptoError::Sign)
    }

    /// The raw ECDH shared secret (the x-coordinate) with the peer's SubjectPublicKeyInfo.
    pub(crate) fn derive_shared_secret(
        &self,
        _algorithm: KeyAgreementAlgorithm,
        peer_spki_der: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let operation = KeyOperation::DeriveSharedSecret;
        let (Some(key), Some(algorithm)) = (&self.agreement, self.curve.agreement) else {
            return Err(CryptoError::UnsupportedOperation { spec: self.curve.spec, operation });
        };
        if peer_spki_der.first() != Some(&DER_SEQUENCE) {
            // aws-lc would also take a bare SEC1 point; AWS takes only SubjectPublicKeyInfo.
            return Err(CryptoError::InvalidPeerKey);
        }
        let peer = agreement::UnparsedPublicKey::new(algorithm, peer_spki_der);
        agreement::agree(key, peer, CryptoError::InvalidPeerKey, |secret| Ok(SecretBytes::new(secret.to_vec())))
    }
}

/// The tag of a DER SEQUENCE, which a SubjectPublicKeyInfo is.
const DER_SEQUENCE: u8 = 0x30;

/// RFC 5915 `ECPrivateKey { version 1, privateKey, parameters [0] namedCurve }` without the
/// optional public key (aws-lc computes it). Every length is below 128, so each fits one byte.
fn rfc5915_document(curve: &Curve, scalar: &[u8]) -> Vec<u8> {
    let oid_len = curve.oid.len();
    let body_len = 3 + 2 + scalar.len() + 2 + 2 + oid_len;
    let mut der = Vec::with_capacity(2 + body_len);
    der.extend_from_slice(&[DER_SEQUENCE, short_len(body_len), 0x02, 0x01, 0x01, 0x04, short_len(scalar.len())]);
    der.extend_from_slice(scalar);
    der.extend_from_slice(&[0xa0, short_len(2 + oid_len), 0x06, short_len(oid_len)]);
    der.extend_from_slice(curve.oid);
    der
}

/// A DER short-form length.
// INVARIANT: callers pass lengths below 128 (the longest document, P-521's, is 80 bytes), so
// the mask never changes the value; it only keeps a mistake from becoming a long-form tag.
fn short_len(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX) & 0x7f
}

/// An ECC public key, parsed once, for verification.
pub(crate) struct EcPublic {
    curve: &'static Curve,
    key: signature::ParsedPublicKey,
    spki: Vec<u8>,
}

impl EcPublic {
    fn from_spki(curve: &'static Curve, spki_der: &[u8]) -> Result<Self, CryptoError> {
        let key =
            signature::ParsedPublicKey::new(curve.verification, spki_der).map_err(|_| CryptoError::InvalidPublicKey)?;
        Ok(Self { curve, key, spki: spki_der.to_vec() })
    }

    /// The public key `spki_der` of a curve that has `algorithm` (P-256 or secp256k1 for
    /// ECDSA_SHA_256).
    pub(crate) fn from_spki_for(algorithm: SigningAlgorithm, spki_der: &[u8]) -> Result<Self, CryptoError> {
        if spki_der.first() != Some(&DER_SEQUENCE) {
            return Err(CryptoError::InvalidPublicKey);
        }
        [&P256, &SECP256K1, &P384, &P521]
            .into_iter()
            .filter(|curve| curve.algorithm == algorithm)
            .find_map(|curve| Self::from_spki(curve, spki_der).ok())
            .ok_or(CryptoError::InvalidPublicKey)
    }

    fn check(&self, algorithm: SigningAlgorithm, operation: KeyOperation) -> Result<(), CryptoError> {
        if algorithm == self.curve.algorithm {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedOperation { spec: self.curve.spec, operation })
        }
    }

    /// The SubjectPublicKeyInfo DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `signature` is a valid ECDSA signature of `message`.
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        self.check(algorithm, KeyOperation::Verify)?;
        let verified = match message_type {
            MessageType::Raw => self.key.verify_sig(message, signature),
            MessageType::Digest => self.key.verify_digest_sig(&import_digest(algorithm, message)?, signature),
            MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
        };
        Ok(verified.is_ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Fills with one repeated byte.
    struct Fixed(u8);

    impl Rng for Fixed {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(self.0);
        }
    }

    /// The scalar comes from the injected generator: the same bytes make the same key; an
    /// out-of-range draw (all 0xff is above every order) never becomes a key.
    #[test]
    fn scalars_come_from_the_injected_rng() {
        for spec in [KeySpec::EccNistP256, KeySpec::EccNistP384, KeySpec::EccNistP521, KeySpec::EccSecgP256k1] {
            let a = EccKey::from_pkcs8(spec, EccKey::generate(spec, &Fixed(7)).unwrap().expose_secret()).unwrap();
            let b = EccKey::from_pkcs8(spec, EccKey::generate(spec, &Fixed(7)).unwrap().expose_secret()).unwrap();
            assert_eq!(a.public().spki_der(), b.public().spki_der());
            let c = EccKey::from_pkcs8(spec, EccKey::generate(spec, &Fixed(8)).unwrap().expose_secret()).unwrap();
            assert_ne!(a.public().spki_der(), c.public().spki_der());
            if spec != KeySpec::EccNistP521 {
                assert_eq!(EccKey::generate(spec, &Fixed(0xff)).unwrap_err(), CryptoError::InvalidKey, "{spec:?}");
            }
        }
    }

    #[test]
    fn ecdh_refuses_a_bare_point_and_another_curve() {
        let ours = EccKey::from_pkcs8(
            KeySpec::EccNistP256,
            EccKey::generate(KeySpec::EccNistP256, &crate::SystemRng).unwrap().expose_secret(),
        )
        .unwrap();
        let other = EccKey::from_pkcs8(
            KeySpec::EccNistP384,
            EccKey::generate(KeySpec::EccNistP384, &crate::SystemRng).unwrap().expose_secret(),
        )
        .unwrap();
        let ecdh = KeyAgreementAlgorithm::Ecdh;
        assert_eq!(ours.derive_shared_secret(ecdh, &[4; 65]).unwrap_err(), CryptoError::InvalidPeerKey);
        let other_spki = other.public().spki_der();
        assert_eq!(ours.derive_shared_secret(ecdh, other_spki).unwrap_err(), CryptoError::InvalidPeerKey);
    }
}
