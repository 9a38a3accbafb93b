-- The audit chain moves into compressed blocks of consecutive records (see
-- `crate::audit_block`); the SQLite store's `migrate` copies the records of `audit_log` into
-- them and drops the table in the same transaction.
CREATE TABLE audit_blocks (
    first_seq  INTEGER PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    last_time  INTEGER NOT NULL,
    last_hash  BLOB NOT NULL,
    size       INTEGER NOT NULL,
    body       BLOB NOT NULL
);
CREATE INDEX audit_blocks_by_time ON audit_blocks (first_time);
CREATE TABLE audit_block_keys (
    first_seq INTEGER NOT NULL,
    key_arn   TEXT NOT NULL,
    PRIMARY KEY (first_seq, key_arn)
) WITHOUT ROWID;
CREATE INDEX audit_block_keys_by_key ON audit_block_keys (key_arn, first_seq);
