//! Audit blocks: how both stores (SQLite and PostgreSQL) keep the audit chain on disk.
//!
//! A block is a run of consecutive audit rows (whole [`AuditRow`]s, chain hashes included)
//! written one after another and compressed with LZ4 as one unit. The batching writer commits
//! up to a few hundred events at a time; storing them as one compressed value instead of one
//! table row each (with two index entries each) costs the database a fraction of the work, and the
//! records, which repeat most of their text from one to the next (region, account, principal,
//! key ARN, member names), shrink by an order of magnitude on disk.
//!
//! Encoding of one row, all integers little-endian; a string is its length (u32) and its UTF-8
//! bytes, an optional string a byte 0 (none) or 1 followed by the string:
//!
//! ```text
//! seq u64 · time (Unix ms) i64 · event_id · event_name · key_arn? · other_key_arn? · principal ·
//! error_code? · record · prev_hash (32 bytes) · hash (32 bytes)
//! ```
//!
//! The body starts with a version byte: 2; blocks of version 1, written before records named a
//! second key, lack `other_key_arn` and are still read. Nothing in a block is trusted for the chain: the
//! verifier recomputes every hash from the rows it decodes, exactly as for rows stored one by
//! one, so an edited, removed or reordered record is found and named as before.

use kms_core::Timestamp;

use crate::audit::AuditRow;
use crate::{StoreError, StoreResult};

const VERSION: u8 = 2;
/// Blocks written before `other_key_arn`.
const VERSION_1: u8 = 1;
/// Largest uncompressed block accepted when reading (a few hundred records of a few KiB each
/// fit many times over): a corrupt size cannot make the reader allocate without bound.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

/// One row to encode, borrowed from wherever it is held.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    /// Position in the chain.
    pub seq: u64,
    /// When.
    pub time: Timestamp,
    /// CloudTrail `eventID`.
    pub event_id: &'a str,
    /// `eventName`.
    pub event_name: &'a str,
    /// The key ARN.
    pub key_arn: Option<&'a str>,
    /// A second key ARN (ReEncrypt's other key).
    pub other_key_arn: Option<&'a str>,
    /// The acting principal.
    pub principal: &'a str,
    /// `errorCode`.
    pub error_code: Option<&'a str>,
    /// The record's JSON as hashed.
    pub record: &'a str,
    /// The previous record's hash.
    pub prev_hash: &'a [u8],
    /// This record's hash.
    pub hash: &'a [u8],
}

impl<'a> From<&'a AuditRow> for RowRef<'a> {
    fn from(r: &'a AuditRow) -> Self {
        Self {
            seq: r.seq,
            time: r.time,
            event_id: &r.event_id,
            event_name: &r.event_name,
            key_arn: r.key_arn.as_deref(),
            other_key_arn: r.other_key_arn.as_deref(),
            principal: &r.principal,
            error_code: r.error_code.as_deref(),
            record: &r.record,
            prev_hash: &r.prev_hash,
            hash: &r.hash,
        }
    }
}

/// A block's body and its compressed form, reused from one append to the next.
#[derive(Default)]
pub struct BlockBuffers {
    /// The uncompressed body.
    pub body: Vec<u8>,
    /// The compressed block.
    pub compressed: Vec<u8>,
}

/// Buffers grown past this by an unusually large batch are let go after it.
const BLOCK_BUFFER_KEEP: usize = 4 << 20;

impl BlockBuffers {
    /// Whether the buffers are small enough to keep for the next append.
    pub fn worth_keeping(&self) -> bool {
        self.body.capacity() <= BLOCK_BUFFER_KEEP && self.compressed.capacity() <= BLOCK_BUFFER_KEEP
    }
}

/// The key ARNs a block's records concern, each once (a batch usually concerns a handful of
/// keys, in runs), for the block key index.
pub fn distinct_keys<'a>(key_arns: impl Iterator<Item = Option<&'a str>>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for arn in key_arns.flatten() {
        if !keys.contains(&arn) {
            keys.push(arn);
        }
    }
    keys
}

