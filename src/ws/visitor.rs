//! `/ws.chatplugin`: STOMP 1.2 over WebSocket for visitors (visitor-api.md).
//!
//! One task per socket owns both directions. It joins the hub for its
//! conversation at CONNECT (with its presence claim, through
//! `service::sessions`), and keeps `cursor`, the highest `seq` it has
//! written to `/queue/message`. Live events at `cursor + 1` are written
//! directly; older ones are duplicates and skipped; newer ones mean a gap
//! (an event lost on the bus, or published out of order by concurrent
//! senders) and the gap is filled from the store first. `since-seq` replay
//! uses the same path, so replay and live delivery join without gap or
//! duplicate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::session::{self, Beats, Ended, Protocol};
use super::stomp::{Command, Incoming, StompDecoder, StompError, StompFrame};
use super::upgrade::{upgrade, Upgrade, WebSocket};
use crate::caps::Slot;
use crate::domain::event::{Agents, VisitorQueue};
use crate::domain::{ChannelId, ConversationId, Event, VisitorScope};
use crate::error::ApiError;
use crate::hub::{Membership, Outbound};
use crate::service::sessions::VisitorSocket;
use crate::service::visitor::Visitor;
use crate::state::App;
use crate::store::{Appended, ConversationLookup, NewMessage};
use crate::wire::shapes;

/// Messages fetched per store read when replaying or filling a gap.
const PAGE: u32 = 500;
/// `/app/send` frames of one socket being stored at once; past this the
/// session stops reading its socket until the oldest is stored.
const MAX_INFLIGHT: usize = 64;
const SUBPROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

pub fn route(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("ws.chatplugin")
        .and(warp::path::end())
        .and(warp::get())
        .and(upgrade())
        .and(crate::filters::with_app(app))
        .and(crate::filters::origin())
        .and(crate::filters::optional_header("sec-websocket-protocol"))
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(handshake)
}

/// GET /ws.chatplugin: the WebSocket handshake. When the page names its
/// channel (`?channel_id=`), a disallowed Origin is refused here with 403;
/// otherwise the Origin is checked at CONNECT, once the token names the channel.
#[utoipa::path(get, path = "/ws.chatplugin", tag = "visitor",
    summary = "The visitor's socket: STOMP 1.2 over WebSocket",
    description = "Upgrades to a WebSocket (sub-protocols `v12.stomp`, `v11.stomp`, `v10.stomp`). The handshake needs no token: the client's `CONNECT` frame carries `Authorization:Bearer <visitor token>`. `SUBSCRIBE` to `/queue/message` (optional `since-seq:<n>` replays what was missed) receives `{\"type\": \"message.created\"|\"message.updated\", \"conversation_id\", \"channel_id\", \"message\": VisitorMessage}`; `/queue/events` receives typing, read, conversation.closed/reopened and availability events. `SEND` to `/app/send` (a `/chatplugin.send` body), `/app/typing`, `/app/read`, `/app/context`. See visitor-api.md.",
    responses((status = 101, description = "Switching protocols: the STOMP session begins"),
        (status = 400, body = shapes::ErrorBody, description = "not a WebSocket upgrade"),
        (status = 403, body = shapes::ErrorBody, description = "`origin-not-allowed`"),
        (status = 429, body = shapes::ErrorBody, description = "too many connections from this client")),
    security(()))]
async fn handshake(
    ws: Result<Upgrade, ApiError>,
    app: App,
    origin: Option<String>,
    protocols: Option<String>,
    query: String,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(err) => return err.into_response(),
    };
    let channel = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "channel_id")
        .map(|(_, v)| v.parse::<ChannelId>());
    if let Some(channel) = channel {
        let checked = match channel {
            Ok(id) => app
                .services
                .visitor
                .connected_channel(id, origin.as_deref())
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            Err(_) => Err(ApiError::invalid_field(
                "channel_id",
                "channel_id must be a UUID",
            )),
        };
        if let Err(err) = checked {
            return err.into_response();
        }
    }
    let chosen = protocols.as_deref().and_then(|offered| {
        let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
        SUBPROTOCOLS.into_iter().find(|p| offered.contains(p))
    });
    let sessions = app.sessions.clone();
    // CONNECT must be done by then, whatever the socket sends meanwhile.
    let connect_by =
        tokio::time::Instant::now() + Duration::from_secs(app.config.stomp_connect_timeout);
    // tungstenite refuses messages far above the STOMP limit outright; up to
    // twice the limit the codec answers with a proper ERROR frame.
    let max = app.config.max_frame_bytes * 2;
    ws.accept(max, chosen, move |socket| {
        sessions.track_future(run(socket, app, origin, connect_by))
    })
}

/// Why a session ends with an ERROR frame.
struct Fatal {
    message: String,
    detail: String,
    receipt: Option<String>,
}

impl Fatal {
    fn new(message: impl Into<String>, detail: impl Into<String>) -> Fatal {
        Fatal {
            message: message.into(),
            detail: detail.into(),
            receipt: None,
        }
    }

