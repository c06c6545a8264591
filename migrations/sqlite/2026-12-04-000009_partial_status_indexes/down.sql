DROP INDEX deliveries_by_channel;
DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (status, id);
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_at);
