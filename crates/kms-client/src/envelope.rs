//! Envelope encryption of data of any size in the AWS Encryption SDK message format (version 2,
//! framed body, committing suites), streaming.
//!
//! - [`Encryptor`] calls KMS `GenerateDataKey` once per message, derives a content key and a
//!   commitment key from the data key (HKDF-SHA512, salt = message id), writes the header
//!   (encryption context, the KMS-encrypted data key under provider id `aws-kms` with the key ARN
//!   as provider info, the commitment key), then the plaintext in AES-256-GCM frames of
//!   `frame_length` bytes, then (suite `0x0578`) an ECDSA P-384 signature over everything.
//! - [`Decryptor`] parses and bounds the header, asks KMS `Decrypt` for the data key (KeyId = the
//!   provider-info ARN, EncryptionContext = the message's context), checks the commitment key
//!   before anything else, then the header tag, then each frame; the signature of a signed
//!   message is checked when the footer arrives.
//!
//! Messages written here decrypt with the AWS Encryption SDK (and its CLI) and the reverse; see
//! `docs/envelope-encryption.md` and `docs/adr/0002-envelope-format.md`.
//!
//! The streams are tokio `AsyncRead`/`AsyncWrite`: the KMS client is async, so the whole message
//! (one KMS call, then frames) runs on one task without a blocking-pool hop per frame; AES-GCM of
//! one 4 KiB frame takes about a microsecond, far below what would justify moving it off the
//! runtime. Memory is one frame (plus I/O buffers) whatever the message size.
//!
//! This module does not cache data keys (each message has its own) and does not write files:
//! where the output goes, and what to do with it when decryption fails half-way, is the caller's
//! decision (see [`OpenedMessage::decrypt_to`]).

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, Nonce};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, ParsedPublicKey};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

mod format;

pub use format::{AlgorithmSuite, EncryptedDataKey, Header, PUBLIC_KEY_CONTEXT_KEY, parse_context, serialize_context};
use format::{
    COMMITMENT_LEN, CONTENT_TYPE_FRAMED, CONTENT_TYPE_NON_FRAMED, FINAL_FRAME_MARKER, IV_LEN, KMS_PROVIDER_ID,
    MESSAGE_ID_LEN, RESERVED_CONTEXT_PREFIX, TAG_LEN, VERSION_1, VERSION_2, derive_keys, frame_aad, frame_iv,
    header_tag,
};

/// The default plaintext bytes per frame (the AWS Encryption SDK's default too).
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;
/// The largest frame length [`Encryptor`] writes and, by default, [`Decryptor`] reads: a frame is
/// held in memory whole, so this bounds memory (8 MiB, twice the largest the ESDK CLI suggests).
pub const MAX_FRAME_LENGTH: u32 = 8 * 1024 * 1024;
/// The default bound on encrypted data keys in a message to decrypt: a hostile header could
/// otherwise make us call KMS 65535 times.
pub const DEFAULT_MAX_ENCRYPTED_DATA_KEYS: u16 = 10;