    fn from_api(err: impl Into<ApiError>) -> Fatal {
        let err: ApiError = err.into();
        let status = err.status;
        let reason = if status == StatusCode::UNAUTHORIZED {
            "UNAUTHORIZED".to_string()
        } else {
            err.error_id.to_string()
        };
        Fatal::new(format!("{} {}", status.as_u16(), reason), err.message)
    }
}

impl From<StompError> for Fatal {
    fn from(err: StompError) -> Fatal {
        Fatal::new("invalid frame", err.to_string())
    }
}

struct Session {
    app: App,
    origin: Option<String>,
    sink: SplitSink<WebSocket, WsMessage>,
    visitor: Option<Visitor>,
    membership: Option<Membership>,
    /// Marks the conversation's visitor as connected while the session lives.
    presence: Option<VisitorSocket>,
    message_sub: Option<String>,
    events_sub: Option<String>,
    /// The agents' availability this session last showed on `/queue/events`.
    availability: Shown,
    /// When the channel's business hours next open or close (the
    /// availability is told again then).
    hours_wake: Option<tokio::time::Instant>,
    /// Highest seq written to `/queue/message`.
    cursor: i64,
    frames_sent: u64,
    /// `/app/send` messages being stored, in arrival order, each with the
    /// RECEIPT it owes; also the receipts of frames that came after one, so
    /// receipts keep the order of their frames. Reading the next frames goes
    /// on meanwhile, so one socket's messages share group commits.
    inflight: FuturesOrdered<Pending>,
    /// Highest seq this socket's own sends were stored at.
    own_seq: i64,
    decoder: StompDecoder,
    beats: Beats,
    /// Until CONNECT succeeds: when the socket is closed if it has not.
    connect_by: Option<tokio::time::Instant>,
    /// This socket's place among its conversation's live sockets.
    _slot: Option<Slot<ConversationId>>,
}

type Pending = Pin<Box<dyn Future<Output = Done> + Send>>;

/// A finished step of the in-flight queue.
struct Done {
    receipt: Option<String>,
    /// The store's answer, for an `/app/send`.
    stored: Option<Result<Appended, crate::service::ServiceError>>,
}

/// What a frame asks of the session.
enum Step {
    Continue,
    Close(Close),
    /// An `/app/send` validated and ready to be stored (boxed: a message
    /// is far larger than the other steps).
    Store(Box<(NewMessage, Option<crate::domain::PrechatAnswers>)>),
}

async fn run(
    socket: WebSocket,
    app: App,
    origin: Option<String>,
    connect_by: tokio::time::Instant,
) {
    let (sink, mut stream) = socket.split();
    let mut session = Session {
        app: app.clone(),
        origin,
        sink,
        visitor: None,
        membership: None,
        presence: None,
        message_sub: None,
        events_sub: None,
        availability: Shown::default(),
        hours_wake: None,
        cursor: 0,
        frames_sent: 0,
        inflight: FuturesOrdered::new(),
        own_seq: 0,
        decoder: StompDecoder::new(app.config.max_frame_bytes),
        // Until CONNECT, only its absolute deadline: heart-beats, pings
        // and partial frames do not keep a socket that never connects.
        beats: Beats::default(),
        connect_by: Some(connect_by),
        _slot: None,
    };
    let outcome: Result<Close, Fatal> =
        match session::run(&mut session, &mut stream, &app.shutdown).await {
            Ended::Gone => Ok(Close::Gone),
            Ended::Shutdown => Ok(Close::GoingAway),
            Ended::SlowConsumer => Ok(Close::SlowConsumer),
            Ended::ReadTimeout => Err(Fatal::new(
                "heart-beat timeout",
                "no frame or heart-beat received in time",
            )),
            Ended::Deadline => Err(Fatal::new(
                "connect timeout",
                format!(
                    "no CONNECT within {} s of the upgrade",
                    app.config.stomp_connect_timeout
                ),
            )),
            Ended::Protocol(Stop::Close(close)) => Ok(close),
            Ended::Protocol(Stop::Fatal(fatal)) => Err(fatal),
        };
    // DISCONNECT: answer what is still being stored first, receipts in order.
    let outcome = match outcome {
        Ok(Close::Normal(receipt)) => Box::pin(session.finish(receipt))
            .await
            .map(|()| Close::Normal(None)),
        other => other,
    };
    // Whatever is still being stored will be stored: publish it, in order,
    // even though this socket is gone (other sessions are waiting for it).
    if !session.inflight.is_empty() {
        let mut inflight = std::mem::take(&mut session.inflight);
        let app = app.clone();
        tokio::spawn(async move {
            while let Some(done) = inflight.next().await {
                if let Some(Ok(appended)) = done.stored {
                    app.services.visitor.publish(&appended).await;
                }
            }
        });
    }
    if let Some(here) = session.presence.take() {
        app.services.sessions.visitor_left(here);
    }
    let (code, reason) = match outcome {
        Ok(Close::Gone) => return,
        Ok(Close::Normal(_)) => (1000, "bye"),
        Ok(Close::GoingAway) => (1001, "server shutting down"),
        Ok(Close::SlowConsumer) => (1013, "slow consumer, reconnect with since-seq"),
        Err(fatal) => {
            let mut frame = StompFrame::new(Command::Error)
                .header("message", fatal.message)
                .header("content-type", "text/plain");
            if let Some(receipt) = fatal.receipt {
                frame = frame.header("receipt-id", receipt);
            }
            let frame = frame.body(fatal.detail.into_bytes());
            let _ = session.send_frame(&frame).await;
            (1008, "stomp error")
        }
    };
    let _ = session
        .sink
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })))
        .await;
    let _ = session.sink.close().await;
}

