-- The whole schema on PostgreSQL, with the same meaning as the SQLite tree (migrations/sqlite):
-- TEXT ids, BIGINT instants in Unix milliseconds, BOOLEAN, no sequences. Every TEXT column is
-- COLLATE "C": ids and statuses are ASCII and compared byte for byte (as SQLite does), which
-- keeps index comparisons off the locale's collation routines (measured: BENCHMARKS.md).

CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL,
    microsoft_tenant_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE channels (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    url TEXT COLLATE "C" NOT NULL,
    enabled BOOLEAN NOT NULL,
    headers TEXT COLLATE "C" NOT NULL,
    secret TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT,
    previous_secret TEXT COLLATE "C",
    previous_secret_expires_at BIGINT
);

CREATE TABLE api_tokens (
    role TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE rules (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" REFERENCES tenants (id),
    event_types TEXT COLLATE "C" NOT NULL,
    min_severity TEXT COLLATE "C" NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE rule_channels (
    rule_id TEXT COLLATE "C" NOT NULL REFERENCES rules (id),
    channel_id TEXT COLLATE "C" NOT NULL REFERENCES channels (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (rule_id, channel_id)
);
CREATE INDEX rule_channels_by_channel ON rule_channels (channel_id);

CREATE TABLE events (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
    occurred_at BIGINT NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE deliveries (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL REFERENCES events (id),
    channel_id TEXT COLLATE "C" NOT NULL REFERENCES channels (id),
    tenant_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    attempt_count INTEGER NOT NULL,
    next_attempt_at BIGINT,
    last_status_code INTEGER,
    last_error_kind TEXT COLLATE "C",
    last_error TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    scheduled_attempt_count INTEGER NOT NULL DEFAULT 0,
    -- The instance that holds it (sends it now); others leave it alone while that instance's
    -- heartbeat is fresh.
    lease_owner TEXT COLLATE "C"
);

-- What is due for a channel, in the order it is fetched (next_attempt_at, id): with the id in
-- the index the planner walks it and stops at the LIMIT instead of sorting the whole backlog.
CREATE INDEX deliveries_due ON deliveries (channel_id, status, next_attempt_at, id);
CREATE INDEX deliveries_by_status ON deliveries (status, id);
CREATE INDEX deliveries_by_tenant ON deliveries (tenant_id, id);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE attempts (
    delivery_id TEXT COLLATE "C" NOT NULL REFERENCES deliveries (id),
    number INTEGER NOT NULL,
    triggered_by TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status_code INTEGER,
    error_kind TEXT COLLATE "C",
    error TEXT COLLATE "C",
    response_excerpt TEXT COLLATE "C",
    PRIMARY KEY (delivery_id, number)
);

CREATE TABLE instances (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

CREATE TABLE routing_version (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO routing_version (id, version) VALUES (1, 0);
