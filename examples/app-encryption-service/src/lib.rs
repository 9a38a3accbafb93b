//! An application encryption service on KMS, the way a multi-tenant application would write one.
//!
//! - Small secrets (PII fields: an e-mail address, a card number) go to KMS `Encrypt` under an
//!   alias (`alias/app-data`), never a key id, with an operation context
//!   `{"purpose": ..., "tenant": ...}` that KMS binds to the ciphertext.
//! - Payloads larger than 4 KiB (KMS `Encrypt` takes at most 4096 bytes) are envelope-encrypted
//!   with [`kms_client::envelope`]: one data key per payload, the same context, an AWS Encryption
//!   SDK message as the result.
//! - Decryption names the context it expects; a ciphertext made for another purpose or tenant is
//!   refused (by KMS for fields, by the required-context check for payloads).
//! - Nothing pins a key: ciphertexts name their key (and key material), so rotating the key behind
//!   the alias, on demand or by moving the alias to a new key, changes nothing for the
//!   application: old data decrypts, new data goes to the alias's current key.
//!
//! The service holds no key material and no cache; every call is a KMS call (or one per payload).

use std::collections::BTreeMap;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use kms_client::envelope::{Decryptor, Encryptor, EnvelopeError};

/// Payloads above this many bytes are envelope-encrypted; KMS `Encrypt` accepts up to 4096.
pub const DIRECT_LIMIT: usize = 4096;
/// First byte of a payload sealed directly with KMS `Encrypt`. (An envelope message starts with
/// its format version, 0x02.)
const DIRECT_TAG: u8 = 0x01;
const ENVELOPE_TAG: u8 = 0x02;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The ciphertext was not made for this purpose and tenant, or was altered.
    #[error("refused: the ciphertext does not belong to purpose {purpose:?} of tenant {tenant:?}, or was altered")]
    Refused {
        /// The purpose asked for.
        purpose: String,
        /// The tenant of this service.
        tenant: String,
    },
    /// A KMS call failed for another reason.
    #[error("KMS {operation}: {code}: {message}")]
    Kms {
        /// The operation.
        operation: &'static str,
        /// The AWS exception name (or "transport").
        code: String,
        /// Its message.
        message: String,
    },
    /// Envelope encryption failed for another reason.
    #[error(transparent)]
    Envelope(EnvelopeError),
    /// The sealed value or token is not one this service produced.
    #[error("not a sealed value: {0}")]
    Format(&'static str),
}

fn kms_failure<E: ProvideErrorMetadata>(operation: &'static str, error: &E) -> ServiceError {
    ServiceError::Kms {
        operation,
        code: error.code().unwrap_or("transport").to_owned(),
        message: error.message().unwrap_or_default().to_owned(),
    }
}

/// One tenant's encryption service.
#[derive(Clone, Debug)]
pub struct EncryptionService {
    kms: Client,
    alias: String,
    tenant: String,
}

impl EncryptionService {
    /// A service encrypting under `alias` (e.g. `alias/app-data`) for `tenant`.
    #[must_use]
    pub fn new(kms: Client, alias: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self { kms, alias: alias.into(), tenant: tenant.into() }
    }

