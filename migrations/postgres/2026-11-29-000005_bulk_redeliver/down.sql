ALTER TABLE deliveries DROP COLUMN redeliver_from;
