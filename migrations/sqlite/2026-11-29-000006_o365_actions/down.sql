DROP TABLE o365_actions;