/// Chains `events` after the record (`head_seq`, `prev`) into `block`: each row's hash links
/// the one before, as every store chains its trail. Returns the last row's hash.
pub fn chain_events(
    block: &mut BlockWriter,
    head_seq: u64,
    mut prev: Vec<u8>,
    events: &[kms_core::audit::AuditEvent],
) -> Vec<u8> {
    for (seq, e) in (head_seq + 1..).zip(events) {
        let hash = crate::audit::chain_hash(&prev, seq, &e.record);
        block.push(RowRef {
            seq,
            time: e.time,
            event_id: &e.event_id,
            event_name: &e.event_name,
            key_arn: e.key_arn.as_deref(),
            other_key_arn: e.other_key_arn.as_deref(),
            principal: &e.principal,
            error_code: e.error_code.as_deref(),
            record: &e.record,
            prev_hash: &prev,
            hash: &hash,
        });
        prev = hash;
    }
    prev
}

/// Which records a block holds and when they happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The first record's number.
    pub first_seq: u64,
    /// The last record's number.
    pub last_seq: u64,
    /// The earliest time among the records.
    pub first_time: Timestamp,
    /// The latest time among the records.
    pub last_time: Timestamp,
}

/// Builds a block's uncompressed body row by row.
#[derive(Debug)]
pub struct BlockWriter {
    body: Vec<u8>,
    span: Option<Span>,
}

impl Default for BlockWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockWriter {
    /// An empty block.
    pub fn new() -> Self {
        Self { body: vec![VERSION], span: None }
    }

    /// An empty block written into `buffer` (cleared first), typically the body a previous
    /// block handed back from [`BlockWriter::finish_into`].
    pub fn reusing(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        buffer.push(VERSION);
        Self { body: buffer, span: None }
    }

    /// The records pushed so far (`None` before the first).
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// Appends a row.
    pub fn push(&mut self, row: RowRef<'_>) {
        self.span = Some(match self.span {
            None => Span { first_seq: row.seq, last_seq: row.seq, first_time: row.time, last_time: row.time },
            Some(s) => Span {
                first_seq: s.first_seq,
                last_seq: row.seq,
                first_time: s.first_time.min(row.time),
                last_time: s.last_time.max(row.time),
            },
        });
        let b = &mut self.body;
        b.extend_from_slice(&row.seq.to_le_bytes());
        b.extend_from_slice(&row.time.unix_millis().to_le_bytes());
        put_str(b, row.event_id);
        put_str(b, row.event_name);
        put_opt(b, row.key_arn);
        put_opt(b, row.other_key_arn);
        put_str(b, row.principal);
        put_opt(b, row.error_code);
        put_str(b, row.record);
        put_bytes(b, row.prev_hash);
        put_bytes(b, row.hash);
    }

    /// The compressed block and its uncompressed size.
    pub fn finish(self) -> (Vec<u8>, usize) {
        let mut compressed = Vec::new();
        let (_, size) = self.finish_into(&mut compressed);
        (compressed, size)
    }

    /// Compresses the block into `compressed` (replacing what it held); returns the
    /// uncompressed size and the body's buffer, for the next block. Buffers kept from one
    /// block to the next spare the writer two allocations of a batch's size each time, which
    /// the allocator would otherwise keep around on every thread that wrote a block.
    pub fn finish_into(self, compressed: &mut Vec<u8>) -> (Vec<u8>, usize) {
        compressed.clear();
        compressed.resize(lz4_flex::block::get_maximum_output_size(self.body.len()), 0);
        match lz4_flex::block::compress_into(&self.body, compressed) {
            Ok(written) => compressed.truncate(written),
            // The output has the room the format needs at most, so this does not happen; were
            // it to, the allocating form still stores a correct block.
            Err(_) => *compressed = lz4_flex::block::compress(&self.body),
        }
        let size = self.body.len();
        (self.body, size)
    }
}

