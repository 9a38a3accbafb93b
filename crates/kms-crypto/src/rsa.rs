//! `RSA_2048`/`3072`/`4096` KMS keys on aws-lc-rs: RSASSA-PSS and PKCS#1 v1.5 signatures
//! (PSS salt length = digest length, as AWS), RSAES-OAEP with SHA-1 or SHA-256 (MGF1 with the
//! same hash, empty label). The stored material is PKCS#8 v1.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair as _, RsaEncoding};
use kms_core::key::{EncryptionAlgorithm, KeySpec, MessageType, SigningAlgorithm};

use crate::asymmetric::{import_digest, spki_der, unsupported_message_type};
use crate::{CryptoError, KeyOperation, SecretBytes};

fn key_size(spec: KeySpec) -> Option<KeySize> {
    match spec {
        KeySpec::Rsa2048 => Some(KeySize::Rsa2048),
        KeySpec::Rsa3072 => Some(KeySize::Rsa3072),
        KeySpec::Rsa4096 => Some(KeySize::Rsa4096),
        _ => None,
    }
}

/// The padding that signs, and the parameters that verify, with `algorithm`.
fn signing(algorithm: SigningAlgorithm) -> Option<(&'static dyn RsaEncoding, &'static signature::RsaParameters)> {
    use SigningAlgorithm as S;
    Some(match algorithm {
        S::RsassaPssSha256 => (&signature::RSA_PSS_SHA256, &signature::RSA_PSS_2048_8192_SHA256),
        S::RsassaPssSha384 => (&signature::RSA_PSS_SHA384, &signature::RSA_PSS_2048_8192_SHA384),
        S::RsassaPssSha512 => (&signature::RSA_PSS_SHA512, &signature::RSA_PSS_2048_8192_SHA512),
        S::RsassaPkcs1V15Sha256 => (&signature::RSA_PKCS1_SHA256, &signature::RSA_PKCS1_2048_8192_SHA256),
        S::RsassaPkcs1V15Sha384 => (&signature::RSA_PKCS1_SHA384, &signature::RSA_PKCS1_2048_8192_SHA384),
        S::RsassaPkcs1V15Sha512 => (&signature::RSA_PKCS1_SHA512, &signature::RSA_PKCS1_2048_8192_SHA512),
        _ => return None,
    })
}

fn oaep(algorithm: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

/// An RSA KMS key: the signer, the OAEP decrypter (the same key) and the public half.
pub(crate) struct RsaKey {
    spec: KeySpec,
    pair: KeyPair,
    decrypter: OaepPrivateDecryptingKey,
    public: RsaPublic,
}

impl RsaKey {
    /// Fresh material, as a PKCS#8 v1 document. aws-lc-rs generates RSA keys only from its
    /// own CSPRNG: the injected `Rng` cannot be used (see docs/adr/0013).
    pub(crate) fn generate(spec: KeySpec) -> Result<SecretBytes, CryptoError> {
        let size = key_size(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let pair = KeyPair::generate(size).map_err(|_| CryptoError::InvalidKey)?;
        let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(SecretBytes::new(pkcs8.as_ref().to_vec()))
    }

    /// The key over a PKCS#8 document of `spec`'s size.
    pub(crate) fn from_pkcs8(spec: KeySpec, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let size = key_size(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let pair = KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        if pair.public_modulus_len() != size.len() {
            return Err(CryptoError::KeyLength);
        }
        let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let decrypter = OaepPrivateDecryptingKey::new(private).map_err(|_| CryptoError::InvalidKey)?;
        let public = RsaPublic::from_spki_of(spec, &spki_der(pair.public_key())?)?;
        Ok(Self { spec, pair, decrypter, public })
    }

    /// The public half.
    pub(crate) fn public(&self) -> &RsaPublic {
        &self.public
    }

    /// The signature of `message`.
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (padding, _) = signing(algorithm)
            .ok_or(CryptoError::UnsupportedOperation { spec: self.spec, operation: KeyOperation::Sign })?;
        let mut out = vec![0u8; self.pair.public_modulus_len()];
        let signed = match message_type {
            // aws-lc-rs ignores the generator argument (PSS salts come from aws-lc's own).
            MessageType::Raw => self.pair.sign(padding, &SystemRandom::new(), message, &mut out),
            MessageType::Digest => self.pair.sign_digest(padding, &import_digest(algorithm, message)?, &mut out),
            MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
        };
        signed.map(|()| out).map_err(|_| CryptoError::Sign)
    }

    /// Decrypts an OAEP ciphertext.
    pub(crate) fn decrypt(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let oaep = oaep(algorithm)
            .ok_or(CryptoError::UnsupportedOperation { spec: self.spec, operation: KeyOperation::Decrypt })?;
        let mut buf = SecretBytes::new(vec![0u8; self.decrypter.min_output_size()]);
        let len = self
            .decrypter
            .decrypt(oaep, ciphertext, buf.expose_secret_mut(), None)
            .map_err(|_| CryptoError::Open)?
            .len();
        Ok(SecretBytes::new(buf.expose_secret().get(..len).ok_or(CryptoError::Open)?.to_vec()))
    }
}

/// An RSA public key, for verification and OAEP encryption.
pub(crate) struct RsaPublic {
    spec: Option<KeySpec>,
    spki: Vec<u8>,
    encrypter: OaepPublicEncryptingKey,
}

impl RsaPublic {
    /// A public key from its SubjectPublicKeyInfo DER.
    pub(crate) fn from_spki(spki_der: &[u8]) -> Result<Self, CryptoError> {
        let public = PublicEncryptingKey::from_der(spki_der).map_err(|_| CryptoError::InvalidPublicKey)?;
        let encrypter = OaepPublicEncryptingKey::new(public).map_err(|_| CryptoError::InvalidPublicKey)?;
        Ok(Self { spec: None, spki: spki_der.to_vec(), encrypter })
    }

    fn from_spki_of(spec: KeySpec, spki_der: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self { spec: Some(spec), ..Self::from_spki(spki_der)? })
    }

    fn refuse(&self, operation: KeyOperation) -> CryptoError {
        match self.spec {
            Some(spec) => CryptoError::UnsupportedOperation { spec, operation },
            None => CryptoError::InvalidPublicKey,
        }
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
        let (_, parameters) = signing(algorithm).ok_or_else(|| self.refuse(KeyOperation::Verify))?;
        let key = signature::UnparsedPublicKey::new(parameters, &self.spki);
        let verified = match message_type {
            MessageType::Raw => key.verify(message, signature),
            MessageType::Digest => key.verify_digest(&import_digest(algorithm, message)?, signature),
            MessageType::ExternalMu => return Err(unsupported_message_type(algorithm, message_type)),
        };
        Ok(verified.is_ok())
    }

    /// `plaintext` encrypted with OAEP.
    pub(crate) fn encrypt(&self, algorithm: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let oaep = oaep(algorithm).ok_or_else(|| self.refuse(KeyOperation::Encrypt))?;
        let max = self.encrypter.max_plaintext_size(oaep);
        if plaintext.len() > max {
            return Err(CryptoError::PlaintextTooLong { max });
        }
        let mut out = vec![0u8; self.encrypter.ciphertext_size()];
        let len = self.encrypter.encrypt(oaep, plaintext, &mut out, None).map_err(|_| CryptoError::Seal)?.len();
        out.truncate(len);
        Ok(out)
    }
}
