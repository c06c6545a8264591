ALTER TABLE channels DROP COLUMN rate_limit_per_second;
