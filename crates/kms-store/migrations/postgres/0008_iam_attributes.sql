-- The IAM API's attributes of users, roles and groups (path, description, maximum session
-- duration, tags, attached managed policies, a user's groups), as one JSON document (NULL: none
-- set); an access key's status (NULL: Active) and a session's tags (JSON; NULL: none).
ALTER TABLE principals ADD COLUMN attributes TEXT;
ALTER TABLE access_keys ADD COLUMN status TEXT;
ALTER TABLE access_keys ADD COLUMN session_tags TEXT;
-- When a long-term key was last used, and for which service and region (JSON; NULL: never),
-- recorded at most once a minute per key.
ALTER TABLE access_keys ADD COLUMN last_used TEXT;
-- Customer managed policies with their versions (the record, JSON), compared and swapped by
-- revision.
CREATE TABLE managed_policies (
    arn      TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    name     TEXT NOT NULL,
    revision BIGINT NOT NULL,
    record   TEXT NOT NULL
);
CREATE UNIQUE INDEX managed_policies_by_name ON managed_policies (account, name);
