DROP TABLE o365_actions;
DROP TABLE o365_arrivals;
