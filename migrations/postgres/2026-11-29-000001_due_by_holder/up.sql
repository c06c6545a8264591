-- Due deliveries are found by who holds them: an instance reads its own (lease_owner = its id)
-- and takes the unleased ones (lease_owner IS NULL), each a range of this index, instead of
-- walking past every delivery other instances hold. Only pending rows are in it, so a delivery
-- that succeeds or fails for good adds nothing to it.
CREATE INDEX deliveries_due_by_holder ON deliveries (lease_owner, channel_id, next_attempt_at, id) WHERE status = 'pending';
-- The alert log's channel filter, newest first.
CREATE INDEX deliveries_by_channel ON deliveries (channel_id, id);
DROP INDEX deliveries_due;
