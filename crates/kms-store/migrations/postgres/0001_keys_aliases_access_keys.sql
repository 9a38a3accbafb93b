CREATE TABLE settings (name TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE keys (
    key_id   TEXT COLLATE "C" PRIMARY KEY,
    account  TEXT COLLATE "C" NOT NULL,
    region   TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX keys_by_owner ON keys (account, region, key_id);
CREATE TABLE key_materials (
    key_id      TEXT COLLATE "C" NOT NULL REFERENCES keys (key_id),
    material_id BYTEA NOT NULL,
    wrapped     BYTEA NOT NULL,
    created     BIGINT NOT NULL,
    PRIMARY KEY (key_id, material_id)
);
CREATE TABLE key_policies (
    key_id   TEXT COLLATE "C" PRIMARY KEY REFERENCES keys (key_id),
    document TEXT NOT NULL
);
CREATE TABLE key_tags (
    key_id    TEXT COLLATE "C" NOT NULL REFERENCES keys (key_id),
    tag_key   TEXT COLLATE "C" NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
CREATE TABLE aliases (
    account TEXT COLLATE "C" NOT NULL,
    region  TEXT COLLATE "C" NOT NULL,
    name    TEXT COLLATE "C" NOT NULL,
    key_id  TEXT COLLATE "C" NOT NULL REFERENCES keys (key_id),
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE INDEX aliases_by_key ON aliases (key_id);
CREATE TABLE access_keys (
    access_key_id  TEXT COLLATE "C" PRIMARY KEY,
    account        TEXT COLLATE "C" NOT NULL,
    principal_arn  TEXT COLLATE "C" NOT NULL,
    wrapped_secret BYTEA NOT NULL,
    created        BIGINT NOT NULL
);
