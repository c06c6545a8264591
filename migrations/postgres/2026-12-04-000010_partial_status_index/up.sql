-- The status index covers finished deliveries only (the alert log's status filter, retention
-- and bulk redelivery read it; pending ones are found through deliveries_due_by_holder): an
-- ingested delivery adds no entry to it, only the update that finishes it does. As in the
-- SQLite tree; queries name the condition as written here.
DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (status, id) WHERE status <> 'pending';
