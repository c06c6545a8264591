DROP TABLE sent_requests;
