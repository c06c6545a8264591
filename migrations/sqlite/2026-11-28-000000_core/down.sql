DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE rule_channels;
DROP TABLE rules;
DROP TABLE channels;
DROP TABLE tenants;
