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
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::upgrade::{upgrade, Upgrade, WebSocket};
use crate::app::App;
use crate::auth::AgentClaims;
use crate::error::ApiError;
use crate::hub::Outbound;
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
    claims: AgentClaims,
    caller: Caller,
    subscriptions: HashSet<String>,
    all: bool,
    started: bool,
}

impl Session {
    fn wants(&self, name: &str) -> bool {
        self.started && (self.all || self.subscriptions.contains(name))
    }

    /// Handles one client message; `Err` closes the socket with that code.
    async fn on_text(
        &mut self,
        app: &App,
        text: &str,
    ) -> Result<Option<WsMessage>, (u16, &'static str)> {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
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
                let claims = app
                    .tokens
                    .verify_agent(token)
                    .filter(|c| c.sub == self.claims.sub)
                    .ok_or((AUTH_FAILED, "invalid token"))?;
                self.caller = app
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

async fn run(socket: WebSocket, app: App, claims: AgentClaims, caller: Caller) {
    let membership = match app.hub.join_agent(caller.tenant(), caller.id()).await {
        Ok(m) => m,
        Err(err) => {
            tracing::warn!(%err, "agent socket cannot join the hub");
            return close(socket, 1011, "bus unavailable").await;
        }
    };
    let _here = app.presence.enter(PresenceKey::Agent(caller.id()));
    let mut membership = membership;
    let (mut sink, mut stream) = socket.split();
    let mut session = Session {
        claims,
        caller,
        subscriptions: HashSet::new(),
        all: false,
        started: false,
    };
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let init = reply("init", json!({"version": 2}));
    let (code, reason): (u16, &str) = if sink.send(init).await.is_err() {
        return;
    } else {
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => break (1001, "server shutting down"),
                incoming = stream.next() => {
                    let Some(Ok(msg)) = incoming else { return };
                    match msg {
                        WsMessage::Text(text) => match session.on_text(&app, text.as_str()).await {
                            Ok(Some(answer)) => {
                                if sink.send(answer).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(close) => break close,
                        },
                        WsMessage::Close(_) => return,
                        WsMessage::Binary(_) => break (1003, "text frames only"),
                        // Pings are answered by tungstenite on the next write.
                        _ => {
                            if sink.flush().await.is_err() {
                                return;
                            }
                        }
                    }
                }
                out = membership.queue.recv() => {
                    let Some(out) = out else { break (1013, "slow consumer, reconnect") };
                    let mut batch = vec![out];
                    while batch.len() < 64 {
                        match membership.queue.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    let mut failed = false;
                    for out in batch {
                        if let Outbound::Event { agent: Some((name, body)), .. } = &*out {
                            if session.wants(name) {
                                let text = String::from_utf8_lossy(body).into_owned();
                                if sink.feed(WsMessage::text(text)).await.is_err() {
                                    failed = true;
                                    break;
                                }
                            }
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        return;
                    }
                }
                _ = recheck.tick() => {
                    let expired = session.claims.exp <= crate::auth::now_secs();
                    let gone = app.services.agents.caller(&session.claims).await.is_err();
                    if expired || gone {
                        break (AUTH_FAILED, "token expired or revoked");
                    }
                }
                _ = ping.tick() => {
                    if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let _ = sink
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_string().into(),
        })))
        .await;
    let _ = sink.close().await;
}