/// What went wrong while encrypting or decrypting a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A KMS call failed; `code` is the AWS exception name when KMS answered.
    #[error("KMS {operation} failed: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Kms {
        /// The KMS operation.
        operation: &'static str,
        /// The AWS exception (`__type`), when the service answered.
        code: Option<String>,
        /// The service's message, or the transport error.
        message: String,
    },
    /// KMS answered without a field the protocol needs.
    #[error("KMS {0} answered without {1}")]
    KmsResponse(&'static str, &'static str),
    /// The data key from KMS is not 32 bytes long.
    #[error("the data key is {0} bytes long, not 32")]
    DataKeyLength(usize),
    /// The input ended inside the message.
    #[error("the message is truncated")]
    Truncated,
    /// Bytes follow the end of the message.
    #[error("unexpected bytes after the end of the message")]
    TrailingData,
    /// The message is not well formed.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A message format version other than 2.
    #[error("unsupported message format version {0:#04x}")]
    UnsupportedVersion(u8),
    /// A suite id this implementation does not know.
    #[error("unsupported algorithm suite {0:#06x}")]
    UnsupportedSuite(u16),
    /// A non-committing suite, refused by the commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT.
    #[error(
        "algorithm suite {0:#06x} does not commit to its key; the commitment policy requires key commitment \
         (suites 0x0478 and 0x0578)"
    )]
    NonCommittingSuite(u16),
    /// A non-framed body (only framed bodies are supported).
    #[error("non-framed message bodies are not supported")]
    NonFramed,
    /// A frame length of zero, or above the configured maximum.
    #[error("frame length {length} is outside 1..={max}")]
    FrameLength {
        /// The frame length asked for or found in the header.
        length: u32,
        /// The largest accepted.
        max: u32,
    },
    /// More encrypted data keys than the configured bound.
    #[error("the message has {count} encrypted data keys; at most {max} are accepted")]
    TooManyEncryptedDataKeys {
        /// Keys in the header.
        count: u16,
        /// The configured bound.
        max: u16,
    },
    /// No encrypted data key of the message could be decrypted with an allowed KMS key.
    #[error("no encrypted data key could be decrypted{}", last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    NoDecryptableDataKey {
        /// Why the last candidate failed (or why none was a candidate).
        last_error: Option<String>,
    },
    /// A required encryption-context pair is absent from the message or has another value.
    #[error("the message's encryption context does not contain {key}={value}")]
    ContextMismatch {
        /// The required key.
        key: String,
        /// The required value.
        value: String,
    },
    /// The caller used an encryption-context key reserved for the message format.
    #[error("encryption context key {0:?} is reserved (keys starting with aws-crypto-)")]
    ReservedContextKey(String),
    /// A field does not fit its length prefix.
    #[error("{0} is too long for the message format")]
    FieldTooLong(&'static str),
    /// The commitment key in the header is not the one the data key derives: the message could
    /// decrypt to different plaintexts under different data keys, so it is refused unread.
    #[error("key commitment mismatch: the header's commitment key does not match the data key")]
    CommitmentMismatch,
    /// The header authentication tag does not verify.
    #[error("the header authentication tag does not verify")]
    HeaderAuthentication,
    /// A frame's tag does not verify (tampered ciphertext, reordered or substituted frames).
    #[error("frame {sequence} does not authenticate")]
    FrameAuthentication {
        /// The frame's sequence number.
        sequence: u32,
    },
    /// A frame is out of sequence.
    #[error("frame {found} arrived where frame {expected} was due")]
    FrameSequence {
        /// The sequence number due.
        expected: u32,
        /// The one found.
        found: u32,
    },
    /// The message would need more than 2^32 - 2 frames.
    #[error("the input needs more frames than the message format allows; use a larger frame length")]
    TooManyFrames,
    /// The footer signature does not verify, or the verification key in the context is invalid.
    #[error("the message signature does not verify")]
    SignatureInvalid,
    /// A cryptographic primitive refused to run (not expected with valid lengths).
    #[error("cryptographic operation failed")]
    Crypto,
}

fn kms_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> EnvelopeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) => EnvelopeError::Kms {
            operation,
            code: service.err().code().map(str::to_owned),
            message: service.err().message().unwrap_or_default().to_owned(),
        },
        _ => EnvelopeError::Kms {
            operation,
            code: None,
            message: aws_sdk_kms::error::DisplayErrorContext(&error).to_string(),
        },
    }
}

/// Bytes written and read by one call, and what the message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// The message id.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// The suite.
    pub suite: AlgorithmSuite,
    /// The KMS key ARN that wrapped the data key.
    pub key_arn: String,
    /// The message's encryption context (with `aws-crypto-public-key` for signed suites).
    pub context: BTreeMap<String, String>,
    /// Plaintext bytes.
    pub plaintext_bytes: u64,
    /// Message bytes.
    pub message_bytes: u64,
}

