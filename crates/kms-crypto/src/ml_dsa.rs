//! `ML_DSA_44`/`65`/`87` KMS keys (FIPS 204, `ML_DSA_SHAKE_256`, empty context): `RAW`
//! messages on aws-lc-rs, `EXTERNAL_MU` (a caller-computed 64-byte μ) on RustCrypto `ml-dsa`,
//! since aws-lc-rs has no safe external-μ API. Both sign hedged (randomized). The stored
//! material is the 54-byte seed-only PKCS#8 both libraries read and write.

use aws_lc_rs::signature::{self, KeyPair as _, PqdsaKeyPair, PqdsaSigningAlgorithm, PqdsaVerificationAlgorithm};
use kms_core::Rng;
use kms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use ml_dsa::pkcs8::der::AnyRef;
use ml_dsa::pkcs8::spki::AssociatedAlgorithmIdentifier;
use ml_dsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use ml_dsa::{ExpandedSigningKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, SigningKey, VerifyingKey};

use crate::asymmetric::{spki_der, unsupported_message_type};
use crate::{CryptoError, KeyOperation, SecretBytes};

/// Length of μ in bytes.
pub const MU_LEN: usize = 64;

fn algorithms(spec: KeySpec) -> Option<(&'static PqdsaSigningAlgorithm, &'static PqdsaVerificationAlgorithm)> {
    match spec {
        KeySpec::MlDsa44 => Some((&signature::ML_DSA_44_SIGNING, &signature::ML_DSA_44)),
        KeySpec::MlDsa65 => Some((&signature::ML_DSA_65_SIGNING, &signature::ML_DSA_65)),
        KeySpec::MlDsa87 => Some((&signature::ML_DSA_87_SIGNING, &signature::ML_DSA_87)),
        _ => None,
    }
}

/// The RustCrypto signing key of each parameter set, for external μ.
enum MuSigner {
    P44(Box<ExpandedSigningKey<MlDsa44>>),
    P65(Box<ExpandedSigningKey<MlDsa65>>),
    P87(Box<ExpandedSigningKey<MlDsa87>>),
}

/// A parameter set with its PKCS#8 and SubjectPublicKeyInfo algorithm identifier.
trait ParameterSet: MlDsaParams + AssociatedAlgorithmIdentifier<Params = AnyRef<'static>> {}

impl<P: MlDsaParams + AssociatedAlgorithmIdentifier<Params = AnyRef<'static>>> ParameterSet for P {}

fn expanded<P: ParameterSet>(pkcs8: &[u8]) -> Result<Box<ExpandedSigningKey<P>>, CryptoError> {
    let key = SigningKey::<P>::from_pkcs8_der(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
    Ok(Box::new(key.expanded_key().clone()))
}

fn sign_mu<P: MlDsaParams>(key: &ExpandedSigningKey<P>, mu: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mu = mu.try_into().map_err(|_| CryptoError::DigestLength { expected: MU_LEN })?;
    // The 32 hedging bytes come from the operating system (as aws-lc's own signing does from
    // its CSPRNG); they do not need to be secret from the key owner, only unpredictable.
    let signature =
        key.sign_mu_randomized(mu, &mut ml_dsa::common::getrandom::SysRng).map_err(|_| CryptoError::Sign)?;
    Ok(signature.encode().to_vec())
}

/// An ML-DSA KMS key.
pub(crate) struct MlDsaKey {
    spec: KeySpec,
    pair: PqdsaKeyPair,
    mu: MuSigner,
    public: MlDsaPublic,
}

impl MlDsaKey {
    /// Fresh material: a 32-byte seed from `rng` (ML-DSA.KeyGen_internal), as a seed-only
    /// PKCS#8 document.
    pub(crate) fn generate(spec: KeySpec, rng: &dyn Rng) -> Result<SecretBytes, CryptoError> {
        let (signing, _) = algorithms(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let seed = zeroize::Zeroizing::new(crate::random_array::<32>(rng));
        let pair = PqdsaKeyPair::from_seed(signing, seed.as_ref()).map_err(|_| CryptoError::InvalidKey)?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| CryptoError::InvalidKey)?;
        Ok(SecretBytes::new(pkcs8.as_ref().to_vec()))
    }

    /// The key over a PKCS#8 document of `spec`'s parameter set.
    pub(crate) fn from_pkcs8(spec: KeySpec, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let (signing, _) = algorithms(spec).ok_or(CryptoError::UnsupportedKeySpec(spec))?;
        let pair = PqdsaKeyPair::from_pkcs8(signing, pkcs8).map_err(|_| CryptoError::InvalidKey)?;
        let mu = match spec {
            KeySpec::MlDsa44 => MuSigner::P44(expanded(pkcs8)?),
            KeySpec::MlDsa65 => MuSigner::P65(expanded(pkcs8)?),
            _ => MuSigner::P87(expanded(pkcs8)?),
        };
        let public = MlDsaPublic::from_spki_of(spec, &spki_der(pair.public_key())?)?;
        Ok(Self { spec, pair, mu, public })
    }

    /// The public half.
    pub(crate) fn public(&self) -> &MlDsaPublic {
        &self.public
    }

    /// The signature of `message` (`RAW`) or of μ (`EXTERNAL_MU`).
    pub(crate) fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if algorithm != SigningAlgorithm::MlDsaShake256 {
            return Err(CryptoError::UnsupportedOperation { spec: self.spec, operation: KeyOperation::Sign });
        }
        match message_type {
            MessageType::Raw => {
                let mut out = vec![0u8; self.pair.algorithm().signature_len()];
                let len = self.pair.sign(message, &mut out).map_err(|_| CryptoError::Sign)?;
                out.truncate(len);
                Ok(out)
            }
            MessageType::ExternalMu => match &self.mu {
                MuSigner::P44(key) => sign_mu(key, message),
                MuSigner::P65(key) => sign_mu(key, message),
                MuSigner::P87(key) => sign_mu(key, message),
            },
            MessageType::Digest => Err(unsupported_message_type(algorithm, message_type)),
        }
    }
}

