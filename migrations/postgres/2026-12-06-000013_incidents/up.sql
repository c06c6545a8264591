-- Incidents (SPEC section 17): per channel and incident key, the marker every ticket (or page)
-- of the incident carries, the ticket the router opened for it, or the first message of its mail
-- thread, and when it was opened and last written to. Shared by every instance; one row per key
-- (`key_hash`, the SHA-256 of `key_text`, the key as canonical JSON). A row older than both the
-- channel's reopen window and RETENTION is purged.
CREATE TABLE incidents (
    channel_id TEXT COLLATE "C" NOT NULL,
    key_hash TEXT COLLATE "C" NOT NULL,
    key_text TEXT NOT NULL,
    marker TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    written_at BIGINT NOT NULL,
    ticket_id TEXT,
    ticket_key TEXT,
    ticket_url TEXT,
    thread_message_id TEXT,
    thread_subject TEXT,
    PRIMARY KEY (channel_id, key_hash)
);
CREATE INDEX incidents_by_written_at ON incidents (written_at);
-- The ticket, page or message a delivery wrote to: {"id","key","url"} as JSON.
ALTER TABLE deliveries ADD COLUMN ticket TEXT;
-- The incident a pending delivery belongs to (its key's hash), set when it is made for a channel
-- that keeps incidents: deliveries of one incident are attempted one at a time, oldest first
-- (a delivery is due only when no older one of its incident is pending).
ALTER TABLE deliveries ADD COLUMN incident_hash TEXT COLLATE "C";
CREATE INDEX deliveries_by_incident ON deliveries (channel_id, incident_hash, id) WHERE status = 'pending' AND incident_hash IS NOT NULL;
