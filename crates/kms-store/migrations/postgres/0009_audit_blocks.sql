-- The audit chain moves into compressed blocks of consecutive records, as on SQLite (see
-- `crate::audit_block` and ADR 0019); the PostgreSQL store's `migrate` copies the records of
-- `audit_log` into them and drops the table in the same transaction.
CREATE TABLE audit_blocks (
    first_seq  BIGINT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    last_time  BIGINT NOT NULL,
    last_hash  BYTEA NOT NULL,
    size       BIGINT NOT NULL,
    body       BYTEA NOT NULL
);
-- The body is LZ4 already: PostgreSQL's own compression would spend CPU to gain nothing.
ALTER TABLE audit_blocks ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX audit_blocks_by_time ON audit_blocks (first_time);
-- Every key a block's records concern (a ReEncrypt's other key too), by block for retention
-- and by key for queries and a key's last use.
CREATE TABLE audit_block_keys (
    first_seq BIGINT NOT NULL,
    key_arn   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (first_seq, key_arn)
);
CREATE INDEX audit_block_keys_by_key ON audit_block_keys (key_arn, first_seq);
