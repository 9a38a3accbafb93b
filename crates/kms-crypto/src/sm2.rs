//! `SM2` KMS keys on RustCrypto `sm2` (aws-lc has no SM2): SM2DSA signatures (DER, with the
//! default distinguishing id `1234567812345678`, as AWS and OpenSSL use it), SM2PKE (DER
//! C1C3C2, as OpenSSL writes it) and ECDH on the SM2 curve. The stored material is PKCS#8.

use kms_core::Rng;
use kms_core::key::{KeyAgreementAlgorithm, KeySpec, MessageType, SigningAlgorithm};
use sm2::dsa::signature::hazmat::{PrehashVerifier as _, RandomizedPrehashSigner as _};
use sm2::dsa::signature::{RandomizedSigner as _, Verifier as _};
use sm2::elliptic_curve::common::getrandom::SysRng;
use sm2::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use sm2::{PublicKey, SecretKey};

use crate::asymmetric::unsupported_message_type;
use crate::{CryptoError, KeyOperation, SecretBytes};

/// The distinguishing id of SM2 signatures (GB/T 32918.2's default, used by AWS and OpenSSL).
pub const SM2_DISTINGUISHING_ID: &str = "1234567812345678";
/// Length of an SM2DSA `DIGEST` message: e = SM3(ZA ‖ M).
const DIGEST_LEN: usize = 32;
/// Length of a private scalar.
const SCALAR_LEN: usize = 32;
/// Draws at most this many scalars (a draw is out of range with probability about 2^-32).
const MAX_DRAWS: usize = 16;

/// An SM2 KMS key.
pub(crate) struct Sm2Key {
    secret: SecretKey,
    signing: sm2::dsa::SigningKey,
    decrypting: sm2::pke::DecryptingKey,
    public: Sm2Public,
}

impl Sm2Key {
    /// Fresh material: a private scalar drawn from `rng` (rejection-sampled into [1, n)), as
    /// a PKCS#8 document.
    pub(crate) fn generate(rng: &dyn Rng) -> Result<SecretBytes, CryptoError> {
        for _ in 0..MAX_DRAWS {
            let mut scalar = SecretBytes::new(vec![0u8; SCALAR_LEN]);
            rng.fill(scalar.expose_secret_mut());
            if let Ok(secret) = SecretKey::from_slice(scalar.expose_secret()) {
                let document = secret.to_pkcs8_der().map_err(|_| CryptoError::InvalidKey)?;
                return Ok(SecretBytes::new(document.as_bytes().to_vec()));
            }
        }
        Err(CryptoError::InvalidKey)
    }

    /// The key over a PKCS#8 document.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let secret = SecretKey::from_pkcs8_der(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let signing = sm2::dsa::SigningKey::new(SM2_DISTINGUISHING_ID, &secret).map_err(|_| CryptoError::InvalidKey)?;
        // The signing key has computed the public key; reuse it rather than multiply again.
        let public =
            PublicKey::from_affine(*signing.verifying_key().as_affine()).map_err(|_| CryptoError::InvalidKey)?;
        let decrypting = sm2::pke::DecryptingKey::new(secret.clone());
        let public = Sm2Public::new(public)?;
        Ok(Self { secret, signing, decrypting, public })
    }

    /// The public half.
    pub(crate) fn public(&self) -> &Sm2Public {
        &self.public
    }

    /// The DER signature of `message` (`RAW`) or of e = SM3(ZA ‖ M) (`DIGEST`). The nonce is
    /// RFC 6979's with 32 bytes from the operating system mixed in (hedged), as ECDSA and
    /// ML-DSA signatures here are randomized too.
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if algorithm != SigningAlgorithm::Sm2Dsa {
            return Err(CryptoError::UnsupportedOperation { spec: KeySpec::Sm2, operation: KeyOperation::Sign });
        }
        let signature: sm2::dsa::Signature = match message_type {
            MessageType::Raw => self.signing.try_sign_with_rng(&mut SysRng, message).map_err(|_| CryptoError::Sign)?,
            MessageType::Digest => {
                check_digest(message)?;
                self.signing.sign_prehash_with_rng(&mut SysRng, message).map_err(|_| CryptoError::Sign)?
            }
            MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
        };
        Ok(signature.to_der().to_vec())
    }

    /// Decrypts an SM2PKE ciphertext (DER C1C3C2).
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<SecretBytes, CryptoError> {
        self.decrypting.decrypt_der(ciphertext).map(SecretBytes::new).map_err(|_| CryptoError::Open)
    }

    /// The raw ECDH shared secret (the x-coordinate) with the peer's SubjectPublicKeyInfo.
    pub(crate) fn derive_shared_secret(
        &self,
        _algorithm: KeyAgreementAlgorithm,
        peer_spki_der: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let peer = PublicKey::from_public_key_der(peer_spki_der).map_err(|_| CryptoError::InvalidPeerKey)?;
        let shared = sm2::elliptic_curve::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        Ok(SecretBytes::new(shared.raw_secret_bytes().to_vec()))
    }
}

fn check_digest(message: &[u8]) -> Result<(), CryptoError> {
    if message.len() == DIGEST_LEN { Ok(()) } else { Err(CryptoError::DigestLength { expected: DIGEST_LEN }) }
}

/// An SM2 public key.
pub(crate) struct Sm2Public {
    verifying: sm2::dsa::VerifyingKey,
    encrypting: sm2::pke::EncryptingKey,
    spki: Vec<u8>,
}

impl Sm2Public {
    fn new(public: PublicKey) -> Result<Self, CryptoError> {
        let spki = public.to_public_key_der().map_err(|_| CryptoError::InvalidPublicKey)?.into_vec();
        let verifying =
            sm2::dsa::VerifyingKey::new(SM2_DISTINGUISHING_ID, public).map_err(|_| CryptoError::InvalidPublicKey)?;
        let encrypting = sm2::pke::EncryptingKey::new(public);
        Ok(Self { verifying, encrypting, spki })
    }

    /// A public key from its SubjectPublicKeyInfo DER.
    pub(crate) fn from_spki(spki_der: &[u8]) -> Result<Self, CryptoError> {
        Self::new(PublicKey::from_public_key_der(spki_der).map_err(|_| CryptoError::InvalidPublicKey)?)
    }

    /// The SubjectPublicKeyInfo DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `signature` (DER) is a valid SM2DSA signature of `message` (`RAW`) or of the
    /// digest e (`DIGEST`).
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        if algorithm != SigningAlgorithm::Sm2Dsa {
            return Err(CryptoError::UnsupportedOperation { spec: KeySpec::Sm2, operation: KeyOperation::Verify });
        }
        if message_type == MessageType::ExternalMu {
            return Err(unsupported_message_type(algorithm, message_type));
        }
        if message_type == MessageType::Digest {
            check_digest(message)?;
        }
        let Ok(signature) = sm2::dsa::Signature::from_der(signature) else {
            return Ok(false);
        };
        let verified = match message_type {
            MessageType::Digest => self.verifying.verify_prehash(message, &signature),
            _ => self.verifying.verify(message, &signature),
        };
        Ok(verified.is_ok())
    }

    /// `plaintext` encrypted with SM2PKE (DER C1C3C2). The ephemeral key comes from the
    /// operating system's generator.
    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.encrypting.encrypt_der(&mut SysRng, plaintext).map_err(|_| CryptoError::Seal)
    }
}