/// Why the STOMP protocol ends a session.
enum Stop {
    Close(Close),
    Fatal(Fatal),
}

impl From<Fatal> for Stop {
    fn from(fatal: Fatal) -> Stop {
        Stop::Fatal(fatal)
    }
}

impl Protocol for Session {
    type End = Stop;
    type Work = Done;

    fn parts(&mut self) -> (&mut Option<Membership>, &mut FuturesOrdered<Pending>) {
        (&mut self.membership, &mut self.inflight)
    }

    fn beats(&self) -> Beats {
        self.beats
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.connect_by
    }

    async fn on_data(&mut self, data: &[u8]) -> Result<(), Stop> {
        match self.on_bytes(data).await? {
            Some(close) => Err(Stop::Close(close)),
            None => Ok(()),
        }
    }

    fn wake_at(&self) -> Option<tokio::time::Instant> {
        self.hours_wake.filter(|_| self.events_sub.is_some())
    }

    async fn on_wake(&mut self) -> Result<(), Stop> {
        self.hours_wake = None;
        Ok(self.refresh_availability().await?)
    }

    async fn on_event(&mut self, event: Arc<Outbound>) -> Result<(), Stop> {
        if let Outbound::Event { event, .. } = &*event {
            if let Event::VisitorErased { conversation_id } = &event.event {
                let mine = self.visitor.as_ref().map(|v| v.claims.cv);
                if mine == Some(*conversation_id) {
                    return Err(Fatal::from_api(ApiError::invalid_token()).into());
                }
                return Ok(());
            }
            if let Event::ChannelChanged { channel } = &event.event {
                let hours_before = self
                    .visitor
                    .as_ref()
                    .map(|v| v.channel.desk.business_hours.clone());
                self.channel_changed(channel)?;
                // New business hours may open or close it now (other
                // changes leave the answer alone: no read for them).
                let hours_now = self
                    .visitor
                    .as_ref()
                    .map(|v| v.channel.desk.business_hours.clone());
                if self.events_sub.is_some() && hours_before != hours_now {
                    self.refresh_availability().await?;
                }
                return Ok(());
            }
        }
        Ok(self.deliver(&event).await?)
    }

    async fn on_work(&mut self, done: Done) -> Result<(), Stop> {
        Ok(self.complete(done).await?)
    }

    async fn heartbeat(&mut self) -> bool {
        self.sink.feed(WsMessage::text("\n")).await.is_ok()
    }

    async fn flush(&mut self) -> bool {
        self.sink.flush().await.is_ok()
    }
}

enum Close {
    /// The client went away; nothing more to send.
    Gone,
    /// After DISCONNECT, with the receipt it asked for.
    Normal(Option<String>),
    GoingAway,
    SlowConsumer,
}

/// STOMP `heart-beat:cx,cy`.
fn parse_heartbeat(raw: Option<&str>) -> Result<(u64, u64), Fatal> {
    let Some(raw) = raw else { return Ok((0, 0)) };
    let bad = || {
        Fatal::new(
            "invalid heart-beat header",
            format!("expected `cx,cy`, got `{raw}`"),
        )
    };
    let (x, y) = raw.split_once(',').ok_or_else(bad)?;
    Ok((
        x.trim().parse().map_err(|_| bad())?,
        y.trim().parse().map_err(|_| bad())?,
    ))
}

/// The version CONNECT's `accept-version` and ours have in common.
fn stomp_version(accept: Option<&str>) -> Result<&'static str, Fatal> {
    let Some(list) = accept else { return Ok("1.0") };
    let offered: Vec<&str> = list.split(',').map(str::trim).collect();
    ["1.2", "1.1", "1.0"]
        .into_iter()
        .find(|v| offered.contains(v))
        .ok_or_else(|| {
            Fatal::new(
                "unsupported STOMP version",
                "supported versions are 1.0, 1.1, 1.2",
            )
        })
}

/// SUBSCRIBE's `since-seq`: a non-negative integer, if given.
fn since_seq(raw: Option<&str>) -> Result<Option<i64>, Fatal> {
    raw.map(|raw| {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                Fatal::new(
                    "invalid since-seq header",
                    "since-seq must be a non-negative integer",
                )
            })
    })
    .transpose()
}

fn negotiated(ours: u64, theirs: u64) -> Option<Duration> {
    (ours > 0 && theirs > 0).then(|| Duration::from_millis(ours.max(theirs)))
}

