ALTER TABLE channels DROP COLUMN previous_secret_expires_at;
ALTER TABLE channels DROP COLUMN previous_secret;
DROP TABLE api_tokens;