/// Writes messages: one KMS data key per message, plaintext in authenticated frames.
#[derive(Clone, Debug)]
pub struct Encryptor {
    kms: aws_sdk_kms::Client,
    key_id: String,
    context: BTreeMap<String, String>,
    suite: AlgorithmSuite,
    frame_length: u32,
}

/// A writer that counts bytes and feeds the signature digest.
struct Output<W> {
    writer: W,
    digest: Option<digest::Context>,
    written: u64,
}

impl<W: AsyncWrite + Unpin> Output<W> {
    async fn put(&mut self, bytes: &[u8]) -> Result<(), EnvelopeError> {
        if let Some(d) = &mut self.digest {
            d.update(bytes);
        }
        self.writer.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        let n = reader.read(rest).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

impl Encryptor {
    /// An encryptor under `key_id` (key id, key ARN, alias name or alias ARN) with this
    /// encryption context, suite `0x0478` and 4 KiB frames.
    #[must_use]
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>, context: BTreeMap<String, String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            context,
            suite: AlgorithmSuite::AesGcmHkdfSha512Commit,
            frame_length: DEFAULT_FRAME_LENGTH,
        }
    }

    /// Uses `suite` instead of `0x0478`.
    #[must_use]
    pub fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = suite;
        self
    }

    /// Uses frames of `frame_length` plaintext bytes.
    ///
    /// # Errors
    /// [`EnvelopeError::FrameLength`] unless `1 <= frame_length <= MAX_FRAME_LENGTH`.
    pub fn with_frame_length(mut self, frame_length: u32) -> Result<Self, EnvelopeError> {
        if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
            return Err(EnvelopeError::FrameLength { length: frame_length, max: MAX_FRAME_LENGTH });
        }
        self.frame_length = frame_length;
        Ok(self)
    }

    /// Encrypts everything `reader` yields into one message written to `writer` (flushed, not
    /// shut down).
    ///
    /// # Errors
    /// [`EnvelopeError::ReservedContextKey`] for a context key starting `aws-crypto-`,
    /// [`EnvelopeError::Kms`] when `GenerateDataKey` fails (e.g. `NotFoundException`,
    /// `DisabledException`, `AccessDeniedException`), [`EnvelopeError::Io`] for the streams,
    /// [`EnvelopeError::TooManyFrames`] past 2^32 - 2 frames.
    pub async fn encrypt<R, W>(&self, mut reader: R, writer: W) -> Result<MessageSummary, EnvelopeError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if let Some(key) = self.context.keys().find(|k| k.starts_with(RESERVED_CONTEXT_PREFIX)) {
            return Err(EnvelopeError::ReservedContextKey(key.clone()));
        }
        let mut context = self.context.clone();
        let signer = if self.suite.is_signed() {
            let pair = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)
                .map_err(|_| EnvelopeError::Crypto)?;
            let public = compress_point(pair.public_key().as_ref())?;
            context.insert(PUBLIC_KEY_CONTEXT_KEY.to_owned(), base64::engine::general_purpose::STANDARD.encode(public));
            Some(pair)
        } else {
            None
        };
        // Fail on an oversized context before calling KMS.
        serialize_context(&context)?;

        let generated = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .number_of_bytes(32)
            .set_encryption_context(if context.is_empty() { None } else { Some(context.clone().into_iter().collect()) })
            .send()
            .await
            .map_err(|e| kms_error("GenerateDataKey", e))?;
        let data_key = Zeroizing::new(
            generated
                .plaintext
                .map(Blob::into_inner)
                .ok_or(EnvelopeError::KmsResponse("GenerateDataKey", "Plaintext"))?,
        );
        let key_arn = generated.key_id.ok_or(EnvelopeError::KmsResponse("GenerateDataKey", "KeyId"))?;
        let wrapped = generated
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(EnvelopeError::KmsResponse("GenerateDataKey", "CiphertextBlob"))?;

        let mut message_id = [0u8; MESSAGE_ID_LEN];
        aws_lc_rs::rand::fill(&mut message_id).map_err(|_| EnvelopeError::Crypto)?;
        let keys = derive_keys(self.suite, &data_key, &message_id)?;
        drop(data_key);
        let header = Header {
            suite: self.suite,
            message_id,
            context: context.clone(),
            encrypted_data_keys: vec![EncryptedDataKey {
                provider_id: KMS_PROVIDER_ID.to_owned(),
                provider_info: key_arn.clone().into_bytes(),
                ciphertext: wrapped,
            }],
            frame_length: self.frame_length,
            commitment: *keys.commitment,
        };
        let header_bytes = header.serialize()?;
        let tag = header_tag(&keys.content, &header_bytes)?;

        let mut out =
            Output { writer, digest: signer.as_ref().map(|_| digest::Context::new(&digest::SHA384)), written: 0 };
        out.put(&header_bytes).await?;
        out.put(&tag).await?;

        // Full chunks become regular frames; the first short chunk (possibly empty) is the final
        // frame. An input that is an exact multiple of the frame length therefore ends with an
        // empty final frame: the Python ESDK refuses a final frame as long as the frame length.
        let frame_len = self.frame_length as usize;
        let mut chunk_buf = Zeroizing::new(vec![0u8; frame_len]);
        let mut sequence: u32 = 1;
        let mut plaintext_bytes: u64 = 0;
        loop {
            let len = fill(&mut reader, &mut chunk_buf).await?;
            let is_final = len < frame_len;
            let chunk = chunk_buf.get_mut(..len).ok_or(EnvelopeError::Crypto)?;
            plaintext_bytes += len as u64;
            let aad = frame_aad(&message_id, is_final, sequence, len as u64);
            let iv = frame_iv(sequence);
            let frame_tag = keys
                .content
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(&aad), chunk)
                .map_err(|_| EnvelopeError::Crypto)?;
            if is_final {
                out.put(&FINAL_FRAME_MARKER.to_be_bytes()).await?;
            }
            out.put(&sequence.to_be_bytes()).await?;
            out.put(&iv).await?;
            if is_final {
                let len = u32::try_from(len).map_err(|_| EnvelopeError::Crypto)?;
                out.put(&len.to_be_bytes()).await?;
            }
            out.put(chunk).await?;
            out.put(frame_tag.as_ref()).await?;
            if is_final {
                break;
            }
            sequence =
                sequence.checked_add(1).filter(|s| *s != FINAL_FRAME_MARKER).ok_or(EnvelopeError::TooManyFrames)?;
        }

        if let (Some(pair), Some(d)) = (signer, out.digest.take()) {
            let digest = d.finish();
            let sig = pair.sign_digest(&digest).map_err(|_| EnvelopeError::Crypto)?;
            let len = u16::try_from(sig.as_ref().len()).map_err(|_| EnvelopeError::Crypto)?;
            out.put(&len.to_be_bytes()).await?;
            out.put(sig.as_ref()).await?;
        }
        out.writer.flush().await?;
        Ok(MessageSummary {
            message_id,
            suite: self.suite,
            key_arn,
            context,
            plaintext_bytes,
            message_bytes: out.written,
        })
    }
}

