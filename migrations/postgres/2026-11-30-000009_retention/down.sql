DROP INDEX events_by_received_at;
