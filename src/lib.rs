//! chatgate: a self-hosted chat gateway. Website visitors chat from an
//! embedded widget over the chat plugin API; agents answer over a REST API,
//! an event socket and a console.
//!
//! # Layout
//!
//! - [`config`]: `Config` (clap + `CHATGATE_*` environment), validated once.
//! - [`app`]: `Application::build` / `port` / `run_until_stopped`: wiring,
//!   first-start bootstrap and graceful shutdown. `main` and tests share it.
//! - [`error`]: `ApiError`, the one place errors become JSON replies.
//! - [`auth`]: visitor, resume and agent tokens (JWT), password hashes.
//! - [`domain`]: types with no I/O: ids, channels, messages, events, validation.
//! - [`store`]: the `Store` trait and its SQL backends (all SQL lives there),
//!   with group commit of messages (`store::batch`).
//! - [`bus`]: the `Bus` trait (at-most-once pub/sub between instances) and
//!   the in-process bus.
//! - [`hub`]: this instance's live sessions; subscribes the bus on demand,
//!   encodes each event once, bounded queue per session.
//! - [`cache`]: channels cached for a second on the visitor hot path.
//! - [`chat`]: visitor operations shared by HTTP and STOMP (send a message).
//! - [`limits`]: rate limits.
//! - [`presence`]: which conversations and agents have a live socket on any
//!   instance (Redis sorted sets whose claims lapse when not renewed).
//! - [`metrics`]: Prometheus counters, gauges and histograms (`/metrics`).
//! - [`http`]: warp routes: `chatplugin` (visitor API), `channels`, `auth`,
//!   `assets`; and `server`, which serves them on hyper's HTTP/1.1 with the
//!   header-read and keep-alive timeouts that `warp::serve` cannot set.
//! - [`ws`]: `stomp` (frame codec), `upgrade` (the WebSocket handshake, with
//!   small per-socket buffers) and `visitor` (`/ws.chatplugin`).
//!
//! # The data flow of one message
//!
//! 1. A handler (`http::chatplugin` or the STOMP `/app/send`) parses the input
//!    into domain types (`MessageText`, `ClientMessageId`).
//! 2. `Store::append_message` queues it for the next group commit: one
//!    transaction stores every message queued meanwhile and assigns each its
//!    conversation's next `seq`. Only after the commit is anything published,
//!    or the sender answered: a 200 (or RECEIPT) means durable.
//! 3. `Hub::publish` hands the event to the `Bus`, which delivers it to the
//!    hub of every instance with sessions on the conversation's topic.
//! 4. The hub encodes the visitor body once and puts it on each session's
//!    bounded queue; a full queue disconnects that session (slow consumer).
//! 5. The session writes it in `seq` order, filling any gap from the store.
//!
//! # Invariants
//!
//! - The bus is at-most-once; the store is the truth. A client recovers what
//!   it missed with `since-seq`, so no acknowledged message is ever lost.
//! - Nothing is unbounded: bodies, frames, queues, rate limits, history pages.
//! - No visitor sees another conversation; no tenant sees another's data.

pub mod app;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod chat;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod presence;
pub mod store;
pub mod ws;

pub use app::Application;
pub use config::Config;
