-- Content blobs of the Office 365 Management Activity API to fetch (from notifications and the
-- catch-up listing), by contentId: each is fetched once; a failed fetch is retried until
-- content_expiration. status: pending, done or expired. A fetch in progress holds the row until
-- claimed_until (a crashed instance's claim runs out and another fetch takes it).
CREATE TABLE o365_contents (
    content_id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL,
    content_uri TEXT NOT NULL,
    content_created BIGINT NOT NULL,
    content_expiration BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until BIGINT,
    last_error TEXT,
    records INTEGER,
    fetched_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX o365_contents_due ON o365_contents (status, next_attempt_at);
CREATE INDEX o365_contents_by_tenant ON o365_contents (organization_id, status);
-- The catch-up listing: per Microsoft tenant, the end of the last window listed in full, and
-- what went wrong with the last listing (if it did).
CREATE TABLE o365_listings (
    organization_id TEXT PRIMARY KEY NOT NULL,
    listed_until BIGINT NOT NULL,
    listed_at BIGINT NOT NULL,
    last_error TEXT
);
