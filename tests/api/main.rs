//! chatgate's integration tests: one binary, each test against a real
//! server on port 0 with its own database.
//!
//! `CHATGATE_TEST_BACKEND=postgres` runs the server tests on PostgreSQL and
//! Redis (`CHATGATE_TEST_POSTGRES_URL`, `CHATGATE_TEST_REDIS_URL`) instead of
//! SQLite and the in-process bus; `store_contract` always runs both stores.

mod agent_helpers;
mod agents_api;
mod applications;
mod attachments;
mod auth;
mod backends;
mod bounded_input;
mod canned_responses;
mod channels;
mod chatplugin;
mod cluster;
mod console;
mod data_rights;
mod desk_hours;
mod email;
mod events_api;
mod files;
mod group_rooms;
mod helpers;
mod identity;
mod labels;
mod login_throttle;
mod logs;
mod messages_api;
mod notes;
mod notices;
mod openapi;
mod ops;
mod presence;
mod presence_api;
pub mod queue;
mod quick_replies;
mod rating;
mod reports;
mod restart;
mod revocation;
mod rooms_api;
pub mod round_robin;
mod routing;
mod slow_clients;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod stomp;
mod store_contract;
mod supervision;
mod tenant_isolation;
mod timeouts;
mod typing;
mod visitor_context;
#[path = "../support/webhook_receiver.rs"]
mod webhook_receiver;
mod webhooks;
