-- API tokens generated on first start: only a SHA-256 hash is kept.
CREATE TABLE api_tokens (
    role TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Secret rotation: the previous secret keeps signing beside the new one until it expires.
ALTER TABLE channels ADD COLUMN previous_secret TEXT;
ALTER TABLE channels ADD COLUMN previous_secret_expires_at BIGINT;
