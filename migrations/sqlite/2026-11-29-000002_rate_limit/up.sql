-- Most requests per second a channel's receiver gets (NULL: no limit beyond its concurrency).
ALTER TABLE channels ADD COLUMN rate_limit_per_second INTEGER;
