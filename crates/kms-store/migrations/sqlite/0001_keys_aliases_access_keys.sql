CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE keys (
    key_id   TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    revision INTEGER NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX keys_by_owner ON keys (account, region, key_id);
CREATE TABLE key_materials (
    key_id      TEXT NOT NULL REFERENCES keys (key_id),
    material_id BLOB NOT NULL,
    wrapped     BLOB NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (key_id, material_id)
);
CREATE TABLE key_policies (
    key_id   TEXT PRIMARY KEY REFERENCES keys (key_id),
    document TEXT NOT NULL
);
CREATE TABLE key_tags (
    key_id    TEXT NOT NULL REFERENCES keys (key_id),
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
CREATE TABLE aliases (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    key_id  TEXT NOT NULL REFERENCES keys (key_id),
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE INDEX aliases_by_key ON aliases (key_id);
CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    account        TEXT NOT NULL,
    principal_arn  TEXT NOT NULL,
    wrapped_secret BLOB NOT NULL,
    created        INTEGER NOT NULL
);
