DROP INDEX deliveries_by_status;
CREATE INDEX deliveries_by_status ON deliveries (status, id);