/// An uncompressed SEC1 point (`04 ‖ X ‖ Y`) in compressed form (`02|03 ‖ X`), as the message
/// format stores the verification key.
fn compress_point(uncompressed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let (Some(0x04), Some(rest)) = (uncompressed.first(), uncompressed.get(1..)) else {
        return Err(EnvelopeError::Crypto);
    };
    let half = rest.len() / 2;
    let (x, y) = rest.split_at(half);
    let parity = y.last().map_or(0, |b| b & 1);
    let mut out = Vec::with_capacity(1 + half);
    out.push(0x02 | parity);
    out.extend_from_slice(x);
    Ok(out)
}

/// Which KMS keys [`Decryptor`] may ask to decrypt a data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFilter {
    /// Any `aws-kms` data key, with the key ARN the message names (discovery mode).
    Discovery,
    /// Only data keys wrapped by one of these key ARNs (strict mode).
    Strict(Vec<String>),
}

/// Reads messages.
#[derive(Clone, Debug)]
pub struct Decryptor {
    kms: aws_sdk_kms::Client,
    keys: KeyFilter,
    required_context: BTreeMap<String, String>,
    max_encrypted_data_keys: u16,
    max_frame_length: u32,
}

/// A reader that counts bytes and feeds the signature digest.
struct Input<R> {
    reader: R,
    digest: Option<digest::Context>,
    read: u64,
}

