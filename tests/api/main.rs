//! chatgate's integration tests: one binary, each test against a real
//! server on port 0 with its own database.

mod auth;
mod channels;
mod chatplugin;
mod helpers;
mod restart;
mod stomp;
