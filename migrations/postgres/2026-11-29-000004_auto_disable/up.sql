-- Why and when the router disabled a channel by itself (410 Gone, or failing for DISABLE_AFTER);
-- both NULL when a person disabled it, and cleared when it is enabled again.
ALTER TABLE channels ADD COLUMN disabled_reason TEXT COLLATE "C";
ALTER TABLE channels ADD COLUMN disabled_at BIGINT;