impl<R: AsyncRead + Unpin> Input<R> {
    async fn exact(&mut self, buf: &mut [u8]) -> Result<(), EnvelopeError> {
        match self.reader.read_exact(buf).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(EnvelopeError::Truncated),
            Err(e) => return Err(EnvelopeError::Io(e)),
        }
        if let Some(d) = &mut self.digest {
            d.update(buf);
        }
        self.read += buf.len() as u64;
        Ok(())
    }

    async fn u8(&mut self) -> Result<u8, EnvelopeError> {
        let mut b = [0u8; 1];
        self.exact(&mut b).await?;
        Ok(b[0])
    }

    async fn u16(&mut self) -> Result<u16, EnvelopeError> {
        let mut b = [0u8; 2];
        self.exact(&mut b).await?;
        Ok(u16::from_be_bytes(b))
    }

    async fn u32(&mut self) -> Result<u32, EnvelopeError> {
        let mut b = [0u8; 4];
        self.exact(&mut b).await?;
        Ok(u32::from_be_bytes(b))
    }

    async fn vec(&mut self, len: usize) -> Result<Vec<u8>, EnvelopeError> {
        let mut v = vec![0u8; len];
        self.exact(&mut v).await?;
        Ok(v)
    }

    /// A u16-length-prefixed field.
    async fn field(&mut self) -> Result<Vec<u8>, EnvelopeError> {
        let len = self.u16().await?;
        self.vec(usize::from(len)).await
    }
}

/// Appends to the recorded header bytes what `read` returned.
macro_rules! record {
    ($header:ident, $value:expr) => {{
        let value = $value;
        $header.extend_from_slice(&value.to_be_bytes());
        value
    }};
}

impl Decryptor {
    /// A decryptor in discovery mode (any KMS key the message names, if the caller may use
    /// it), with no required context and the default bounds.
    #[must_use]
    pub fn new(kms: aws_sdk_kms::Client) -> Self {
        Self {
            kms,
            keys: KeyFilter::Discovery,
            required_context: BTreeMap::new(),
            max_encrypted_data_keys: DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
            max_frame_length: MAX_FRAME_LENGTH,
        }
    }

    /// Only decrypts data keys wrapped by one of these key ARNs (strict mode).
    #[must_use]
    pub fn with_allowed_keys(mut self, key_arns: Vec<String>) -> Self {
        self.keys = KeyFilter::Strict(key_arns);
        self
    }

    /// Refuses messages whose encryption context lacks any of these pairs.
    #[must_use]
    pub fn with_required_context(mut self, context: BTreeMap<String, String>) -> Self {
        self.required_context = context;
        self
    }

    /// Refuses messages with more encrypted data keys than `max` (default 10).
    #[must_use]
    pub fn with_max_encrypted_data_keys(mut self, max: u16) -> Self {
        self.max_encrypted_data_keys = max;
        self
    }

    /// Refuses messages whose frame length exceeds `max` (default [`MAX_FRAME_LENGTH`]).
    #[must_use]
    pub fn with_max_frame_length(mut self, max: u32) -> Self {
        self.max_frame_length = max;
        self
    }

