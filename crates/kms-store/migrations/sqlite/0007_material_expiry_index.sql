-- Imported key material expires (ImportKeyMaterial's ValidTo): the scheduler finds the keys
-- whose first expiry is due through this index, as it finds due rotations and deletions.
CREATE INDEX keys_by_material_expiry ON keys (json_extract(record, '$.material_expires'))
    WHERE json_extract(record, '$.material_expires') IS NOT NULL;
