-- The scheduler asks for due keys on every pass: index the due times, so that the answer
-- does not parse every key's record (a full scan per pass that grew with the keys).
CREATE INDEX keys_by_rotation_due ON keys (json_extract(record, '$.rotation.next'))
    WHERE json_extract(record, '$.rotation.next') IS NOT NULL;
CREATE INDEX keys_by_deletion_due ON keys (json_extract(record, '$.deletion.date'))
    WHERE json_extract(record, '$.deletion.date') IS NOT NULL;
