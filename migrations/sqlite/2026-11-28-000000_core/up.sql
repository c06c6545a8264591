-- The core schema. Portable SQL only: TEXT ids, BIGINT instants in Unix milliseconds, BOOLEAN,
-- no autoincrement (attempts are keyed by delivery and number), so the same statements run on
-- SQLite and PostgreSQL.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    microsoft_tenant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE channels (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);

CREATE TABLE rules (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    tenant_id TEXT REFERENCES tenants (id),
    event_types TEXT NOT NULL,
    min_severity TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rule_channels (
    rule_id TEXT NOT NULL REFERENCES rules (id),
    channel_id TEXT NOT NULL REFERENCES channels (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (rule_id, channel_id)
);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL REFERENCES events (id),
    channel_id TEXT NOT NULL REFERENCES channels (id),
    tenant_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL,
    next_attempt_at BIGINT,
    last_status_code INTEGER,
    last_error_kind TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- What is due for a channel, oldest first.
CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_at);
-- The alert log's filters, newest first.
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    number INTEGER NOT NULL,
    triggered_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error_kind TEXT,
    error TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, number)
);
