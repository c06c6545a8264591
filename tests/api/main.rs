//! The router's integration tests: one binary, real HTTP receivers on 127.0.0.1, real SQLite
//! files in temp dirs.

mod bad_input;
mod binary;
mod browser;
mod crud;
mod delivery;
mod helpers;
mod interleavings;
mod lifecycle;
mod matching;
mod retries;
mod security;
