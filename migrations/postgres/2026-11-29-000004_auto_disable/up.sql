-- Why and when the router disabled a channel by itself (410 Gone, or failing for DISABLE_AFTER);
-- both NULL when a person disabled it, and cleared when it is enabled again.
ALTER TABLE channels ADD COLUMN disabled_reason TEXT COLLATE "C";
ALTER TABLE channels ADD COLUMN disabled_at BIGINT;
-- When the router's own event about it (router.channel_disabled) was stored: NULL until then,
-- so an event lost to a crash between the two is sent at the next start.
ALTER TABLE channels ADD COLUMN disabled_told_at BIGINT;
