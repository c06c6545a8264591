-- The whole schema on PostgreSQL, with the same meaning as the SQLite tree (migrations/sqlite):
-- TEXT ids, BIGINT instants in Unix milliseconds, BOOLEAN, no sequences.

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
    deleted_at BIGINT,
    previous_secret TEXT,
    previous_secret_expires_at BIGINT
);

CREATE TABLE api_tokens (
    role TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
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
CREATE INDEX rule_channels_by_channel ON rule_channels (channel_id);

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
    updated_at BIGINT NOT NULL,
    scheduled_attempt_count INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT
);

CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_at);
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
-- The leases one instance holds (its heartbeat renews them).
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;

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

CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE TABLE routing_version (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO routing_version (id, version) VALUES (1, 0);