impl Session {
    /// Queues a frame on the socket; the run loop flushes after each turn, so
    /// a burst of frames leaves in one write.
    async fn send_frame(&mut self, frame: &StompFrame) -> Result<(), Fatal> {
        let bytes = frame.encode();
        let msg = match String::from_utf8(bytes) {
            Ok(text) => WsMessage::text(text),
            Err(e) => WsMessage::binary(e.into_bytes()),
        };
        self.sink
            .feed(msg)
            .await
            .map_err(|_| Fatal::new("write failed", "socket closed"))
    }

    /// Feeds received bytes to the decoder and handles every complete frame.
    async fn on_bytes(&mut self, data: &[u8]) -> Result<Option<Close>, Fatal> {
        self.decoder.push(data)?;
        while let Some(incoming) = self.decoder.next()? {
            let Incoming::Frame(frame) = incoming else {
                continue;
            };
            let receipt = frame.get("receipt").map(str::to_string);
            let step = self.on_frame(&frame).await.map_err(|mut fatal| {
                fatal.receipt = receipt.clone();
                fatal
            })?;
            let close = match step {
                Step::Store(store) => {
                    let (new, prechat) = *store;
                    // Queued now, in frame order; stored in that order.
                    let first = self.visitor.as_ref().map(|v| v.first());
                    let stored = self
                        .app
                        .services
                        .visitor
                        .enqueue(new, first, prechat)
                        .await
                        .map_err(|err| {
                            let mut fatal = Fatal::from_api(err);
                            fatal.receipt = receipt.clone();
                            fatal
                        })?;
                    self.inflight.push_back(Box::pin(async move {
                        Done {
                            receipt,
                            stored: Some(stored.await),
                        }
                    }));
                    if self.inflight.len() >= MAX_INFLIGHT {
                        // Enough queued: wait for the oldest before reading on.
                        if let Some(done) = self.inflight.next().await {
                            self.complete(done).await?;
                        }
                    }
                    continue;
                }
                Step::Continue => None,
                Step::Close(close) => Some(close),
            };
            if let Some(receipt) = receipt {
                // CONNECT is answered by CONNECTED, DISCONNECT once finished.
                if !matches!(
                    frame.command,
                    Command::Connect | Command::Stomp | Command::Disconnect
                ) {
                    if self.inflight.is_empty() {
                        self.send_frame(
                            &StompFrame::new(Command::Receipt).header("receipt-id", receipt),
                        )
                        .await?;
                    } else {
                        let done = Done {
                            receipt: Some(receipt),
                            stored: None,
                        };
                        self.inflight.push_back(Box::pin(std::future::ready(done)));
                    }
                }
            }
            if close.is_some() {
                return Ok(close);
            }
        }
        Ok(None)
    }

    /// Finishes the oldest in-flight step: publishes the stored message
    /// (in arrival order), then sends the receipt it owes.
    async fn complete(&mut self, done: Done) -> Result<(), Fatal> {
        if let Some(stored) = done.stored {
            let appended = stored.map_err(|err| {
                let mut fatal = Fatal::from_api(err);
                fatal.receipt = done.receipt.clone();
                fatal
            })?;
            self.own_seq = self.own_seq.max(appended.message.seq);
            self.app.services.visitor.publish(&appended).await;
        }
        if let Some(receipt) = done.receipt {
            self.send_frame(&StompFrame::new(Command::Receipt).header("receipt-id", receipt))
                .await?;
        }
        Ok(())
    }

    /// After DISCONNECT: completes everything in flight, writes the events
    /// already queued for this session, and its own messages even if the bus
    /// has not brought them back yet (from the store), then the DISCONNECT's
    /// receipt.
    async fn finish(&mut self, receipt: Option<String>) -> Result<(), Fatal> {
        while let Some(done) = self.inflight.next().await {
            self.complete(done).await?;
        }
        while let Some(out) = self
            .membership
            .as_mut()
            .and_then(|m| m.queue.try_recv().ok())
        {
            self.deliver(&out).await?;
        }
        if self.message_sub.is_some() && self.cursor < self.own_seq {
            self.fill(self.own_seq).await?;
        }
        if let Some(receipt) = receipt {
            self.send_frame(&StompFrame::new(Command::Receipt).header("receipt-id", receipt))
                .await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, frame: &StompFrame) -> Result<Step, Fatal> {
        let connected = self.visitor.is_some();
        match frame.command {
            Command::Connect | Command::Stomp if !connected => {
                self.on_connect(frame).await?;
                Ok(Step::Continue)
            }
            Command::Connect | Command::Stomp => Err(Fatal::new(
                "already connected",
                "CONNECT was already received",
            )),
            _ if !connected => Err(Fatal::new(
                "not connected",
                "the first frame must be CONNECT",
            )),
            Command::Subscribe => self.on_subscribe(frame).await.map(|_| Step::Continue),
            Command::Unsubscribe => {
                let id = required(frame, "id")?;
                if self.message_sub.as_deref() == Some(id) {
                    self.message_sub = None;
                }
                if self.events_sub.as_deref() == Some(id) {
                    self.events_sub = None;
                }
                Ok(Step::Continue)
            }
            Command::Send => self.on_send(frame).await,
            // Subscriptions are auto-acknowledged; ACK/NACK are accepted and change nothing.
            Command::Ack | Command::Nack => Ok(Step::Continue),
            Command::Begin | Command::Commit | Command::Abort => Err(Fatal::new(
                "transactions are not supported",
                "BEGIN/COMMIT/ABORT are not supported",
            )),
            Command::Disconnect => Ok(Step::Close(Close::Normal(
                frame.get("receipt").map(str::to_string),
            ))),
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                Err(Fatal::new(
                    "unexpected command",
                    format!("{} is a server frame", frame.command.as_str()),
                ))
            }
        }
    }

