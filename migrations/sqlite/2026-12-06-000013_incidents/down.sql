ALTER TABLE deliveries DROP COLUMN ticket;
DROP TABLE incidents;
