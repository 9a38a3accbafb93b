CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    event_name TEXT COLLATE "C" NOT NULL,
    key_arn    TEXT COLLATE "C",
    principal  TEXT COLLATE "C" NOT NULL,
    error_code TEXT COLLATE "C",
    record     TEXT NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_by_key ON audit_log (key_arn, seq);
CREATE INDEX audit_by_time ON audit_log (event_time);
CREATE TABLE audit_digests (
    seq       BIGINT PRIMARY KEY,
    hash      BYTEA NOT NULL,
    created   BIGINT NOT NULL,
    signature BYTEA NOT NULL
);
