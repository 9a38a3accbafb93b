CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    event_id   TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    key_arn    TEXT,
    principal  TEXT NOT NULL,
    error_code TEXT,
    record     TEXT NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
CREATE INDEX audit_by_key ON audit_log (key_arn, seq);
CREATE INDEX audit_by_time ON audit_log (event_time);
CREATE TABLE audit_digests (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL,
    created   INTEGER NOT NULL,
    signature BLOB NOT NULL
);
