//! The first run in the admin page (placeholder, filled below).
