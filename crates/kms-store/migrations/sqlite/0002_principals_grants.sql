CREATE TABLE principals (
    arn          TEXT PRIMARY KEY,
    account      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    trust_policy TEXT,
    created      INTEGER NOT NULL
);
CREATE UNIQUE INDEX principals_by_name ON principals (account, kind, name);
CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (principal_arn, name)
);
ALTER TABLE access_keys ADD COLUMN session_name TEXT;
ALTER TABLE access_keys ADD COLUMN token_digest BLOB;
ALTER TABLE access_keys ADD COLUMN expires INTEGER;
CREATE INDEX access_keys_by_principal ON access_keys (principal_arn);
CREATE TABLE grants (
    grant_id TEXT PRIMARY KEY,
    key_id   TEXT NOT NULL REFERENCES keys (key_id),
    record   TEXT NOT NULL
);
CREATE INDEX grants_by_key ON grants (key_id);
