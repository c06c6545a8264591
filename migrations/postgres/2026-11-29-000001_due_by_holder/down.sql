CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_at, id);
DROP INDEX deliveries_by_channel;
DROP INDEX deliveries_due_by_holder;
