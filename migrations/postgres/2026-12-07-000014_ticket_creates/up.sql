-- Ticketing (SPEC section 17): a create that may have gone through without the router learning
-- the ticket (a timeout, a 5xx, a crash) is remembered on its incident, stored just before the
-- create request goes: when, and by which delivery. The next attempt waits CREATE_SETTLE from
-- then and searches for the incident's marker before it creates again. An answer that settles
-- it (a ticket, or a refusal) clears it. `previous_ticket` ({"id","key","url"} as JSON) is the
-- closed or deleted ticket a new one of the incident links to.
ALTER TABLE incidents ADD COLUMN create_started_at BIGINT;
ALTER TABLE incidents ADD COLUMN create_delivery_id TEXT;
ALTER TABLE incidents ADD COLUMN previous_ticket TEXT;
