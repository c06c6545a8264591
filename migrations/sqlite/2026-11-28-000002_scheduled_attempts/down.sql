ALTER TABLE deliveries DROP COLUMN scheduled_attempt_count;