    async fn on_connect(&mut self, frame: &StompFrame) -> Result<(), Fatal> {
        let version = stomp_version(frame.get("accept-version"))?;
        let (cx, cy) = parse_heartbeat(frame.get("heart-beat"))?;
        let token = frame
            .get("Authorization")
            .or_else(|| frame.get("authorization"))
            .and_then(crate::auth::bearer)
            .or_else(|| frame.get("passcode"));
        let visitor = self
            .app
            .services
            .visitor
            .visitor(token, self.origin.as_deref())
            .await
            .map_err(Fatal::from_api)?;
        let slot = self
            .app
            .visitor_sockets
            .take(visitor.claims.cv)
            .ok_or_else(|| {
                Fatal::new(
                    "too-many-sessions",
                    format!(
                        "this conversation already has {} live sockets here",
                        self.app.config.max_sessions_per_conversation
                    ),
                )
            })?;
        let (membership, here) = self
            .app
            .services
            .sessions
            .visitor_joined(&visitor)
            .await
            .map_err(|e| Fatal::new("503 unavailable", e.to_string()))?;
        let ours = self.app.config.heartbeat_ms;
        self.beats = Beats {
            send_every: negotiated(ours, cy),
            read_timeout: negotiated(cx, ours).map(|d| d * 2),
        };
        let conversation = visitor.claims.cv.to_string();
        self.visitor = Some(visitor);
        self.membership = Some(membership);
        self._slot = Some(slot);
        self.connect_by = None;
        self.presence = Some(here);
        self.send_frame(
            &StompFrame::new(Command::Connected)
                .header("version", version)
                .header("heart-beat", format!("{ours},{ours}"))
                .header("user-name", conversation)
                .header("server", concat!("chatgate/", env!("CARGO_PKG_VERSION"))),
        )
        .await
    }

    async fn on_subscribe(&mut self, frame: &StompFrame) -> Result<(), Fatal> {
        let id = required(frame, "id")?.to_string();
        match required(frame, "destination")? {
            "/queue/message" | "/user/queue/message" => {
                let since = since_seq(frame.get("since-seq"))?;
                let (scope, conversation) = self.conversation()?;
                self.message_sub = Some(id);
                match since {
                    // Replay what the client missed, then live.
                    Some(n) => {
                        self.cursor = n;
                        self.fill(i64::MAX).await
                    }
                    // Live only: everything committed after this read comes
                    // through the hub, which this session joined at CONNECT.
                    None => {
                        self.cursor = match self
                            .app
                            .services
                            .visitor
                            .conversation(scope, conversation)
                            .await
                            .map_err(Fatal::from_api)?
                        {
                            ConversationLookup::Found(c) => c.last_seq,
                            _ => 0,
                        };
                        Ok(())
                    }
                }
            }
            "/queue/events" | "/user/queue/events" => {
                self.events_sub = Some(id);
                // Whether anyone is there to answer, now; changes follow
                // on the channel's topic.
                let Some(event) = self.availability_now().await? else {
                    return Ok(());
                };
                let Some(visitor) = self.visitor.as_ref() else {
                    return Ok(());
                };
                // And how far agents have read, so a new tab or a reload
                // shows read ticks at once; later reads follow live.
                let read = self
                    .app
                    .services
                    .visitor
                    .agents_read(visitor)
                    .await
                    .map_err(Fatal::from_api)?;
                for event in std::iter::once(event).chain(read) {
                    if let Event::Availability {
                        available,
                        as_of_us,
                        back_at_ms,
                        ..
                    } = event
                    {
                        self.availability.fresh(as_of_us, (available, back_at_ms));
                    }
                    if let Some((_, body)) =
                        crate::wire::visitor::event_body(&event, self.app.hub.signer())
                    {
                        self.write_event(Bytes::from(body)).await?;
                    }
                }
                Ok(())
            }
            other => Err(Fatal::new(
                "unknown destination",
                format!("cannot subscribe to `{other}`"),
            )),
        }
    }

