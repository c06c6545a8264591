-- Noise control (SPEC section 16): rule conditions, priority, active hours, suppression and
-- grouping; silences; the state of open groups and suppression windows; and what each delivery
-- records of how it was decided.

-- A rule's noise-control fields, each a JSON document as the API takes it (NULL when unset).
ALTER TABLE rules ADD COLUMN priority INTEGER NOT NULL DEFAULT 100;
ALTER TABLE rules ADD COLUMN conditions TEXT;
ALTER TABLE rules ADD COLUMN active_hours TEXT;
ALTER TABLE rules ADD COLUMN suppress TEXT;
ALTER TABLE rules ADD COLUMN group_spec TEXT;

-- The rule that decided the delivery; for a `grouped` delivery its group and, once flushed, its
-- notification (a delivery of the notification's own event); for a `suppressed` one the
-- delivery that opened the window; for a `silenced` one the silence.
ALTER TABLE deliveries ADD COLUMN rule_id TEXT;
ALTER TABLE deliveries ADD COLUMN group_id TEXT;
ALTER TABLE deliveries ADD COLUMN notification_id TEXT;
ALTER TABLE deliveries ADD COLUMN suppressed_by TEXT;
ALTER TABLE deliveries ADD COLUMN silence_id TEXT;

-- What a flush collects: a group's events not yet in a notification.
CREATE INDEX deliveries_to_flush ON deliveries (group_id) WHERE status = 'grouped' AND notification_id IS NULL;
-- A notification's grouped deliveries (the alert log's link, retention).
CREATE INDEX deliveries_by_notification ON deliveries (notification_id) WHERE notification_id IS NOT NULL;
-- Bulk redelivery by silence.
CREATE INDEX deliveries_by_silence ON deliveries (silence_id) WHERE silence_id IS NOT NULL;

-- An open group: per (rule, channel, values at `by`) the events collected since its last flush
-- are sent as one notification at `flush_at`. `settings` are those it opened with. A group whose
-- rule changed is `closing`: it sends what it holds at `flush_at` and is then removed, while a
-- new group (with the new settings) may open beside it. Instants in Unix milliseconds.
-- `group_key` is the values as JSON (any length: event data); `key_hash` its SHA-256 in hex,
-- what identifies the group (an index entry has a size limit on PostgreSQL).
CREATE TABLE alert_groups (
    id TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    settings TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    flush_at BIGINT NOT NULL,
    last_flush_at BIGINT,
    notifications INTEGER NOT NULL DEFAULT 0,
    earlier INTEGER NOT NULL DEFAULT 0,
    max_severity TEXT,
    closing BOOLEAN NOT NULL DEFAULT FALSE,
    -- The rule's name when it was deleted (its notification still goes out, naming it).
    rule_name TEXT
);
CREATE UNIQUE INDEX alert_groups_open ON alert_groups (rule_id, channel_id, key_hash) WHERE NOT closing;
CREATE INDEX alert_groups_due ON alert_groups (flush_at);
CREATE INDEX alert_groups_by_channel ON alert_groups (channel_id);

-- A suppression window: per (rule, channel, values at `by`), the delivery that was sent (or
-- joined a group), its severity, and until when repeats are suppressed. `window_key` is the
-- SHA-256 (hex) of the values as JSON.
CREATE TABLE suppression_windows (
    rule_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    window_key TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    until BIGINT NOT NULL,
    PRIMARY KEY (rule_id, channel_id, window_key)
);
CREATE INDEX suppression_windows_by_until ON suppression_windows (until);

-- Silences: matching (event, channel) pairs within [starts_at, ends_at) are not sent.
-- `channel_ids` and `rule_ids` (JSON arrays, NULL for any) narrow a silence.
CREATE TABLE silences (
    id TEXT PRIMARY KEY NOT NULL,
    matchers TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    channel_ids TEXT,
    rule_ids TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_at);
