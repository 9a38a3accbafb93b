//! The AWS Encryption SDK message format, version 2: algorithm suites, the header codec, the
//! encryption-context codec, key derivation and the body AAD.
//!
//! Everything here is pure: no I/O, no KMS. The streaming code in the parent module reads the
//! bytes and calls these functions.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use super::EnvelopeError;

/// Message format version 2, the only one that carries key commitment.
pub(crate) const VERSION_2: u8 = 0x02;
/// Message format version 1 (non-committing suites only): recognised to give a clear error.
pub(crate) const VERSION_1: u8 = 0x01;
/// Content type "framed".
pub(crate) const CONTENT_TYPE_FRAMED: u8 = 0x02;
/// Content type "non-framed" (never committing in practice; rejected with a clear error).
pub(crate) const CONTENT_TYPE_NON_FRAMED: u8 = 0x01;
/// Length of the message id in version 2.
pub(crate) const MESSAGE_ID_LEN: usize = 32;
/// Length of the commitment key stored in the header (the suite data of the committing suites).
pub(crate) const COMMITMENT_LEN: usize = 32;
/// AES-GCM IV length.
pub(crate) const IV_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Length of the data key the committing suites take from KMS (AES-256).
pub(crate) const DATA_KEY_LEN: usize = 32;
/// The sequence-number value that marks the final frame.
pub(crate) const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// The provider id of the AWS KMS keyring; its provider info is the key ARN.
pub(crate) const KMS_PROVIDER_ID: &str = "aws-kms";
/// The encryption-context key under which signing suites store the verification key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";
/// Encryption-context keys with this prefix are reserved for the AWS Encryption SDK.
pub(crate) const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

const FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Final Frame";
const DERIVE_LABEL: &[u8] = b"DERIVEKEY";
const COMMIT_LABEL: &[u8] = b"COMMITKEY";

/// The algorithm suites this implementation writes and reads: the two committing AES-256-GCM
/// suites of message format version 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlgorithmSuite {
    /// `0x0478` AES-256-GCM, HKDF-SHA512, key commitment, no signature. The default: every
    /// reader of the message is also trusted to write it.
    AesGcmHkdfSha512Commit,
    /// `0x0578` AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384 signature over the whole
    /// message (the AWS Encryption SDK's default): readers can tell that the message was written
    /// by someone who held the signing key, not merely the data key.
    AesGcmHkdfSha512CommitEcdsaP384,
}

impl AlgorithmSuite {
    /// The two-byte suite id of the message header.
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::AesGcmHkdfSha512Commit => 0x0478,
            Self::AesGcmHkdfSha512CommitEcdsaP384 => 0x0578,
        }
    }

    /// Whether the message carries an ECDSA P-384 footer signature.
    #[must_use]
    pub fn is_signed(self) -> bool {
        matches!(self, Self::AesGcmHkdfSha512CommitEcdsaP384)
    }

    /// The suite with this id.
    ///
    /// # Errors
    /// [`EnvelopeError::NonCommittingSuite`] for the AWS Encryption SDK's non-committing suites
    /// (the commitment policy is REQUIRE_ENCRYPT_REQUIRE_DECRYPT), otherwise
    /// [`EnvelopeError::UnsupportedSuite`].
    pub fn from_id(id: u16) -> Result<Self, EnvelopeError> {
        match id {
            0x0478 => Ok(Self::AesGcmHkdfSha512Commit),
            0x0578 => Ok(Self::AesGcmHkdfSha512CommitEcdsaP384),
            0x0014 | 0x0046 | 0x0078 | 0x0114 | 0x0146 | 0x0178 | 0x0214 | 0x0346 | 0x0378 => {
                Err(EnvelopeError::NonCommittingSuite(id))
            }
            other => Err(EnvelopeError::UnsupportedSuite(other)),
        }
    }
}

/// One encrypted data key as stored in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedDataKey {
    /// Key provider id (`aws-kms` for KMS).
    pub provider_id: String,
    /// Key provider info (the KMS key ARN for KMS).
    pub provider_info: Vec<u8>,
    /// The wrapped data key (a KMS ciphertext blob for KMS).
    pub ciphertext: Vec<u8>,
}

/// The parsed message header (everything the header authentication tag covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The algorithm suite.
    pub suite: AlgorithmSuite,
    /// The 32-byte message id (the HKDF salt).
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// The encryption context, including `aws-crypto-public-key` for signed suites.
    pub context: BTreeMap<String, String>,
    /// The encrypted data keys.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Plaintext bytes per regular frame.
    pub frame_length: u32,
    /// The commitment key the writer derived.
    pub commitment: [u8; COMMITMENT_LEN],
}

