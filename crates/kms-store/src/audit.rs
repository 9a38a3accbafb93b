//! The audit chain: how stored audit records are linked, and how a trail is verified.
//!
//! Record `n` stores `hash_n = SHA-256(hash_{n-1} ‖ n as 8 big-endian bytes ‖ record_json)`,
//! with `hash_0` = 32 zero bytes. Removing, reordering or editing a record breaks the chain at
//! that record; periodic digests, signed with a key only the server holds, pin the chain's head
//! so that rewriting the whole tail is detected too.

use kms_core::Timestamp;
use kms_crypto::digest::Sha256;

/// One stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// CloudTrail `eventID`.
    pub event_id: String,
    /// When it happened.
    pub time: Timestamp,
    /// `eventName`.
    pub event_name: String,
    /// The key ARN it concerns.
    pub key_arn: Option<String>,
    /// A second key it concerns (ReEncrypt's other key).
    pub other_key_arn: Option<String>,
    /// The acting principal.
    pub principal: String,
    /// `errorCode`, for failures.
    pub error_code: Option<String>,
    /// The record's JSON exactly as hashed.
    pub record: String,
    /// The previous record's hash.
    pub prev_hash: Vec<u8>,
    /// This record's hash.
    pub hash: Vec<u8>,
}

impl AuditRow {
    /// Whether the record concerns the key `arn` (as the key acted on, or ReEncrypt's other key).
    pub fn concerns_key(&self, arn: &str) -> bool {
        self.key_arn.as_deref() == Some(arn) || self.other_key_arn.as_deref() == Some(arn)
    }
}

/// A signed statement of the chain's head at some point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDigest {
    /// The last record the digest covers.
    pub seq: u64,
    /// That record's hash.
    pub hash: Vec<u8>,
    /// When the digest was made.
    pub created: Timestamp,
    /// Ed25519 signature over [`AuditDigest::signed_bytes`].
    pub signature: Vec<u8>,
}

impl AuditDigest {
    /// What the signature covers: `"ferrokms-audit-digest-v1" ‖ seq ‖ hash ‖ created`.
    pub fn signed_bytes(seq: u64, hash: &[u8], created: Timestamp) -> Vec<u8> {
        let mut out = b"ferrokms-audit-digest-v1".to_vec();
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(hash);
        out.extend_from_slice(&created.unix_millis().to_be_bytes());
        out
    }
}

/// Filters for audit queries; `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Key ARN.
    pub key_arn: Option<String>,
    /// Principal ARN.
    pub principal: Option<String>,
    /// Event name.
    pub event_name: Option<String>,
    /// Error code (`"-"` matches only successful events).
    pub error_code: Option<String>,
    /// Earliest time, inclusive.
    pub from: Option<Timestamp>,
    /// Latest time, exclusive.
    pub to: Option<Timestamp>,
    /// Only records before this one (a page's cursor), exclusive.
    pub before_seq: Option<u64>,
    /// Most records returned.
    pub limit: usize,
}

impl AuditFilter {
    /// Whether a record passes the filter (the limit aside).
    pub fn matches(&self, row: &AuditRow) -> bool {
        let error_matches = match self.error_code.as_deref() {
            None => true,
            Some("-") => row.error_code.is_none(),
            Some(code) => row.error_code.as_deref() == Some(code),
        };
        error_matches
            && self.key_arn.as_ref().is_none_or(|k| row.concerns_key(k))
            && self.principal.as_ref().is_none_or(|p| &row.principal == p)
            && self.event_name.as_ref().is_none_or(|n| &row.event_name == n)
            && self.from.is_none_or(|from| row.time >= from)
            && self.to.is_none_or(|to| row.time < to)
            && self.before_seq.is_none_or(|before| row.seq < before)
    }
}

/// The hash of the record before the first one.
pub const GENESIS: [u8; 32] = [0; 32];

/// The chain hash of record `seq`.
pub fn chain_hash(prev: &[u8], seq: u64, record_json: &str) -> Vec<u8> {
    let mut ctx = Sha256::new();
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(record_json.as_bytes());
    ctx.finish().to_vec()
}

/// The first problem a verification found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// Records are missing before this one.
    #[error("record {found} follows record {previous}: records {first_missing}..{found} were removed")]
    Removed {
        /// The record before the gap.
        previous: u64,
        /// The first missing sequence number.
        first_missing: u64,
        /// The record after the gap.
        found: u64,
    },
    /// The record does not link to its predecessor (reordered, or a predecessor was replaced).
    #[error("record {0} does not link to the record before it (records were removed, reordered or replaced)")]
    Unlinked(u64),
    /// The record's content does not match its hash (edited).
    #[error("record {0} was edited: its content does not match its hash")]
    Edited(u64),
    /// A signed digest does not match the chain.
    #[error("the signed digest for record {0} does not match the chain (records up to it were changed or removed)")]
    DigestMismatch(u64),
    /// A digest's signature is not valid.
    #[error("the digest for record {0} has an invalid signature")]
    BadSignature(u64),
}

