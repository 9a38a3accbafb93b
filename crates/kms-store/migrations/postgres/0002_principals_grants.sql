CREATE TABLE principals (
    arn          TEXT COLLATE "C" PRIMARY KEY,
    account      TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    principal_id TEXT NOT NULL,
    trust_policy TEXT,
    created      BIGINT NOT NULL
);
CREATE UNIQUE INDEX principals_by_name ON principals (account, kind, name);
CREATE TABLE identity_policies (
    principal_arn TEXT COLLATE "C" NOT NULL REFERENCES principals (arn) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (principal_arn, name)
);
ALTER TABLE access_keys ADD COLUMN session_name TEXT;
ALTER TABLE access_keys ADD COLUMN token_digest BYTEA;
ALTER TABLE access_keys ADD COLUMN expires BIGINT;
CREATE INDEX access_keys_by_principal ON access_keys (principal_arn);
CREATE TABLE grants (
    grant_id TEXT COLLATE "C" PRIMARY KEY,
    key_id   TEXT COLLATE "C" NOT NULL REFERENCES keys (key_id),
    record   TEXT NOT NULL
);
CREATE INDEX grants_by_key ON grants (key_id);
