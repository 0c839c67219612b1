//! Fault tests: the real `chatgate` binary under steady visitor and agent
//! load while something breaks (a full disk under SQLite; on PostgreSQL +
//! Redis with two instances: a rolling restart, Redis restarted, PostgreSQL
//! restarted, one instance SIGKILLed; scheduled emails and webhooks across a SIGKILL). Each counts the messages sent,
//! acknowledged (200/201 or RECEIPT) and found after recovery through the
//! API, and asserts that nothing acknowledged was lost.
//!
//! They run as root (a tmpfs is mounted; PostgreSQL runs as `postgres`)
//! and start private Redis and PostgreSQL servers of their own, so breaking
//! them disturbs no other test. A missing tool or privilege fails loudly:
//! these tests never skip. `cargo test --test faults -- --nocapture` shows the counts.

mod clients;
mod cluster;
mod disk_full;
mod email_kill;
mod load;
mod process;
#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
mod webhook_kill;
#[path = "../support/webhook_receiver.rs"]
mod webhook_receiver;
