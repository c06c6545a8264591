-- The two indexes on `status` covered every delivery, so each success rewrote an entry in both
-- (out of `pending`, into `succeeded`): as much of the writer's index work as the five alert-log
-- indexes together (BENCHMARKS.md, 2026-12-02). Now each covers only the deliveries it is read
-- for: what is due (pending ones) and the alert log's status filter (finished ones). A success
-- then deletes one entry and adds one, where it deleted two and added two. Queries name the
-- conditions as written here (SQLite uses a partial index only then).
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (channel_id, next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (status, id) WHERE status <> 'pending';
-- The alert log and the channel statistics by channel, newest first (the due index served
-- them before, and no longer holds finished deliveries).
CREATE INDEX deliveries_by_channel ON deliveries (channel_id, id);
