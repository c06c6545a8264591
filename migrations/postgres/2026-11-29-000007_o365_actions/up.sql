-- The user actions of Office 365 audit records that became an event (a link created, …), by
-- CorrelationId, so records of the same action arriving in a later request fold into that event.
CREATE TABLE o365_actions (
    action_key TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