    /// Decrypts one message from `reader` to `writer`; see [`OpenedMessage::decrypt_to`] for
    /// what `writer` holds when this fails.
    ///
    /// # Errors
    /// As [`Decryptor::open`] and [`OpenedMessage::decrypt_to`].
    pub async fn decrypt<R, W>(&self, reader: R, writer: W) -> Result<MessageSummary, EnvelopeError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        self.open(reader).await?.decrypt_to(writer).await
    }

    /// Reads and authenticates the header: bounds every field, decrypts the data key with KMS,
    /// checks key commitment, then the header tag, then the required context. No plaintext is
    /// produced yet.
    ///
    /// # Errors
    /// [`EnvelopeError::Truncated`], [`EnvelopeError::Malformed`],
    /// [`EnvelopeError::UnsupportedVersion`], [`EnvelopeError::UnsupportedSuite`],
    /// [`EnvelopeError::NonCommittingSuite`], [`EnvelopeError::NonFramed`],
    /// [`EnvelopeError::FrameLength`], [`EnvelopeError::TooManyEncryptedDataKeys`] for the
    /// header's shape; [`EnvelopeError::NoDecryptableDataKey`] when KMS decrypts none of the
    /// allowed data keys (`InvalidCiphertextException` for a wrong context, `AccessDenied`…);
    /// [`EnvelopeError::CommitmentMismatch`], [`EnvelopeError::HeaderAuthentication`],
    /// [`EnvelopeError::ContextMismatch`], [`EnvelopeError::SignatureInvalid`] (a bad
    /// verification key).
    pub async fn open<R: AsyncRead + Unpin>(&self, reader: R) -> Result<OpenedMessage<R>, EnvelopeError> {
        let mut input = Input { reader, digest: None, read: 0 };
        let mut h = Vec::with_capacity(512);
        let version = record!(h, input.u8().await?);
        if version == VERSION_1 {
            // Version 1: type byte, then the suite id; only non-committing suites exist there.
            let _type = input.u8().await?;
            let id = input.u16().await?;
            return Err(match AlgorithmSuite::from_id(id) {
                Err(e) => e,
                Ok(_) => EnvelopeError::Malformed("a committing suite in a version 1 header"),
            });
        }
        if version != VERSION_2 {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let suite = AlgorithmSuite::from_id(record!(h, input.u16().await?))?;
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        input.exact(&mut message_id).await?;
        h.extend_from_slice(&message_id);
        let context_len = record!(h, input.u16().await?);
        let context_bytes = input.vec(usize::from(context_len)).await?;
        h.extend_from_slice(&context_bytes);
        let context = parse_context(&context_bytes)?;
        let count = record!(h, input.u16().await?);
        if count == 0 {
            return Err(EnvelopeError::Malformed("the message has no encrypted data key"));
        }
        if count > self.max_encrypted_data_keys {
            return Err(EnvelopeError::TooManyEncryptedDataKeys { count, max: self.max_encrypted_data_keys });
        }
        let mut encrypted_data_keys = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let mut parts = [Vec::new(), Vec::new(), Vec::new()];
            for part in &mut parts {
                *part = input.field().await?;
                push_field(&mut h, part);
            }
            let [provider_id, provider_info, ciphertext] = parts;
            let provider_id =
                String::from_utf8(provider_id).map_err(|_| EnvelopeError::Malformed("key provider id is not UTF-8"))?;
            encrypted_data_keys.push(EncryptedDataKey { provider_id, provider_info, ciphertext });
        }
        match record!(h, input.u8().await?) {
            CONTENT_TYPE_FRAMED => {}
            CONTENT_TYPE_NON_FRAMED => return Err(EnvelopeError::NonFramed),
            _ => return Err(EnvelopeError::Malformed("unknown content type")),
        }
        let frame_length = record!(h, input.u32().await?);
        if frame_length == 0 || frame_length > self.max_frame_length {
            return Err(EnvelopeError::FrameLength { length: frame_length, max: self.max_frame_length });
        }
        let mut commitment = [0u8; COMMITMENT_LEN];
        input.exact(&mut commitment).await?;
        h.extend_from_slice(&commitment);
        let mut tag = [0u8; TAG_LEN];
        input.exact(&mut tag).await?;

        // Check what needs no key before calling KMS.
        let verifier = if suite.is_signed() {
            let encoded = context.get(PUBLIC_KEY_CONTEXT_KEY).ok_or(EnvelopeError::SignatureInvalid)?;
            let point = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| EnvelopeError::SignatureInvalid)?;
            Some(
                ParsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, point)
                    .map_err(|_| EnvelopeError::SignatureInvalid)?,
            )
        } else {
            None
        };

        let (data_key, key_arn) = self.unwrap_data_key(&encrypted_data_keys, &context).await?;
        let keys = derive_keys(suite, &data_key, &message_id)?;
        drop(data_key);
        aws_lc_rs::constant_time::verify_slices_are_equal(keys.commitment.as_ref(), &commitment)
            .map_err(|_| EnvelopeError::CommitmentMismatch)?;
        let mut empty = tag;
        keys.content
            .open_in_place(Nonce::assume_unique_for_key(frame_iv(0)), Aad::from(&h), &mut empty)
            .map_err(|_| EnvelopeError::HeaderAuthentication)?;
        for (key, value) in &self.required_context {
            if context.get(key) != Some(value) {
                return Err(EnvelopeError::ContextMismatch { key: key.clone(), value: value.clone() });
            }
        }
        if verifier.is_some() {
            let mut d = digest::Context::new(&digest::SHA384);
            d.update(&h);
            d.update(&tag);
            input.digest = Some(d);
        }
        let header = Header { suite, message_id, context, encrypted_data_keys, frame_length, commitment };
        Ok(OpenedMessage { input, header, keys, key_arn, verifier })
    }

    async fn unwrap_data_key(
        &self,
        keys: &[EncryptedDataKey],
        context: &BTreeMap<String, String>,
    ) -> Result<(Zeroizing<Vec<u8>>, String), EnvelopeError> {
        let mut last_error = None;
        for key in keys {
            if key.provider_id != KMS_PROVIDER_ID {
                last_error.get_or_insert_with(|| format!("key provider {:?} is not aws-kms", key.provider_id));
                continue;
            }
            let Ok(arn) = std::str::from_utf8(&key.provider_info) else {
                last_error = Some("provider info is not a key ARN".to_owned());
                continue;
            };
            if !arn.starts_with("arn:") || !arn.contains(":key/") {
                last_error = Some(format!("provider info {arn:?} is not a KMS key ARN"));
                continue;
            }
            if let KeyFilter::Strict(allowed) = &self.keys
                && !allowed.iter().any(|a| a == arn)
            {
                last_error = Some(format!("key {arn} is not among the allowed keys"));
                continue;
            }
            let answer = self
                .kms
                .decrypt()
                .key_id(arn)
                .ciphertext_blob(Blob::new(key.ciphertext.clone()))
                .set_encryption_context(if context.is_empty() {
                    None
                } else {
                    Some(context.clone().into_iter().collect())
                })
                .send()
                .await;
            match answer {
                Ok(output) => {
                    let plaintext = Zeroizing::new(output.plaintext.map(Blob::into_inner).unwrap_or_default());
                    if output.key_id.as_deref() != Some(arn) {
                        last_error = Some(format!("KMS answered for another key than {arn}"));
                        continue;
                    }
                    if plaintext.len() != format::DATA_KEY_LEN {
                        last_error = Some(EnvelopeError::DataKeyLength(plaintext.len()).to_string());
                        continue;
                    }
                    return Ok((plaintext, arn.to_owned()));
                }
                Err(e) => last_error = Some(kms_error("Decrypt", e).to_string()),
            }
        }
        Err(EnvelopeError::NoDecryptableDataKey { last_error })
    }
}