impl<'a> FromIterator<RowRef<'a>> for BlockWriter {
    fn from_iter<I: IntoIterator<Item = RowRef<'a>>>(rows: I) -> Self {
        let mut w = Self::new();
        for row in rows {
            w.push(row);
        }
        w
    }
}

/// Encodes rows as one compressed block; returns it and its uncompressed size.
pub fn encode<'a>(rows: impl IntoIterator<Item = RowRef<'a>>) -> (Vec<u8>, usize) {
    rows.into_iter().collect::<BlockWriter>().finish()
}

/// Decodes a compressed block of `size` uncompressed bytes.
///
/// # Errors
/// [`StoreError::Corrupt`] when the block does not decode.
pub fn decode(compressed: &[u8], size: usize) -> StoreResult<Vec<AuditRow>> {
    if size > MAX_BLOCK_BYTES {
        return Err(corrupt(format!("an audit block claims {size} bytes")));
    }
    let body = lz4_flex::block::decompress(compressed, size).map_err(|e| corrupt(format!("an audit block: {e}")))?;
    if body.len() != size {
        return Err(corrupt("an audit block has the wrong size".into()));
    }
    let mut r = Reader { rest: &body };
    let version = match r.take(1)? {
        [v @ (VERSION | VERSION_1)] => *v,
        _ => return Err(corrupt("an audit block has an unknown version".into())),
    };
    let mut rows = Vec::new();
    while !r.rest.is_empty() {
        rows.push(AuditRow {
            seq: u64::from_le_bytes(r.array()?),
            time: Timestamp::from_unix_millis(i64::from_le_bytes(r.array()?)),
            event_id: r.string()?,
            event_name: r.string()?,
            key_arn: r.optional()?,
            other_key_arn: if version == VERSION_1 { None } else { r.optional()? },
            principal: r.string()?,
            error_code: r.optional()?,
            record: r.string()?,
            prev_hash: r.bytes()?.to_vec(),
            hash: r.bytes()?.to_vec(),
        });
    }
    Ok(rows)
}

