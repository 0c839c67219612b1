//! `/api/websocketd/`: the agent event socket, wazo-websocketd's protocol
//! version 2 (agent-api.md, "Events").
//!
//! The server sends `init`; the client subscribes to event names (or `*`)
//! and sends `start`; from then on every event of its audience whose name
//! it subscribed to arrives as `{"op":"event",...}`. The session joins the
//! hub on its tenant's topic and claims the agent's presence through
//! `service::sessions` (which tells the tenant); the hub hands it only
//! events naming this agent (its rooms) or the whole tenant (queues,
//! presences), already encoded once for every agent socket. A bad token, an expired one, or an
//! agent disabled or deleted meanwhile closes the socket with 4003.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::session::{self, Beats, Ended, Protocol, Work};
use super::upgrade::{upgrade, Upgrade, WebSocket};
use crate::domain::Event;
use crate::error::ApiError;
use crate::hub::{Membership, Outbound};
use crate::service::agents::Credential;
use crate::service::Caller;
use crate::state::App;
use crate::wire::shapes;

/// A WebSocket ping this often keeps idle connections (and proxies) alive.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Most event names one socket may subscribe to.
const MAX_SUBSCRIPTIONS: usize = 256;
/// Closed with this code: bad, expired or revoked token (wazo-websocketd's).
const AUTH_FAILED: u16 = 4003;

pub fn route(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "websocketd")
        .and(warp::get())
        .and(upgrade())
        .and(crate::filters::with_app(app))
        .and(crate::filters::token())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(handshake)
}

/// GET /api/websocketd/?token=<token>&version=2 (or an `X-Auth-Token` header).
#[utoipa::path(get, path = "/api/websocketd/", tag = "events",
    summary = "The agents' event socket (wazo-websocketd protocol, version 2)",
    description = "Upgrades to a WebSocket. The server sends `{\"op\":\"init\",\"code\":0,\"data\":{\"version\":2}}`; the client sends `{\"op\":\"subscribe\",\"data\":{\"event_name\":\"<name or *>\"}}` and `{\"op\":\"start\"}`; events then arrive as `{\"op\":\"event\",\"code\":0,\"data\":{\"name\",\"origin_uuid\",\"required_acl\",\"data\"}}` (names: `chatd_user_room_created`, `chatd_user_room_message_created`, `chatd_user_room_message_updated`, `chatd_user_room_message_reaction_created`/`_deleted`, `chatd_user_room_activity_created`, `chatd_user_room_read`, `chatd_presence_updated`, `chatd_queue_updated`, `chatd_room_state_updated`, `chatd_user_room_member_added`/`_removed`, `chatd_user_room_mention`...). `{\"op\":\"token\",\"data\":{\"token\":\"<new>\"}}` renews the token; a bad token closes with 4003. See agent-api.md.",
    params(("token" = Option<String>, Query, description = "The agent token (or the `X-Auth-Token` header)"),
        ("version" = Option<i64>, Query, description = "2")),
    responses((status = 101, description = "Switching protocols: the event session begins"),
        (status = 400, body = shapes::ErrorBody, description = "not a WebSocket upgrade"),
        (status = 401, body = shapes::ErrorBody, description = "`invalid-token`"),
        (status = 429, body = shapes::ErrorBody, description = "too many connections from this client")))]
async fn handshake(
    ws: Result<Upgrade, ApiError>,
    app: App,
    header_token: Option<String>,
    query: String,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(err) => return err.into_response(),
    };
    let token = query_token(&query).or(header_token);
    // The token is checked after the upgrade, so a client is told why with
    // a close code its WebSocket library can see (4003), not a bare 401.
    // An agent's token, or an application's: an application receives the
    // events of its rooms and its tenant's queues, like an agent.
    let credential = token
        .as_deref()
        .and_then(|t| app.services.agents.credential(t));
    let caller = match &credential {
        Some(credential) => app.services.agents.caller_of(credential).await.ok(),
        None => None,
    };
    let sessions = app.sessions.clone();
    let max = app.config.max_frame_bytes;
    ws.accept(max, None, move |socket| {
        sessions.track_future(async move {
            match (credential, caller) {
                (Some(credential), Some(caller)) => run(socket, app, credential, caller).await,
                _ => close(socket, AUTH_FAILED, "invalid or expired token").await,
            }
        })
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        })))
        .await;
    let _ = socket.close(None).await;
}

