DROP INDEX deliveries_by_incident;
ALTER TABLE deliveries DROP COLUMN incident_hash;
ALTER TABLE deliveries DROP COLUMN ticket;
DROP TABLE incidents;