/// The RustCrypto verifying key of each parameter set, for external μ.
enum MuVerifier {
    P44(Box<VerifyingKey<MlDsa44>>),
    P65(Box<VerifyingKey<MlDsa65>>),
    P87(Box<VerifyingKey<MlDsa87>>),
}

fn mu_verifier<P: ParameterSet>(spki_der: &[u8]) -> Result<Box<VerifyingKey<P>>, CryptoError> {
    VerifyingKey::<P>::from_public_key_der(spki_der).map(Box::new).map_err(|_| CryptoError::InvalidPublicKey)
}

fn verify_mu<P: MlDsaParams>(key: &VerifyingKey<P>, mu: &[u8], signature: &[u8]) -> Result<bool, CryptoError> {
    let mu = mu.try_into().map_err(|_| CryptoError::DigestLength { expected: MU_LEN })?;
    let Ok(signature) = ml_dsa::Signature::<P>::try_from(signature) else {
        return Ok(false);
    };
    Ok(key.verify_mu(mu, &signature))
}

/// An ML-DSA public key.
pub(crate) struct MlDsaPublic {
    spec: KeySpec,
    key: signature::ParsedPublicKey,
    mu: MuVerifier,
    spki: Vec<u8>,
}

impl MlDsaPublic {
    /// A public key from its SubjectPublicKeyInfo DER, of whichever parameter set it names.
    pub(crate) fn from_spki(spki_der: &[u8]) -> Result<Self, CryptoError> {
        [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87]
            .into_iter()
            .find_map(|spec| Self::from_spki_of(spec, spki_der).ok())
            .ok_or(CryptoError::InvalidPublicKey)
    }

    fn from_spki_of(spec: KeySpec, spki_der: &[u8]) -> Result<Self, CryptoError> {
        let (_, verification) = algorithms(spec).ok_or(CryptoError::InvalidPublicKey)?;
        // The RustCrypto parse comes first: it takes only SubjectPublicKeyInfo, where aws-lc-rs
        // would also take a bare key.
        let mu = match spec {
            KeySpec::MlDsa44 => MuVerifier::P44(mu_verifier(spki_der)?),
            KeySpec::MlDsa65 => MuVerifier::P65(mu_verifier(spki_der)?),
            _ => MuVerifier::P87(mu_verifier(spki_der)?),
        };
        let key = signature::ParsedPublicKey::new(verification, spki_der).map_err(|_| CryptoError::InvalidPublicKey)?;
        Ok(Self { spec, key, mu, spki: spki_der.to_vec() })
    }

    /// The SubjectPublicKeyInfo DER.
    pub(crate) fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether `signature` is a valid signature of `message` (`RAW`) or of μ (`EXTERNAL_MU`).
    pub(crate) fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        if algorithm != SigningAlgorithm::MlDsaShake256 {
            return Err(CryptoError::UnsupportedOperation { spec: self.spec, operation: KeyOperation::Verify });
        }
        match message_type {
            MessageType::Raw => Ok(self.key.verify_sig(message, signature).is_ok()),
            MessageType::ExternalMu => match &self.mu {
                MuVerifier::P44(key) => verify_mu(key, message, signature),
                MuVerifier::P65(key) => verify_mu(key, message, signature),
                MuVerifier::P87(key) => verify_mu(key, message, signature),
            },
            MessageType::Digest => Err(unsupported_message_type(algorithm, message_type)),
        }
    }
}