fn reply(op: &str, data: Value) -> WsMessage {
    WsMessage::text(json!({"op": op, "code": 0, "data": data}).to_string())
}

struct Session {
    app: App,
    sink: SplitSink<WebSocket, WsMessage>,
    membership: Option<Membership>,
    /// Nothing is queued on this socket; the loop wants the queue anyway.
    work: FuturesOrdered<Work<()>>,
    credential: Credential,
    caller: Caller,
    subscriptions: HashSet<String>,
    all: bool,
    started: bool,
}

/// Why the agent socket ends a session: a close code and its reason.
type Stop = (u16, &'static str);

impl Session {
    fn wants(&self, name: &str) -> bool {
        self.started && (self.all || self.subscriptions.contains(name))
    }

    /// Handles one client message; `Err` closes the socket with that code.
    async fn on_text(&mut self, text: &[u8]) -> Result<Option<WsMessage>, Stop> {
        match ClientOp::parse(text)? {
            ClientOp::Subscribe(name) => {
                if name == "*" {
                    self.all = true;
                } else if self.subscriptions.len() < MAX_SUBSCRIPTIONS {
                    self.subscriptions.insert(name);
                } else {
                    return Err((1008, "too many subscriptions"));
                }
                Ok(Some(reply("subscribe", Value::Null)))
            }
            ClientOp::Start => {
                self.started = true;
                Ok(Some(reply("start", Value::Null)))
            }
            ClientOp::Ping(payload) => Ok(Some(reply("pong", json!({ "payload": payload })))),
            ClientOp::Token(token) => {
                let credential = self
                    .app
                    .services
                    .agents
                    .credential(&token)
                    .ok_or((AUTH_FAILED, "invalid token"))?;
                let caller = self
                    .app
                    .services
                    .agents
                    .caller_of(&credential)
                    .await
                    .ok()
                    .filter(|c| c.id() == self.caller.id())
                    .ok_or((AUTH_FAILED, "invalid token"))?;
                self.caller = caller;
                self.credential = credential;
                Ok(Some(reply("token", Value::Null)))
            }
        }
    }
}

/// One message from an agent's socket: `{"op": ..., "data": {...}}`.
#[derive(Debug, PartialEq)]
enum ClientOp {
    /// `subscribe` to an event name (1 to 128 bytes), or `*` for all.
    Subscribe(String),
    Start,
    /// `ping` with the payload to send back.
    Ping(Value),
    /// `token`: a fresh token for this socket (empty when none was given).
    Token(String),
}

impl ClientOp {
    /// `Err` is the close code and reason the socket ends with.
    fn parse(text: &[u8]) -> Result<ClientOp, Stop> {
        let Ok(msg) = serde_json::from_slice::<Value>(text) else {
            return Err((1007, "messages must be JSON"));
        };
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        match msg.get("op").and_then(Value::as_str) {
            Some("subscribe") => data
                .get("event_name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty() && n.len() <= 128)
                .map(|n| ClientOp::Subscribe(n.to_string()))
                .ok_or((1008, "subscribe needs data.event_name")),
            Some("start") => Ok(ClientOp::Start),
            Some("ping") => Ok(ClientOp::Ping(
                data.get("payload").cloned().unwrap_or(Value::Null),
            )),
            Some("token") => Ok(ClientOp::Token(
                data.get("token")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )),
            _ => Err((1008, "unknown op")),
        }
    }
}

/// The token of the handshake's query string (`?token=...`), if any.
fn query_token(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

impl Protocol for Session {
    type End = Stop;
    type Work = ();

    fn parts(&mut self) -> (&mut Option<Membership>, &mut FuturesOrdered<Work<()>>) {
        (&mut self.membership, &mut self.work)
    }

    fn beats(&self) -> Beats {
        Beats {
            send_every: Some(PING_EVERY),
            read_timeout: None,
        }
    }

    async fn on_data(&mut self, data: &[u8]) -> Result<(), Stop> {
        if let Some(answer) = self.on_text(data).await? {
            self.sink.feed(answer).await.map_err(|_| (1000, "gone"))?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: Arc<Outbound>) -> Result<(), Stop> {
        if let Outbound::Event { event, .. } = &*event {
            if let Event::SessionsRevoked { agent, session } = &event.event {
                let mine = match &self.credential {
                    Credential::Session(claims) => session.is_none_or(|s| s == claims.sid),
                    Credential::Application(_) => session.is_none(),
                };
                if *agent == self.caller.id() && mine {
                    return Err((AUTH_FAILED, "token revoked"));
                }
                return Ok(());
            }
        }
        if let Outbound::Event {
            agent: Some((name, body)),
            ..
        } = &*event
        {
            if self.wants(name) {
                let text = String::from_utf8_lossy(body).into_owned();
                self.sink
                    .feed(WsMessage::text(text))
                    .await
                    .map_err(|_| (1000, "gone"))?;
            }
        }
        Ok(())
    }

    async fn on_work(&mut self, _done: ()) -> Result<(), Stop> {
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        // How often a live socket re-checks that its agent may still be here.
        Some(Duration::from_secs(self.app.config.agent_recheck_secs))
    }

    /// The token may have expired, its session been revoked, its agent
    /// disabled or deleted: then the socket ends.
    async fn on_tick(&mut self) -> Result<(), Stop> {
        let expired = self
            .credential
            .expires_secs()
            .is_some_and(|exp| exp <= crate::auth::now_secs());
        let gone = self
            .app
            .services
            .agents
            .caller_of(&self.credential)
            .await
            .is_err();
        if expired || gone {
            return Err((AUTH_FAILED, "token expired or revoked"));
        }
        Ok(())
    }

    async fn heartbeat(&mut self) -> bool {
        self.sink
            .feed(WsMessage::Ping(Default::default()))
            .await
            .is_ok()
    }

    async fn flush(&mut self) -> bool {
        self.sink.flush().await.is_ok()
    }
}

async fn run(socket: WebSocket, app: App, credential: Credential, caller: Caller) {
    let (membership, here) = match app.services.sessions.agent_opened(&caller).await {
        Ok(joined) => joined,
        Err(err) => {
            tracing::warn!(%err, "agent socket cannot join the hub");
            return close(socket, 1011, "bus unavailable").await;
        }
    };
    let (sink, mut stream) = socket.split();
    let mut session = Session {
        app: app.clone(),
        sink,
        membership: Some(membership),
        work: FuturesOrdered::new(),
        credential,
        caller,
        subscriptions: HashSet::new(),
        all: false,
        started: false,
    };
    if session
        .sink
        .send(reply("init", json!({"version": 2})))
        .await
        .is_err()
    {
        return;
    }
    let ended = session::run(&mut session, &mut stream, &app.shutdown).await;
    // Whichever way the session noticed first that the instance is going away.
    let stopping = matches!(ended, Ended::Shutdown) || app.shutdown.is_cancelled();
    app.services.sessions.agent_closed(here, stopping).await;
    let (code, reason) = match ended {
        Ended::Gone => return,
        Ended::Shutdown => (1001, "server shutting down"),
        Ended::SlowConsumer => (1013, "slow consumer, reconnect"),
        Ended::ReadTimeout => (1001, "idle"),
        // The agent socket sets no deadline: its token is checked at the upgrade.
        Ended::Deadline => (1001, "deadline"),
        Ended::Protocol(stop) => stop,
    };
    let _ = session
        .sink
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        })))
        .await;
    let _ = session.sink.close().await;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::{query_token, ClientOp};
    use crate::fuzz;

    const KEYS: &[&str] = &["op", "data", "event_name", "payload", "token"];

    /// Messages shaped like the protocol's: a known op, data of any shape.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        let op = prop_oneof![
            4 => prop::sample::select(vec!["subscribe", "start", "ping", "token"])
                .prop_map(|op| json!(op)),
            1 => fuzz::json_value(KEYS),
        ];
        prop_oneof![
            2 => (op, fuzz::json_value(KEYS))
                .prop_map(|(op, data)| json!({"op": op, "data": data}).to_string().into_bytes()),
            1 => fuzz::json_bytes(KEYS),
        ]
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn websocketd_messages_decode_or_close_with_a_protocol_code(text in message()) {
            match ClientOp::parse(&text) {
                Ok(ClientOp::Subscribe(name)) => {
                    prop_assert!(!name.is_empty() && name.len() <= 128);
                }
                Ok(_) => {}
                Err((code, reason)) => {
                    prop_assert!(code == 1007 || code == 1008, "{code}");
                    prop_assert!(!reason.is_empty());
                }
            }
        }

        #[test]
        fn handshake_query_strings_never_panic(query in fuzz::query(&["token", "version"])) {
            let _ = query_token(&query);
        }
    }

    #[test]
    fn a_token_is_found_percent_decoded() {
        assert_eq!(query_token("version=2&token=a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(query_token("%zz"), None);
    }
}