    /// The operation context bound to every ciphertext.
    #[must_use]
    pub fn context(&self, purpose: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("purpose".to_owned(), purpose.to_owned()), ("tenant".to_owned(), self.tenant.clone())])
    }

    fn refused(&self, purpose: &str) -> ServiceError {
        ServiceError::Refused { purpose: purpose.to_owned(), tenant: self.tenant.clone() }
    }

    /// Encrypts a PII field with KMS `Encrypt`; the token is the base64 ciphertext blob.
    ///
    /// # Errors
    /// [`ServiceError::Kms`] (e.g. `NotFoundException` when the alias is missing,
    /// `ValidationException` above 4096 bytes).
    pub async fn encrypt_field(&self, purpose: &str, value: &str) -> Result<String, ServiceError> {
        let blob = self.kms_encrypt(purpose, value.as_bytes()).await?;
        Ok(base64::engine::general_purpose::STANDARD.encode(blob))
    }

    /// Decrypts a token from [`Self::encrypt_field`] made for the same purpose and tenant.
    ///
    /// # Errors
    /// [`ServiceError::Refused`] for another purpose or tenant or an altered token,
    /// [`ServiceError::Format`] for a token that is not base64 or not UTF-8 inside.
    pub async fn decrypt_field(&self, purpose: &str, token: &str) -> Result<String, ServiceError> {
        let blob =
            base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| ServiceError::Format("not base64"))?;
        let plaintext = self.kms_decrypt(purpose, blob).await?;
        String::from_utf8(plaintext).map_err(|_| ServiceError::Format("the field is not UTF-8"))
    }

    /// Seals a payload of any size: KMS `Encrypt` up to [`DIRECT_LIMIT`] bytes, envelope
    /// encryption above.
    ///
    /// # Errors
    /// [`ServiceError::Kms`] or [`ServiceError::Envelope`].
    pub async fn seal(&self, purpose: &str, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
        if payload.len() <= DIRECT_LIMIT {
            let blob = self.kms_encrypt(purpose, payload).await?;
            let mut sealed = Vec::with_capacity(blob.len() + 1);
            sealed.push(DIRECT_TAG);
            sealed.extend_from_slice(&blob);
            return Ok(sealed);
        }
        let mut message = Vec::with_capacity(payload.len() + payload.len() / 64 + 1024);
        Encryptor::new(self.kms.clone(), &self.alias, self.context(purpose))
            .encrypt(payload, &mut message)
            .await
            .map_err(ServiceError::Envelope)?;
        Ok(message)
    }

    /// Opens a value from [`Self::seal`] made for the same purpose and tenant.
    ///
    /// # Errors
    /// [`ServiceError::Refused`] for another purpose or tenant or altered data,
    /// [`ServiceError::Format`] for something `seal` did not produce.
    pub async fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, ServiceError> {
        match sealed.split_first() {
            Some((&DIRECT_TAG, blob)) => self.kms_decrypt(purpose, blob.to_vec()).await,
            Some((&ENVELOPE_TAG, _)) => {
                let mut out = Vec::new();
                let decryptor = Decryptor::new(self.kms.clone()).with_required_context(self.context(purpose));
                match decryptor.decrypt(sealed, &mut out).await {
                    Ok(_) => Ok(out),
                    Err(
                        EnvelopeError::ContextMismatch { .. }
                        | EnvelopeError::NoDecryptableDataKey { .. }
                        | EnvelopeError::CommitmentMismatch
                        | EnvelopeError::HeaderAuthentication
                        | EnvelopeError::FrameAuthentication { .. }
                        | EnvelopeError::SignatureInvalid,
                    ) => Err(self.refused(purpose)),
                    Err(other) => Err(ServiceError::Envelope(other)),
                }
            }
            _ => Err(ServiceError::Format("unknown leading byte")),
        }
    }

    async fn kms_encrypt(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let output = self
            .kms
            .encrypt()
            .key_id(&self.alias)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(self.context(purpose).into_iter().collect()))
            .send()
            .await
            .map_err(|e| kms_failure("Encrypt", &e))?;
        output.ciphertext_blob.map(Blob::into_inner).ok_or(ServiceError::Format("KMS returned no ciphertext"))
    }

    async fn kms_decrypt(&self, purpose: &str, blob: Vec<u8>) -> Result<Vec<u8>, ServiceError> {
        // No KeyId: the blob names its key, so data encrypted before the alias moved still
        // decrypts.
        let answer = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .set_encryption_context(Some(self.context(purpose).into_iter().collect()))
            .send()
            .await;
        match answer {
            Ok(output) => {
                output.plaintext.map(Blob::into_inner).ok_or(ServiceError::Format("KMS returned no plaintext"))
            }
            Err(e) if e.code() == Some("InvalidCiphertextException") => Err(self.refused(purpose)),
            Err(e) => Err(kms_failure("Decrypt", &e)),
        }
    }
}