/// Verifies a contiguous run of records (in sequence order). `previous` is the record before
/// the first one (`None` when the run starts the chain).
///
/// # Errors
/// The first [`ChainBreak`].
pub fn verify_run(previous: Option<(u64, &[u8])>, rows: &[AuditRow]) -> Result<(), ChainBreak> {
    let (mut last_seq, mut last_hash) = match previous {
        Some((seq, hash)) => (seq, hash.to_vec()),
        None => (0, GENESIS.to_vec()),
    };
    for row in rows {
        if row.seq != last_seq + 1 {
            if row.seq > last_seq + 1 {
                return Err(ChainBreak::Removed { previous: last_seq, first_missing: last_seq + 1, found: row.seq });
            }
            return Err(ChainBreak::Unlinked(row.seq));
        }
        if row.prev_hash != last_hash {
            return Err(ChainBreak::Unlinked(row.seq));
        }
        if chain_hash(&row.prev_hash, row.seq, &row.record) != row.hash {
            return Err(ChainBreak::Edited(row.seq));
        }
        last_seq = row.seq;
        last_hash = row.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRow> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let record = format!("{{\"n\":{seq}}}");
                let hash = chain_hash(&prev, seq, &record);
                let row = AuditRow {
                    seq,
                    event_id: seq.to_string(),
                    time: Timestamp::from_unix_millis(0),
                    event_name: "Encrypt".into(),
                    key_arn: None,
                    other_key_arn: None,
                    principal: "p".into(),
                    error_code: None,
                    record,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn detects_removal_reordering_and_edits() {
        let rows = chain(5);
        assert_eq!(verify_run(None, &rows), Ok(()));
        let mut removed = rows.clone();
        removed.remove(2);
        assert_eq!(verify_run(None, &removed), Err(ChainBreak::Removed { previous: 2, first_missing: 3, found: 4 }));
        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        assert!(verify_run(None, &reordered).is_err());
        let mut edited = rows.clone();
        edited[3].record = "{\"n\":99}".into();
        assert_eq!(verify_run(None, &edited), Err(ChainBreak::Edited(4)));
        // Renumbering after a removal is caught by the links.
        let mut renumbered = rows.clone();
        renumbered.remove(1);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert_eq!(verify_run(None, &renumbered), Err(ChainBreak::Unlinked(2)));
        assert_eq!(verify_run(Some((2, &rows[1].hash)), &rows[2..]), Ok(()));
    }
}

/// What a verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Signed digests checked.
    pub digests: usize,
}

/// Verifies the whole stored trail: every link and hash, and every signed digest against the
/// chain and `public_key` (Ed25519). Without a public key, digests are checked against the
/// chain only.
///
/// # Errors
/// `Err(Ok(break))` for the first [`ChainBreak`]; `Err(Err(store error))` if the trail cannot be
/// read.
pub async fn verify_store(
    store: &dyn crate::Store,
    public_key: Option<&[u8]>,
) -> Result<VerifyReport, Result<ChainBreak, crate::StoreError>> {
    const PAGE: usize = 5000;
    let digests = store.audit_digests().await.map_err(Err)?;
    let mut pending = digests.iter().peekable();
    // After retention pruned the oldest records, the first remaining record must be pinned by a
    // signed digest: its hash then vouches for its content and its link backwards.
    let mut previous: Option<(u64, Vec<u8>)> = None;
    if let Some(first) = store.audit_after(0, 1).await.map_err(Err)?.first()
        && first.seq > 1
    {
        match digests.iter().find(|d| d.seq == first.seq) {
            Some(d) if d.hash == first.hash => previous = Some((first.seq - 1, first.prev_hash.clone())),
            _ => return Err(Ok(ChainBreak::Removed { previous: 0, first_missing: 1, found: first.seq })),
        }
    }
    let mut count = 0u64;
    loop {
        let after = previous.as_ref().map_or(0, |(s, _)| *s);
        let rows = store.audit_after(after, PAGE).await.map_err(Err)?;
        if rows.is_empty() {
            break;
        }
        verify_run(previous.as_ref().map(|(s, h)| (*s, h.as_slice())), &rows).map_err(Ok)?;
        for row in &rows {
            while let Some(d) = pending.peek() {
                if d.seq > row.seq {
                    break;
                }
                if d.seq == row.seq && d.hash != row.hash {
                    return Err(Ok(ChainBreak::DigestMismatch(d.seq)));
                }
                pending.next();
            }
        }
        count += rows.len() as u64;
        previous = rows.last().map(|r| (r.seq, r.hash.clone()));
    }
    // A digest beyond the last record means the tail was removed.
    if let Some(d) = pending.next() {
        return Err(Ok(ChainBreak::DigestMismatch(d.seq)));
    }
    if let Some(key) = public_key {
        for d in &digests {
            let signed = AuditDigest::signed_bytes(d.seq, &d.hash, d.created);
            if !kms_crypto::signing::ed25519_verify(key, &signed, &d.signature) {
                return Err(Ok(ChainBreak::BadSignature(d.seq)));
            }
        }
    }
    Ok(VerifyReport { records: count, digests: digests.len() })
}
