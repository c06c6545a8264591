-- Settings of a channel's type beyond its URL (Splunk's token and index, Sentinel's data
-- collection rule and app registration, batch size and wait), as a JSON object.
ALTER TABLE channels ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
-- Deliveries sent together in one request (batching types) share its id; request_size is how
-- many deliveries that request carried. NULL for one delivery per request.
ALTER TABLE attempts ADD COLUMN request_id TEXT;
ALTER TABLE attempts ADD COLUMN request_size INTEGER;
-- The alert log finds the deliveries of one request.
CREATE INDEX attempts_by_request ON attempts (request_id) WHERE request_id IS NOT NULL;
