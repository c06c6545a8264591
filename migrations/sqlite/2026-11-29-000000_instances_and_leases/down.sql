DROP TABLE routing_version;
DROP TABLE instances;
ALTER TABLE deliveries DROP COLUMN lease_owner;