fn push_u16_len(out: &mut Vec<u8>, bytes: &[u8], what: &'static str) -> Result<(), EnvelopeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| EnvelopeError::FieldTooLong(what))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Serializes an encryption context the way the message header and the AWS Encryption SDK do:
/// empty for an empty context, otherwise a pair count and length-prefixed UTF-8 keys and values
/// sorted by key bytes (a `BTreeMap<String, _>` iterates in exactly that order).
///
/// # Errors
/// [`EnvelopeError::FieldTooLong`] when the context has more than 65535 pairs or a key or value
/// longer than 65535 bytes.
pub fn serialize_context(context: &BTreeMap<String, String>) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::new();
    if context.is_empty() {
        return Ok(out);
    }
    let count = u16::try_from(context.len()).map_err(|_| EnvelopeError::FieldTooLong("encryption context"))?;
    out.extend_from_slice(&count.to_be_bytes());
    for (key, value) in context {
        push_u16_len(&mut out, key.as_bytes(), "encryption context key")?;
        push_u16_len(&mut out, value.as_bytes(), "encryption context value")?;
    }
    Ok(out)
}

impl Header {
    /// The header bytes (without the authentication tag).
    ///
    /// # Errors
    /// [`EnvelopeError::FieldTooLong`] when a field does not fit its length prefix.
    pub fn serialize(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION_2);
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(&self.message_id);
        push_u16_len(&mut out, &serialize_context(&self.context)?, "encryption context")?;
        let count = u16::try_from(self.encrypted_data_keys.len())
            .map_err(|_| EnvelopeError::FieldTooLong("encrypted data key count"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for key in &self.encrypted_data_keys {
            push_u16_len(&mut out, key.provider_id.as_bytes(), "key provider id")?;
            push_u16_len(&mut out, &key.provider_info, "key provider info")?;
            push_u16_len(&mut out, &key.ciphertext, "encrypted data key")?;
        }
        out.push(CONTENT_TYPE_FRAMED);
        out.extend_from_slice(&self.frame_length.to_be_bytes());
        out.extend_from_slice(&self.commitment);
        Ok(out)
    }
}

/// A cursor over bytes already in memory (the serialized encryption context).
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        if self.rest.len() < n {
            return Err(EnvelopeError::Malformed("encryption context is shorter than its lengths say"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]))
    }

    fn string(&mut self) -> Result<String, EnvelopeError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| EnvelopeError::Malformed("encryption context is not UTF-8"))
    }
}

/// Parses a serialized encryption context, rejecting duplicate keys, unsorted keys and trailing
/// bytes so that one context has exactly one encoding (the header authentication tag and KMS
/// both bind that encoding).
///
/// # Errors
/// [`EnvelopeError::Malformed`] for any deviation from the canonical encoding.
pub fn parse_context(bytes: &[u8]) -> Result<BTreeMap<String, String>, EnvelopeError> {
    let mut context = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(context);
    }
    let mut cursor = Cursor { rest: bytes };
    let count = cursor.u16()?;
    if count == 0 {
        return Err(EnvelopeError::Malformed("encryption context has a zero pair count"));
    }
    let mut previous: Option<String> = None;
    for _ in 0..count {
        let key = cursor.string()?;
        let value = cursor.string()?;
        if previous.as_ref().is_some_and(|p| p.as_bytes() >= key.as_bytes()) {
            return Err(EnvelopeError::Malformed("encryption context keys are duplicated or not sorted"));
        }
        previous = Some(key.clone());
        context.insert(key, value);
    }
    if !cursor.rest.is_empty() {
        return Err(EnvelopeError::Malformed("encryption context has trailing bytes"));
    }
    Ok(context)
}

/// The keys derived from one data key for one message.
pub(crate) struct MessageKeys {
    /// The AES-256-GCM key for the header tag and the frames.
    pub(crate) content: LessSafeKey,
    /// The commitment key stored in (and checked against) the header.
    pub(crate) commitment: Zeroizing<[u8; COMMITMENT_LEN]>,
}

/// `L` for HKDF expansions of fixed length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives the content key and the commitment key: HKDF-SHA512 with the message id as salt,
/// info = suite id ‖ "DERIVEKEY" for the content key and "COMMITKEY" for the commitment key.
///
/// # Errors
/// [`EnvelopeError::Crypto`] if aws-lc refuses (it does not for these lengths).
pub(crate) fn derive_keys(
    suite: AlgorithmSuite,
    data_key: &[u8],
    message_id: &[u8; MESSAGE_ID_LEN],
) -> Result<MessageKeys, EnvelopeError> {
    if data_key.len() != DATA_KEY_LEN {
        return Err(EnvelopeError::DataKeyLength(data_key.len()));
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, message_id).extract(data_key);
    let suite_id = suite.id().to_be_bytes();
    let derive_info: [&[u8]; 2] = [&suite_id, DERIVE_LABEL];
    let mut content = Zeroizing::new([0u8; DATA_KEY_LEN]);
    prk.expand(&derive_info, Len(DATA_KEY_LEN))
        .and_then(|okm| okm.fill(content.as_mut()))
        .map_err(|_| EnvelopeError::Crypto)?;
    let mut commitment = Zeroizing::new([0u8; COMMITMENT_LEN]);
    prk.expand(&[COMMIT_LABEL], Len(COMMITMENT_LEN))
        .and_then(|okm| okm.fill(commitment.as_mut()))
        .map_err(|_| EnvelopeError::Crypto)?;
    let unbound = UnboundKey::new(&AES_256_GCM, content.as_ref()).map_err(|_| EnvelopeError::Crypto)?;
    Ok(MessageKeys { content: LessSafeKey::new(unbound), commitment })
}

