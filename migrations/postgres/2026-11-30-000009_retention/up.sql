-- Retention finds the events no delivery uses by when they arrived (SPEC section 15).
CREATE INDEX events_by_received_at ON events (received_at);