    async fn on_send(&mut self, frame: &StompFrame) -> Result<Step, Fatal> {
        let destination = required(frame, "destination")?;
        let app_frame = AppFrame::parse(destination, &frame.body)?;
        let Some(visitor) = self.visitor.as_ref() else {
            return Err(Fatal::new(
                "not connected",
                "the first frame must be CONNECT",
            ));
        };
        match app_frame {
            AppFrame::Send(body) => {
                // The channel as it is now (cached for a second): a
                // disconnected channel stores nothing, whatever the socket
                // has yet to hear.
                self.app
                    .services
                    .visitor
                    .connected_channel(visitor.channel.id, self.origin.as_deref())
                    .await
                    .map_err(Fatal::from_api)?;
                // Blocked while the socket was open: refused like over HTTP.
                self.app
                    .services
                    .visitor
                    .refuse_blocked(visitor.channel.id, &visitor.claims.visitor_key())
                    .await
                    .map_err(Fatal::from_api)?;
                let request =
                    crate::wire::visitor::send_body(&body, self.app.config.max_text_chars)
                        .map_err(Fatal::from_api)?;
                let services = &self.app.services;
                let prechat = services
                    .visitor
                    .prechat(visitor, request.prechat.clone())
                    .await
                    .map_err(Fatal::from_api)?;
                let (mut new, attachments) = services
                    .visitor
                    .prepare(visitor, request)
                    .map_err(Fatal::from_api)?;
                services
                    .visitor
                    .claim(&mut new, &attachments)
                    .await
                    .map_err(Fatal::from_api)?;
                return Ok(Step::Store(Box::new((new, prechat))));
            }
            AppFrame::Typing(typing) => {
                self.app
                    .services
                    .typing
                    .visitor(visitor.channel.tenant_id, visitor.claims.cv, typing)
                    .await;
            }
            AppFrame::Context(map) => {
                self.app
                    .limits
                    .context
                    .check(&visitor.claims.cv)
                    .map_err(Fatal::from_api)?;
                let context = crate::wire::visitor::context(&map, None).map_err(Fatal::from_api)?;
                if let Some(context) = context {
                    self.app
                        .services
                        .visitor
                        .save_context(visitor.channel.tenant_id, visitor.claims.cv, context)
                        .await
                        .map_err(Fatal::from_api)?;
                }
            }
            AppFrame::Read(up_to_seq) => {
                self.app
                    .services
                    .visitor
                    .read(visitor, up_to_seq)
                    .await
                    .map_err(Fatal::from_api)?;
            }
        }
        Ok(Step::Continue)
    }

    /// Whether an agent of the session's channel is available now (`None`
    /// before CONNECT).
    async fn availability_now(&mut self) -> Result<Option<Event>, Fatal> {
        let Some(visitor) = self.visitor.as_ref() else {
            return Ok(None);
        };
        let event = self
            .app
            .services
            .presence
            .availability(&visitor.channel)
            .await
            .map_err(Fatal::from_api)?;
        // The next opening or closing of the channel's business hours
        // tells the visitor again, whatever the agents do meanwhile.
        let offset = self.app.config.hours_clock_offset_ms;
        self.hours_wake = visitor.channel.desk.business_hours.as_ref().and_then(|h| {
            let now = crate::domain::time::now_ms() + offset;
            let change = h.next_change(now)?;
            let wait = u64::try_from(change - now).ok()?;
            // Capped: a far change is looked at again in a day.
            let wait = std::time::Duration::from_millis(wait.min(86_400_000) + 5);
            Some(tokio::time::Instant::now() + wait)
        });
        Ok(Some(event))
    }

    /// Reads whether an agent is available and tells the visitor if that
    /// changed since it was last told.
    async fn refresh_availability(&mut self) -> Result<(), Fatal> {
        let Some(event) = self.availability_now().await? else {
            return Ok(());
        };
        if let Event::Availability {
            available,
            as_of_us,
            back_at_ms,
            ..
        } = event
        {
            if !self.availability.fresh(as_of_us, (available, back_at_ms)) {
                return Ok(());
            }
        }
        if let Some((_, body)) = crate::wire::visitor::event_body(&event, self.app.hub.signer()) {
            self.write_event(Bytes::from(body)).await?;
        }
        Ok(())
    }

    /// The channel was disconnected or changed: the session ends unless it
    /// may still use it from its origin.
    fn channel_changed(&mut self, channel: &crate::domain::Channel) -> Result<(), Fatal> {
        let Some(visitor) = self.visitor.as_mut() else {
            return Ok(());
        };
        if channel.id != visitor.channel.id {
            return Ok(());
        }
        if !channel.connected {
            return Err(Fatal::from_api(ApiError::unknown_channel()));
        }
        if !channel.allows_origin(self.origin.as_deref()) {
            return Err(Fatal::from_api(ApiError::origin_not_allowed()));
        }
        visitor.channel = Arc::new(channel.clone());
        Ok(())
    }

    /// The session's conversation; only called once CONNECT has succeeded.
    fn conversation(&self) -> Result<(VisitorScope, ConversationId), Fatal> {
        self.visitor
            .as_ref()
            .map(|v| (v.scope(), v.claims.cv))
            .ok_or_else(|| Fatal::new("not connected", "the first frame must be CONNECT"))
    }