/// The IV of frame `sequence` (0 is the header tag): eight zero bytes then the big-endian
/// sequence number, so no IV repeats within a message.
pub(crate) fn frame_iv(sequence: u32) -> [u8; IV_LEN] {
    let [a, b, c, d] = sequence.to_be_bytes();
    [0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d]
}

/// The body AAD of one frame: message id ‖ content string ‖ sequence number ‖ content length.
pub(crate) fn frame_aad(message_id: &[u8; MESSAGE_ID_LEN], is_final: bool, sequence: u32, length: u64) -> Vec<u8> {
    let label = if is_final { FINAL_FRAME_AAD } else { FRAME_AAD };
    let mut aad = Vec::with_capacity(MESSAGE_ID_LEN + label.len() + 12);
    aad.extend_from_slice(message_id);
    aad.extend_from_slice(label);
    aad.extend_from_slice(&sequence.to_be_bytes());
    aad.extend_from_slice(&length.to_be_bytes());
    aad
}

/// The header authentication tag: AES-GCM over no plaintext, AAD = the header bytes, IV 0.
///
/// # Errors
/// [`EnvelopeError::Crypto`] if aws-lc refuses.
pub(crate) fn header_tag(key: &LessSafeKey, header: &[u8]) -> Result<[u8; TAG_LEN], EnvelopeError> {
    let mut empty: [u8; 0] = [];
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(frame_iv(0)), Aad::from(header), &mut empty)
        .map_err(|_| EnvelopeError::Crypto)?;
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn context_round_trips_and_is_canonical() {
        let mut context = BTreeMap::new();
        context.insert("b".to_owned(), "2".to_owned());
        context.insert("a".to_owned(), "1".to_owned());
        let bytes = serialize_context(&context).unwrap();
        assert_eq!(bytes, [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2']);
        assert_eq!(parse_context(&bytes).unwrap(), context);
        assert!(serialize_context(&BTreeMap::new()).unwrap().is_empty());
        // Unsorted, duplicated, truncated, trailing: all refused.
        assert!(parse_context(&[0, 2, 0, 1, b'b', 0, 0, 0, 1, b'a', 0, 0]).is_err());
        assert!(parse_context(&[0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0]).is_err());
        assert!(parse_context(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_context(&[bytes.as_slice(), &[0]].concat()).is_err());
        assert!(parse_context(&[0, 0]).is_err());
        assert!(parse_context(&[0xff, 0xff]).is_err());
    }

    proptest::proptest! {
        /// Any context round trips through its encoding.
        #[test]
        fn any_context_round_trips(pairs in proptest::collection::btree_map(".{1,12}", ".{0,12}", 0..8)) {
            let bytes = serialize_context(&pairs).unwrap();
            proptest::prop_assert_eq!(parse_context(&bytes).unwrap(), pairs);
        }

        /// Parsing arbitrary bytes returns an error or a context, never panics, and whatever
        /// parses re-encodes to the same bytes (one context, one encoding).
        #[test]
        fn parsing_is_total_and_canonical(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Ok(context) = parse_context(&bytes) {
                proptest::prop_assert_eq!(serialize_context(&context).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn suites_and_commitment_policy() {
        assert_eq!(AlgorithmSuite::from_id(0x0478).unwrap(), AlgorithmSuite::AesGcmHkdfSha512Commit);
        assert_eq!(AlgorithmSuite::from_id(0x0578).unwrap(), AlgorithmSuite::AesGcmHkdfSha512CommitEcdsaP384);
        assert!(matches!(AlgorithmSuite::from_id(0x0378), Err(EnvelopeError::NonCommittingSuite(0x0378))));
        assert!(matches!(AlgorithmSuite::from_id(0x1234), Err(EnvelopeError::UnsupportedSuite(0x1234))));
    }

    #[test]
    fn frame_ivs_are_distinct_and_big_endian() {
        assert_eq!(frame_iv(0), [0; 12]);
        assert_eq!(frame_iv(0x0102_0304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn derivation_depends_on_suite_and_message_id() {
        let key = [7u8; 32];
        let a = derive_keys(AlgorithmSuite::AesGcmHkdfSha512Commit, &key, &[1; 32]).unwrap();
        let b = derive_keys(AlgorithmSuite::AesGcmHkdfSha512CommitEcdsaP384, &key, &[1; 32]).unwrap();
        let c = derive_keys(AlgorithmSuite::AesGcmHkdfSha512Commit, &key, &[2; 32]).unwrap();
        // The commitment key does not depend on the suite; it does on the message id.
        assert_eq!(*a.commitment, *b.commitment);
        assert_ne!(*a.commitment, *c.commitment);
        assert_ne!(header_tag(&a.content, b"h").unwrap(), header_tag(&b.content, b"h").unwrap());
        assert!(derive_keys(AlgorithmSuite::AesGcmHkdfSha512Commit, &[0; 16], &[1; 32]).is_err());
    }
}
