ALTER TABLE channels DROP COLUMN disabled_told_at;
ALTER TABLE channels DROP COLUMN disabled_at;
ALTER TABLE channels DROP COLUMN disabled_reason;