fn corrupt(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    // Records are far below 4 GiB (request bodies are capped at a few hundred KiB).
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(s.get(..len as usize).unwrap_or(s));
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_opt(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => b.push(0),
        Some(s) => {
            b.push(1);
            put_str(b, s);
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt("an audit block ends inside a record".into()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> StoreResult<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn bytes(&mut self) -> StoreResult<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn string(&mut self) -> StoreResult<String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("an audit block holds text that is not UTF-8".into()))
    }

    fn optional(&mut self) -> StoreResult<Option<String>> {
        match self.take(1)? {
            [0] => Ok(None),
            [1] => self.string().map(Some),
            _ => Err(corrupt("an audit block has a bad optional member".into())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn row(seq: u64, key: Option<&str>, error: Option<&str>) -> AuditRow {
        AuditRow {
            seq,
            event_id: format!("id-{seq}"),
            time: Timestamp::from_unix_millis(1_700_000_000_000 + i64::try_from(seq).unwrap()),
            event_name: "Encrypt".into(),
            key_arn: key.map(str::to_owned),
            other_key_arn: seq.is_multiple_of(5).then(|| "arn:aws:kms:us-east-1:111122223333:key/other".to_owned()),
            principal: "arn:aws:iam::111122223333:user/alice".into(),
            error_code: error.map(str::to_owned),
            record: format!(r#"{{"eventID":"id-{seq}","eventName":"Encrypt","note":"é ✓"}}"#),
            prev_hash: vec![u8::try_from(seq % 251).unwrap(); 32],
            hash: vec![u8::try_from((seq + 1) % 251).unwrap(); 32],
        }
    }

    #[test]
    fn rows_come_back_exactly_as_written() {
        let rows: Vec<AuditRow> = (1..=300)
            .map(|n| {
                row(n, (n % 3 != 0).then_some("arn:aws:kms:us-east-1:111122223333:key/k"), (n % 7 == 0).then_some("E"))
            })
            .collect();
        let (block, size) = encode(rows.iter().map(RowRef::from));
        assert_eq!(decode(&block, size).unwrap(), rows);
        assert!(block.len() * 4 < size, "repetitive records compress: {} of {size} bytes", block.len());
    }

    #[test]
    fn reused_buffers_give_the_same_blocks() {
        let first: Vec<AuditRow> = (1..=50).map(|n| row(n, Some("k1"), None)).collect();
        let second: Vec<AuditRow> = (51..=60).map(|n| row(n, None, Some("E"))).collect();
        let (mut body, mut compressed) = (Vec::new(), Vec::new());
        for rows in [&first, &second] {
            let mut w = BlockWriter::reusing(body);
            for r in rows.iter() {
                w.push(RowRef::from(r));
            }
            let size;
            (body, size) = w.finish_into(&mut compressed);
            assert_eq!(&decode(&compressed, size).unwrap(), rows);
            assert_eq!((compressed.clone(), size), encode(rows.iter().map(RowRef::from)));
        }
    }

    /// Blocks written before records named a second key (version 1) still read.
    #[test]
    fn version_1_blocks_still_decode() {
        let rows: Vec<AuditRow> =
            (1..=3).map(|n| AuditRow { other_key_arn: None, ..row(n, Some("k"), None) }).collect();
        let mut body = vec![VERSION_1];
        for r in &rows {
            body.extend_from_slice(&r.seq.to_le_bytes());
            body.extend_from_slice(&r.time.unix_millis().to_le_bytes());
            put_str(&mut body, &r.event_id);
            put_str(&mut body, &r.event_name);
            put_opt(&mut body, r.key_arn.as_deref());
            put_str(&mut body, &r.principal);
            put_opt(&mut body, r.error_code.as_deref());
            put_str(&mut body, &r.record);
            put_bytes(&mut body, &r.prev_hash);
            put_bytes(&mut body, &r.hash);
        }
        let compressed = lz4_flex::block::compress(&body);
        assert_eq!(decode(&compressed, body.len()).unwrap(), rows);
    }

    #[test]
    fn an_empty_block_decodes_to_no_rows() {
        let (block, size) = encode([]);
        assert!(decode(&block, size).unwrap().is_empty());
    }

    #[test]
    fn damaged_blocks_are_reported_as_corrupt_not_a_panic() {
        let rows: Vec<AuditRow> = (1..=20).map(|n| row(n, Some("k"), None)).collect();
        let (block, size) = encode(rows.iter().map(RowRef::from));
        assert!(matches!(decode(&block, size + 1), Err(StoreError::Corrupt(_))), "wrong size");
        assert!(matches!(decode(&block, MAX_BLOCK_BYTES + 1), Err(StoreError::Corrupt(_))), "size beyond the cap");
        assert!(matches!(decode(&block[..block.len() / 2], size), Err(StoreError::Corrupt(_))), "truncated");
        // Every truncation of a valid body, recompressed, is refused cleanly.
        let mut body = vec![VERSION];
        let mut w = BlockWriter::new();
        w.push(RowRef::from(&rows[0]));
        body.extend_from_slice(&w.body[1..]);
        for cut in 0..body.len() {
            let part = &body[..cut];
            let compressed = lz4_flex::block::compress(part);
            let result = decode(&compressed, part.len());
            assert!(cut == 1 || result.is_err(), "a body cut at {cut} decoded");
        }
        // A version this build does not know.
        let compressed = lz4_flex::block::compress(&[9]);
        assert!(matches!(decode(&compressed, 1), Err(StoreError::Corrupt(_))));
    }
}
