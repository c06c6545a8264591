-- The pace of a rate-limited channel, shared by every instance: the earliest start (microseconds
-- since the epoch, by the database's clock) of the channel's next request. An instance claims
-- the next slot by moving it one interval on, under the row's lock, so together the instances
-- never go faster than the channel's rate_limit_per_second.
CREATE TABLE channel_pace (
    channel_id TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL
);