    /// Writes one event if this session subscribed to its queue, keeping seq order.
    async fn deliver(&mut self, out: &Outbound) -> Result<(), Fatal> {
        let (event, queue, body) = match out {
            Outbound::Resync => {
                // The bus may have lost events: messages from the store,
                // and availability as it is now (a presence change during
                // a Redis outage was never published).
                if self.message_sub.is_some() {
                    self.fill(i64::MAX).await?;
                }
                if self.events_sub.is_some() {
                    self.refresh_availability().await?;
                }
                return Ok(());
            }
            Outbound::Event {
                event: published,
                visitor: Some((queue, body)),
                ..
            } => (published, queue, body),
            _ => return Ok(()),
        };
        let (event, audience) = (&event.event, Some(&event.agents));
        match (queue, event.created_seq()) {
            (VisitorQueue::Message, Some(seq)) => {
                if self.message_sub.is_none() || seq <= self.cursor {
                    return Ok(());
                }
                if seq > self.cursor + 1 {
                    return self.fill(seq).await;
                }
                self.cursor = seq;
                self.write_message(body.clone()).await?;
                self.written(event, audience);
                Ok(())
            }
            (VisitorQueue::Message, None) if self.message_sub.is_some() => {
                self.write_message(body.clone()).await?;
                self.written(event, audience);
                Ok(())
            }
            (VisitorQueue::Events, _) if self.events_sub.is_some() => {
                if let Event::Availability {
                    available,
                    as_of_us,
                    back_at_ms,
                    ..
                } = *event
                {
                    if !self.availability.fresh(as_of_us, (available, back_at_ms)) {
                        return Ok(());
                    }
                }
                self.write_event(body.clone()).await
            }
            _ => Ok(()),
        }
    }

    /// Writes every stored message after `cursor`, at least up to `target`
    /// (or until the conversation's end).
    async fn fill(&mut self, target: i64) -> Result<(), Fatal> {
        let (scope, conversation) = self.conversation()?;
        loop {
            let page = self
                .app
                .services
                .visitor
                .messages_after(scope, conversation, self.cursor, PAGE)
                .await
                .map_err(Fatal::from_api)?;
            let complete = page.len() < PAGE as usize;
            for message in page {
                let seq = message.seq;
                let event = Event::MessageCreated { message };
                if let Some((_, body)) =
                    crate::wire::visitor::event_body(&event, self.app.hub.signer())
                {
                    self.cursor = seq;
                    self.write_message(Bytes::from(body)).await?;
                    self.written(&event, None);
                }
            }
            if complete || self.cursor >= target {
                return Ok(());
            }
        }
    }

    /// A message event was written to this visitor's socket: an agent's
    /// PENDING reply is now delivered. `audience`: the agents the event was
    /// published to, when it came live (a replay reads them from the store).
    fn written(&self, event: &Event, audience: Option<&Agents>) {
        if let Event::MessageCreated { message } = event {
            self.app.services.visitor.delivered(message, audience);
        }
    }

    async fn write_message(&mut self, body: Bytes) -> Result<(), Fatal> {
        let Some(sub) = self.message_sub.clone() else {
            return Ok(());
        };
        self.write_to("/queue/message", sub, body).await?;
        self.app.metrics.messages_delivered.inc();
        Ok(())
    }

    async fn write_event(&mut self, body: Bytes) -> Result<(), Fatal> {
        let Some(sub) = self.events_sub.clone() else {
            return Ok(());
        };
        self.write_to("/queue/events", sub, body).await
    }

    async fn write_to(
        &mut self,
        destination: &str,
        subscription: String,
        body: Bytes,
    ) -> Result<(), Fatal> {
        self.frames_sent += 1;
        let frame = StompFrame::new(Command::Message)
            .header("destination", destination)
            .header("subscription", subscription)
            .header("message-id", self.frames_sent.to_string())
            .header("content-type", "application/json")
            .body(body);
        self.send_frame(&frame).await
    }
}

/// A SEND to one of the `/app/*` destinations, its JSON body decoded.
#[derive(Debug)]
enum AppFrame {
    /// `/app/send`: checked further by the visitor service.
    Send(Value),
    /// `/app/typing`: `{"typing": bool}`.
    Typing(bool),
    /// `/app/context`: an object, checked further by the visitor service.
    Context(serde_json::Map<String, Value>),
    /// `/app/read`: `{"up_to_seq": n}`, n ≥ 0.
    Read(i64),
}

impl AppFrame {
    fn parse(destination: &str, body: &[u8]) -> Result<AppFrame, Fatal> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| Fatal::new("400 invalid-data", format!("malformed JSON body: {e}")))?;
        Ok(match destination {
            "/app/send" => AppFrame::Send(body),
            "/app/typing" => AppFrame::Typing(
                body.get("typing")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| Fatal::new("400 invalid-data", "typing must be a boolean"))?,
            ),
            "/app/context" => match body {
                Value::Object(map) => AppFrame::Context(map),
                _ => {
                    return Err(Fatal::new(
                        "400 invalid-data",
                        "the body must be a JSON object",
                    ))
                }
            },
            "/app/read" => AppFrame::Read(
                body.get("up_to_seq")
                    .and_then(Value::as_i64)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        Fatal::new(
                            "400 invalid-data",
                            "up_to_seq must be a non-negative integer",
                        )
                    })?,
            ),
            other => {
                return Err(Fatal::new(
                    "unknown destination",
                    format!("cannot send to `{other}`"),
                ))
            }
        })
    }
}

