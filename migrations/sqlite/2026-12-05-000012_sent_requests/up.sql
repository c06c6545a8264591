-- What each attempt sent, for the delivery page: the request as it went out, credentials masked
-- before it was stored, and the answer's headers. One row per request: `id` is the attempts'
-- `request_id` for a request several deliveries shared (a Splunk or Sentinel batch), or
-- `<delivery_id>#<attempt number>` for a request of its own. `body` holds the first 64 KiB of
-- the body (`body_bytes` says how many there were in all); NULL when the body was the delivery's
-- payload as stored, byte for byte (a webhook's), which is not kept twice. Purged with the
-- attempts (retention).
CREATE TABLE sent_requests (
    id TEXT PRIMARY KEY NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body TEXT,
    body_bytes BIGINT NOT NULL,
    answer_headers TEXT
);
