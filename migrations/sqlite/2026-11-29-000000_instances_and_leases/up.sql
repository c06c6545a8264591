-- Several instances (PostgreSQL) and the operator's view of them. Only adds: a database written
-- by the previous release upgrades in place, and every pending delivery stays pending, unleased.

-- Which instance holds a delivery (PostgreSQL, several instances; unused on SQLite).
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;

-- The instances that run on this database, with their heartbeats.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);

-- Bumped by every change to channels and rules, so other instances know to reload.
CREATE TABLE routing_version (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO routing_version (id, version) VALUES (1, 0);