fn required<'a>(frame: &'a StompFrame, header: &str) -> Result<&'a str, Fatal> {
    frame.get(header).ok_or_else(|| {
        Fatal::new(
            format!("missing {header} header"),
            format!("{} needs a `{header}` header", frame.command.as_str()),
        )
    })
}

/// What a visitor session last showed of agents' availability, and as of
/// when. Every presence change of the tenant publishes the answer, from
/// whichever task and instance made it, so answers may repeat and may
/// arrive out of order.
#[derive(Debug, Default)]
struct Shown<T = (bool, Option<i64>)>(Option<(i64, T)>);

impl<T: PartialEq + Copy> Shown<T> {
    /// Takes an answer read at `as_of_us`; whether to send it: it is newer
    /// than the one shown and says something else (an older answer is
    /// stale, the same one again is noise).
    fn fresh(&mut self, as_of_us: i64, available: T) -> bool {
        match self.0 {
            Some((shown_at, _)) if as_of_us < shown_at => false,
            Some((_, shown)) => {
                self.0 = Some((as_of_us, available));
                shown != available
            }
            None => {
                self.0 = Some((as_of_us, available));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shown;

    mod decoders {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::super::{parse_heartbeat, since_seq, stomp_version, AppFrame, Fatal};
        use crate::fuzz;
        use crate::wire::visitor::send_body as visitor_message;

        const KEYS: &[&str] = &[
            "message",
            "text",
            "postback",
            "postbackData",
            "client_message_id",
            "typing",
            "up_to_seq",
            "url",
            "title",
            "referrer",
        ];

        fn destination() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => prop::sample::select(vec![
                    "/app/send", "/app/typing", "/app/context", "/app/read",
                ])
                .prop_map(str::to_string),
                1 => fuzz::text(),
            ]
        }

        fn assert_clean(fatal: &Fatal) {
            assert!(!fatal.message.is_empty() && !fatal.detail.is_empty());
            // The message is a header value: no line breaks.
            assert!(!fatal.message.contains(['\n', '\r']), "{}", fatal.message);
        }

        /// A header value as CONNECT and SUBSCRIBE carry it.
        fn header() -> impl Strategy<Value = Option<String>> {
            prop::option::of(prop_oneof![
                fuzz::text(),
                "[0-9 ,.-]{0,12}",
                (any::<u64>(), any::<u64>()).prop_map(|(x, y)| format!("{x},{y}")),
            ])
        }

        proptest! {
            #![proptest_config(fuzz::config())]

            #[test]
            fn app_bodies_decode_or_are_refused_cleanly(
                destination in destination(),
                body in fuzz::json_bytes(KEYS),
            ) {
                match AppFrame::parse(&destination, &body) {
                    Ok(AppFrame::Send(value)) => {
                        if let Err(err) = visitor_message(&value, 4096) {
                            fuzz::assert_client_error(&err);
                        }
                    }
                    Ok(AppFrame::Read(n)) => prop_assert!(n >= 0),
                    Ok(AppFrame::Typing(_) | AppFrame::Context(_)) => {}
                    Err(fatal) => assert_clean(&fatal),
                }
            }

            #[test]
            fn send_bodies_give_a_bounded_text_or_a_clean_error(
                body in fuzz::json_value(KEYS),
                max in 1usize..64,
            ) {
                match visitor_message(&body, max) {
                    Ok(send) => prop_assert!(
                        send.text.as_ref().map_or(0, |t| t.as_str().chars().count()) <= max
                            && (send.text.is_some() || !send.attachments.is_empty())
                    ),
                    Err(err) => fuzz::assert_client_error(&err),
                }
            }

            #[test]
            fn connect_and_subscribe_headers_decode_or_are_refused_cleanly(
                heartbeat in header(),
                accept in header(),
                since in header(),
            ) {
                if let Err(fatal) = parse_heartbeat(heartbeat.as_deref()) {
                    assert_clean(&fatal);
                }
                if let Err(fatal) = stomp_version(accept.as_deref()) {
                    assert_clean(&fatal);
                }
                match since_seq(since.as_deref()) {
                    Ok(n) => prop_assert!(n.is_none_or(|n| n >= 0)),
                    Err(fatal) => assert_clean(&fatal),
                }
            }
        }

        #[test]
        fn a_send_body_that_is_not_an_object_is_refused() {
            let err = visitor_message(&Value::from(1), 10).unwrap_err();
            fuzz::assert_client_error(&err);
        }
    }

    #[test]
    fn the_first_answer_is_sent_and_the_same_one_again_is_not() {
        let mut shown = Shown::default();
        assert!(shown.fresh(10, true));
        assert!(!shown.fresh(20, true), "nothing changed for the visitor");
        assert!(shown.fresh(30, false));
    }

    #[test]
    fn an_answer_read_before_the_one_shown_is_stale() {
        let mut shown = Shown::default();
        assert!(shown.fresh(20, false));
        assert!(!shown.fresh(10, true), "read before the answer shown");
        assert!(shown.fresh(30, true));
        // A repeat still moves the time on: an answer read between the
        // two is older than what the session knows.
        assert!(!shown.fresh(50, true));
        assert!(!shown.fresh(40, false));
    }
}
