DROP INDEX attempts_by_request;
ALTER TABLE attempts DROP COLUMN request_size;
ALTER TABLE attempts DROP COLUMN request_id;
ALTER TABLE channels DROP COLUMN config;
