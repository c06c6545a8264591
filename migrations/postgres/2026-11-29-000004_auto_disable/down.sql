ALTER TABLE channels DROP COLUMN disabled_at;
ALTER TABLE channels DROP COLUMN disabled_reason;
