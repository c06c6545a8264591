-- A bulk redelivery (POST /deliveries/redeliver) makes a finished delivery pending again for one
-- manual attempt at its channel's pace; this keeps the status it had, to go back to if it fails.
ALTER TABLE deliveries ADD COLUMN redeliver_from TEXT COLLATE "C";
