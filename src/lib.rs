//! chatgate: a self-hosted chat gateway. Website visitors chat from an
//! embedded widget over the chat plugin API; agents answer over a REST API,
//! an event socket and a console.
//!
//! # Layout
//!
//! - [`config`]: `Config` (clap + `CHATGATE_*` environment), validated once.
//! - [`app`]: `Application::build` / `port` / `run_until_stopped`: wiring
//!   (the first-start setup it calls is `service::setup`) and graceful
//!   shutdown. `main` and tests share it; nothing else imports it.
//! - [`state`]: `AppState` (`App`), what every handler and session needs,
//!   built by `app`.
//! - [`filters`]: the warp filters both doors use (the state, headers, the
//!   bearer token), so that `http` and `ws` import `state` and `filters`,
//!   never `app`, and `ws` never imports `http` (only `http::routes` mounts
//!   the `ws` handshakes: one direction, no circle).
//! - [`error`]: `ApiError`, the one place errors become JSON replies (a
//!   service's `ServiceError` becomes its status, `error_id` and body here).
//! - [`auth`]: visitor, resume and agent tokens (JWT), password hashes.
//! - [`domain`]: types with no I/O: ids, channels, rooms (`LiveRoom`: a
//!   room with its visitor's connection), messages (a system message's
//!   `Notice`: its kind and parameters; an agent's `QuickReply` buttons
//!   and a visitor's postback), reactions, presences, canned responses,
//!   typed events with their audience, search folding, the http(s) URLs
//!   clients render, a channel's desk settings (`desk`: business hours and
//!   their next opening or closing, the pre-chat form and its answers),
//!   webhooks (event types, endpoint URLs, Standard Webhooks signatures),
//!   applications (bots: scopes, their tokens' form and hash), reports (a
//!   period's figures from one row of facts per conversation), validation.
//! - [`wire`]: the wire shapes: `visitor` (the chat plugin JSON, and its
//!   send body and page context parsed into domain values) and `wazo`
//!   (wazo-chatd rooms, messages, agents, presences; each typed event's
//!   name and data in the websocketd envelope), `export` (a visitor's
//!   data as a zip archive, the audit log and tenant settings' JSON),
//!   `webhook` (an event's body for receivers, endpoints and deliveries
//!   for the admin API), and `shapes`, which describes, for the API
//!   description, the shapes built as JSON.
//! - [`service`]: where the rules live, one module per area (`visitor`
//!   with its token rules in `visitor_tokens`, `identity` (identified
//!   visitors, a visitor's conversations, blocking), `agents`, `attachments`, `canned`, `channels`, `rooms`, `messages`, `presence`, `typing`,
//!   `routing` (round robin: one task per instance drains the queues),
//!   `rights` (data rights: a visitor's export and erasure into an
//!   anonymous shell, the tenants' retention, the audit log),
//!   `email` (the offline fallback and transcripts, through the outbox),
//!   `webhooks` (a tenant's endpoints, their events as outbox rows of the
//!   changes' own transactions, signed ordered delivery),
//!   `applications` (bots: admins create and revoke them; they act through
//!   the agent API within their scopes, hand conversations back to the
//!   queue, and take a channel's new conversations first),
//!   `reports` (a tenant's figures over a period: admins any channel and
//!   agent, an agent its own; the arithmetic is `domain::report`),
//!   `sessions` (a socket joining and leaving the hub and presence),
//!   `setup` (first start, the stored secrets, the operator's commands)):
//!   tenant scoping, membership, own-message checks, roles read from the store on every call, state
//!   transitions, publish-after-commit. The only callers of the store and
//!   the only publishers of events. They take typed requests and return
//!   domain values or a `ServiceError`, never JSON or HTTP types; each is
//!   built once with only what it uses (the store traits it calls, its
//!   settings, the services it asks).
//! - [`store`]: one trait per area (settings, agents, channels, messages,
//!   rooms, reactions, visitors, attachments, canned responses, the outbox,
//!   data rights (erasures, the audit log, retention); private notes in a
//!   table of their own, merged into agents' room pages) composed into `Store`; the SQL is written once for
//!   SQLite and PostgreSQL (`store::sql`), with group commit
//!   (`store::batch`) of message appends, with the DELIVERED marks queued
//!   meanwhile in the same transactions (on PostgreSQL each lane writes on
//!   a connection of its own: `store::sql::lane`).
//! - [`bus`]: the `Bus` trait (at-most-once pub/sub between instances), the
//!   in-process bus and Redis.
//! - [`hub`]: this instance's live sessions: visitor sessions by
//!   conversation, agent sessions by tenant (filtered by each event's
//!   audience); subscribes the bus on demand, encodes each event once per
//!   wire format, bounded queue per session.
//! - [`cache`]: channels, and whether visitors are blocked, cached for a
//!   second on the visitor hot path.
//! - [`files`]: uploaded files' bytes (a directory beside the database, or
//!   S3 through object_store), the content-sniffed allow-list, streamed
//!   uploads with a size cap, signed expiring download URLs.
//! - [`limits`]: rate limits, and the budgets of failed logins (per
//!   account and client IP, per client IP) that successes never touch.
//! - [`caps`]: what one client may hold open: connections per client IP,
//!   visitor sockets per conversation.
//! - [`presence`]: which conversations and agents have a live socket on any
//!   instance (Redis sorted sets whose claims lapse when not renewed; a
//!   registry of claims lets one surviving instance report a crashed
//!   instance's lapsed ones).
//! - [`outbox`]: durable side effects: the outbox worker (rows claimed for
//!   a lease, `FOR UPDATE SKIP LOCKED` on PostgreSQL, retried with backoff,
//!   each attempt recorded; rows of one order key sent one after the other),
//!   mail over SMTP (`lettre`) and signed webhook POSTs (`reqwest`); the
//!   features themselves are `service::email` and `service::webhooks`,
//!   handlers of the worker's `email` and `webhook` kinds.
//! - [`metrics`]: Prometheus counters, gauges and histograms (`/metrics`).
//! - [`http`]: warp routes: `chatplugin` (visitor API), `chatd` (agent API),
//!   `channels`, `auth`, `files` (uploads by visitors and agents, signed
//!   downloads), `assets` (the widget of `widget/`, compressed
//!   once; the demo page), `console` (the agents' server-rendered pages:
//!   askama templates in `templates/`, session cookie and CSRF, plain JS in
//!   `static/` for live updates), `openapi` (`/api/openapi.json`, the
//!   OpenAPI 3.1 description generated by utoipa from each handler's
//!   `#[utoipa::path]`, and the `/api/docs` page of it; `served` beside the
//!   router lists every API route, a test compares the two); handlers
//!   parse, call one service, render.
//!   `server` serves them on hyper's HTTP/1.1 with the header-read and
//!   keep-alive timeouts that `warp::serve` cannot set; `access` is the
//!   access log (a span per request with tokens redacted from its path,
//!   client errors at DEBUG and counted in the metrics).
//! - [`ws`]: `stomp` (frame codec), `upgrade` (the WebSocket handshake, with
//!   small per-socket buffers), `visitor` (`/ws.chatplugin`) and `agent`
//!   (`/api/websocketd/`).
//!
//! # The data flow of one message
//!
//! 1. A handler (`http::chatplugin`, the STOMP `/app/send`, or `http::chatd`
//!    for an agent's reply) parses the input into domain types.
//! 2. The service checks the rules and asks the store to append: the message
//!    queues for the next group commit, where one transaction stores every
//!    message queued meanwhile, assigns each its room's next `seq`, and reads
//!    each room's agents (the event's audience); a visitor's first message
//!    creates its conversation there, with its opening (whose it is, the
//!    pre-chat answers, the page's context: `store::Opening`). Only after the commit is
//!    anything published, or the sender answered: a 200 (or RECEIPT) means durable.
//! 3. The service publishes the event once, with its audience: the visitor
//!    room's topic for its visitor sessions, and the agents who may see it
//!    (on the tenant's topic). The bus delivers it to every instance with
//!    sessions on those topics.
//! 4. The hub encodes the visitor body or the agent frame once and puts it
//!    on each receiving session's bounded queue; a full queue disconnects
//!    that session (slow consumer).
//! 5. The visitor session writes it in `seq` order, filling any gap from the
//!    store; the first write of an agent's PENDING reply marks it DELIVERED
//!    (batched, guarded by `state = 'PENDING'`), published as an update.
//!
//! # Invariants
//!
//! - The bus is at-most-once; the store is the truth. A client recovers what
//!   it missed with `since-seq`, so no acknowledged message is ever lost.
//! - Nothing is unbounded: bodies, frames, queues, rate limits, history pages.
//! - No visitor sees another conversation; no tenant sees another's data;
//!   an agent sees only its rooms, and its tenant's queues (reading a queued
//!   room before answering it); an admin also reads every visitor room of
//!   its tenant. Reading a room one is not in marks nothing and tells no one.

pub mod app;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod caps;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod filters;
#[cfg(test)]
mod fuzz;
pub mod http;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod presence;
pub mod service;
pub mod state;
pub mod store;
pub mod wire;
pub mod ws;

pub use app::Application;
pub use config::Config;
