-- Each channel's circuit breaker, written with the attempts that change it, so it survives a
-- restart. A channel without a row is healthy (closed, no failures).
CREATE TABLE channel_health (
    channel_id TEXT PRIMARY KEY NOT NULL REFERENCES channels (id),
    consecutive_failures INTEGER NOT NULL,
    failing_since BIGINT,
    open_until BIGINT,
    cooldown_ms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
