ALTER TABLE key_materials ADD COLUMN rotation_type TEXT;
