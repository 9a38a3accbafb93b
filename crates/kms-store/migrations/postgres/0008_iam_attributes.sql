-- The IAM API's attributes of users and roles (path, description, maximum session duration,
-- tags), as one JSON document (NULL: none set), and an access key's status (NULL: Active).
ALTER TABLE principals ADD COLUMN attributes TEXT;
ALTER TABLE access_keys ADD COLUMN status TEXT;
