-- The retry schedule counts scheduled attempts only; manual redeliveries do not use it up.
ALTER TABLE deliveries ADD COLUMN scheduled_attempt_count INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET scheduled_attempt_count = attempt_count;
