-- The user actions of Office 365 audit records that became an event (a link created, …), by
-- CorrelationId, so records of the same action arriving in a later request fold into that event.
CREATE TABLE o365_actions (
    action_key TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Audit records received, by Microsoft tenant id, hour (Unix ms at the start of the hour) and
-- outcome, for the Tenants page; last_at is when the last one of them arrived.
CREATE TABLE o365_arrivals (
    organization_id TEXT NOT NULL,
    hour BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    records BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, hour, outcome)
);
