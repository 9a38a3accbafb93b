-- The scheduler asks for due keys on every pass: index the due times (whole-table expression
-- indexes, so that ANALYZE keeps statistics on them and the planner picks them when few keys
-- are due), instead of parsing every key's record per pass.
CREATE INDEX keys_by_rotation_due ON keys ((((record::json)->'rotation'->>'next')::bigint));
CREATE INDEX keys_by_deletion_due ON keys ((((record::json)->'deletion'->>'date')::bigint));
