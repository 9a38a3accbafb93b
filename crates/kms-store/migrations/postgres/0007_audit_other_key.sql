-- A record may concern a second key (ReEncrypt uses its source and its destination key): both
-- count as used, so GetKeyLastUsage and audit queries by key find it through either column.
ALTER TABLE audit_log ADD COLUMN other_key_arn TEXT COLLATE "C";
CREATE INDEX audit_by_other_key ON audit_log (other_key_arn, seq) WHERE other_key_arn IS NOT NULL;
