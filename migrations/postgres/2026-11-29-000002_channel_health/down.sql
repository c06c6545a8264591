DROP TABLE channel_health;
