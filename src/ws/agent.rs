//! `/api/websocketd/`: the agent event socket, wazo-websocketd's protocol
//! version 2 (agent-api.md, "Events").
//!
//! The server sends `init`; the client subscribes to event names (or `*`)
//! and sends `start`; from then on every event of its audience whose name
//! it subscribed to arrives as `{"op":"event",...}`. The session joins the
//! hub on its tenant's topic; the hub hands it only events naming this
//! agent (its rooms) or the whole tenant (queues, presences), already
//! encoded once for every agent socket. A bad token, an expired one, or an
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
use crate::app::App;
use crate::auth::AgentClaims;
use crate::error::ApiError;
use crate::hub::{Membership, Outbound};
use crate::presence::PresenceKey;
use crate::service::Caller;

/// How often a live socket re-checks that its agent may still be here.
const RECHECK: Duration = Duration::from_secs(10);
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
        .and(crate::http::with_app(app))
        .and(crate::http::token())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(handshake)
}

/// GET /api/websocketd/?token=<token>&version=2 (or an `X-Auth-Token` header).
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
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
    let token = pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .or(header_token);
    // The token is checked after the upgrade, so a client is told why with
    // a close code its WebSocket library can see (4003), not a bare 401.
    let claims = token.as_deref().and_then(|t| app.tokens.verify_agent(t));
    let caller = match &claims {
        Some(claims) => app.services.agents.caller(claims).await.ok(),
        None => None,
    };
    let sessions = app.sessions.clone();
    let max = app.config.max_frame_bytes;
    ws.accept(max, None, move |socket| {
        sessions.track_future(async move {
            match (claims, caller) {
                (Some(claims), Some(caller)) => run(socket, app, claims, caller).await,
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
    claims: AgentClaims,
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
        let Ok(msg) = serde_json::from_slice::<Value>(text) else {
            return Err((1007, "messages must be JSON"));
        };
        let data = msg.get("data").cloned().unwrap_or(Value::Null);
        match msg.get("op").and_then(Value::as_str) {
            Some("subscribe") => {
                let name = data
                    .get("event_name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty() && n.len() <= 128)
                    .ok_or((1008, "subscribe needs data.event_name"))?;
                if name == "*" {
                    self.all = true;
                } else if self.subscriptions.len() < MAX_SUBSCRIPTIONS {
                    self.subscriptions.insert(name.to_string());
                } else {
                    return Err((1008, "too many subscriptions"));
                }
                Ok(Some(reply("subscribe", Value::Null)))
            }
            Some("start") => {
                self.started = true;
                Ok(Some(reply("start", Value::Null)))
            }
            Some("ping") => Ok(Some(reply(
                "pong",
                json!({"payload": data.get("payload").cloned().unwrap_or(Value::Null)}),
            ))),
            Some("token") => {
                let token = data.get("token").and_then(Value::as_str).unwrap_or("");
                let claims = self
                    .app
                    .tokens
                    .verify_agent(token)
                    .filter(|c| c.sub == self.claims.sub)
                    .ok_or((AUTH_FAILED, "invalid token"))?;
                self.caller = self
                    .app
                    .services
                    .agents
                    .caller(&claims)
                    .await
                    .map_err(|_| (AUTH_FAILED, "invalid token"))?;
                self.claims = claims;
                Ok(Some(reply("token", Value::Null)))
            }
            _ => Err((1008, "unknown op")),
        }
    }
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
        Some(RECHECK)
    }

    /// The token may have expired, its session been revoked, its agent
    /// disabled or deleted: then the socket ends.
    async fn on_tick(&mut self) -> Result<(), Stop> {
        let expired = self.claims.exp <= crate::auth::now_secs();
        let gone = self.app.services.agents.caller(&self.claims).await.is_err();
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

async fn run(socket: WebSocket, app: App, claims: AgentClaims, caller: Caller) {
    let membership = match app.hub.join_agent(caller.tenant(), caller.id()).await {
        Ok(m) => m,
        Err(err) => {
            tracing::warn!(%err, "agent socket cannot join the hub");
            return close(socket, 1011, "bus unavailable").await;
        }
    };
    let here = app
        .presence
        .enter(PresenceKey::Agent(caller.id()), caller.tenant());
    let (tenant, agent) = (caller.tenant(), caller.id());
    // Visible to every instance before anyone is told (another instance's
    // availability answer read after this one's must count this agent).
    app.presence.flush().await;
    app.services.presence.socket_changed(tenant, agent).await;
    let (sink, mut stream) = socket.split();
    let mut session = Session {
        app: app.clone(),
        sink,
        membership: Some(membership),
        work: FuturesOrdered::new(),
        claims,
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
    // Gone from this instance: tell the tenant (connected stays true while
    // another socket of the agent lives, here or on another instance).
    drop(here);
    app.presence.flush().await;
    app.services.presence.socket_changed(tenant, agent).await;
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
