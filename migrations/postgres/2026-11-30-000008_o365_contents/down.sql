DROP TABLE o365_listings;
DROP TABLE o365_contents;
