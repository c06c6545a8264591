DROP TABLE channel_pace;