fn push_field(header: &mut Vec<u8>, field: &[u8]) {
    // The length was read as a u16, so it fits.
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(field);
}

/// A message whose header is authenticated; the body is still to read.
pub struct OpenedMessage<R> {
    input: Input<R>,
    header: Header,
    keys: format::MessageKeys,
    key_arn: String,
    verifier: Option<ParsedPublicKey>,
}

impl<R> std::fmt::Debug for OpenedMessage<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedMessage").field("header", &self.header).field("key_arn", &self.key_arn).finish()
    }
}

impl<R: AsyncRead + Unpin> OpenedMessage<R> {
    /// The authenticated header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The ARN of the KMS key that decrypted the data key.
    #[must_use]
    pub fn key_arn(&self) -> &str {
        &self.key_arn
    }

    /// Decrypts the body to `writer` (flushed, not shut down), one authenticated frame at a
    /// time, then checks that the input ends.
    ///
    /// Every byte written belongs to a frame whose AES-GCM tag verified, but the message as a
    /// whole is only proven complete, and (signed suites) proven signed, when this returns
    /// `Ok`. On `Err` the writer holds a prefix that must be discarded: a caller writing to a
    /// file writes to a temporary file and renames it only on `Ok` (the `ferrokms decrypt`
    /// command does), one writing to a pipe tells its reader to drop what it got.
    ///
    /// # Errors
    /// [`EnvelopeError::Truncated`], [`EnvelopeError::FrameSequence`],
    /// [`EnvelopeError::FrameAuthentication`], [`EnvelopeError::Malformed`] (a final frame
    /// longer than the frame length), [`EnvelopeError::SignatureInvalid`],
    /// [`EnvelopeError::TrailingData`], [`EnvelopeError::Io`].
    pub async fn decrypt_to<W: AsyncWrite + Unpin>(mut self, mut writer: W) -> Result<MessageSummary, EnvelopeError> {
        let frame_len = self.header.frame_length as usize;
        let mut buf = Zeroizing::new(vec![0u8; frame_len + TAG_LEN]);
        let mut expected: u32 = 1;
        let mut plaintext_bytes: u64 = 0;
        loop {
            let first = self.input.u32().await?;
            let is_final = first == FINAL_FRAME_MARKER;
            let sequence = if is_final { self.input.u32().await? } else { first };
            if sequence != expected {
                return Err(EnvelopeError::FrameSequence { expected, found: sequence });
            }
            let mut iv = [0u8; IV_LEN];
            self.input.exact(&mut iv).await?;
            let len = if is_final {
                let len = self.input.u32().await?;
                if len > self.header.frame_length {
                    return Err(EnvelopeError::Malformed("the final frame is longer than the frame length"));
                }
                len as usize
            } else {
                frame_len
            };
            let frame = buf.get_mut(..len + TAG_LEN).ok_or(EnvelopeError::Crypto)?;
            self.input.exact(frame).await?;
            let aad = frame_aad(&self.header.message_id, is_final, sequence, len as u64);
            let plaintext = self
                .keys
                .content
                .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(&aad), frame)
                .map_err(|_| EnvelopeError::FrameAuthentication { sequence })?;
            writer.write_all(plaintext).await?;
            plaintext_bytes += len as u64;
            if is_final {
                break;
            }
            expected =
                expected.checked_add(1).filter(|s| *s != FINAL_FRAME_MARKER).ok_or(EnvelopeError::TooManyFrames)?;
        }
        if let Some(verifier) = &self.verifier {
            let digest = self.input.digest.take().map(digest::Context::finish).ok_or(EnvelopeError::Crypto)?;
            let len = self.input.u16().await?;
            let signature = self.input.vec(usize::from(len)).await?;
            verifier.verify_digest_sig(&digest, &signature).map_err(|_| EnvelopeError::SignatureInvalid)?;
        }
        let mut probe = [0u8; 1];
        if self.input.reader.read(&mut probe).await? != 0 {
            return Err(EnvelopeError::TrailingData);
        }
        writer.flush().await?;
        Ok(MessageSummary {
            message_id: self.header.message_id,
            suite: self.header.suite,
            key_arn: self.key_arn,
            context: self.header.context,
            plaintext_bytes,
            message_bytes: self.input.read,
        })
    }
}
