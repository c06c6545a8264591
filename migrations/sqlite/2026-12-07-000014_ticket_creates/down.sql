ALTER TABLE incidents DROP COLUMN previous_ticket;
ALTER TABLE incidents DROP COLUMN create_delivery_id;
ALTER TABLE incidents DROP COLUMN create_started_at;
