//! The clients: the visitor's HTTP calls and STOMP-over-WebSocket sessions,
//! and the agent's REST calls and event socket (`/api/websocketd/`).
//!
//! Everything a scenario needs to talk to a target (chatgate or the relay)
//! lives here, so scenarios only decide *what* to open and send.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

pub type Ws = WebSocketStream<TcpStream>;
pub type WsSink = SplitSink<Ws, Message>;

/// The subscription id every bench session uses for `/queue/message`.
pub const SUBSCRIPTION: &str = "sub-0";
/// Largest frame the bench accepts; chatgate's own limit is 64 KiB.
const MAX_FRAME: usize = 1 << 20;
/// Opening one session (TCP, handshake, CONNECT, SUBSCRIBE) must finish within this.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A server address as both HTTP base URL and socket address.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port`, no trailing slash.
    pub http: String,
    pub addr: SocketAddr,
    /// `ws://host:port/ws.chatplugin`.
    pub ws_url: String,
}

impl Endpoint {
    /// `ws://host:port` followed by `path` (which starts with `/`).
    pub fn ws(&self, path: &str) -> String {
        format!("ws{}{path}", self.http.trim_start_matches("http"))
    }
}

impl Endpoint {
    /// Resolves a base URL such as `http://127.0.0.1:8080`.
    pub async fn resolve(base: &str) -> Result<Endpoint> {
        let trimmed = base.trim_end_matches('/');
        let authority = trimmed
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("server URL must start with http:// (got {base})"))?;
        if authority.contains('/') {
            bail!("server URL must not have a path (got {base})");
        }
        let addr = tokio::net::lookup_host(authority)
            .await
            .with_context(|| format!("cannot resolve {authority}"))?
            .next()
            .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
        Ok(Endpoint {
            http: trimmed.to_string(),
            addr,
            ws_url: format!("ws://{authority}/ws.chatplugin"),
        })
    }
}

/// Source addresses handed out round-robin, so that each one needs only a
/// share of the ephemeral port range (about 28,000 ports per address).
pub struct Sources {
    ips: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// `count` loopback addresses from 127.0.0.2 when the server is on IPv4
    /// loopback (all of 127/8 routes to lo), else the system's choice.
    pub fn new(count: u8, offset: usize, server: SocketAddr) -> Sources {
        let ips = match server.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => (0..count)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                .collect(),
            _ => vec![if server.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            }],
        };
        Sources {
            next: AtomicUsize::new(offset % ips.len()),
            ips,
        }
    }

    pub fn pick(&self) -> IpAddr {
        self.ips[self.next.fetch_add(1, Ordering::Relaxed) % self.ips.len()]
    }

    pub fn all(&self) -> &[IpAddr] {
        &self.ips
    }
}

/// One pooled HTTP client per source address, handed out round-robin.
pub struct HttpPool {
    clients: Vec<reqwest::Client>,
    next: AtomicUsize,
}

impl HttpPool {
    pub fn new(sources: &Sources) -> Result<HttpPool> {
        let clients = sources
            .all()
            .iter()
            .map(|ip| {
                reqwest::Client::builder()
                    .local_address(*ip)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(60))
                    .build()
                    .context("cannot build the HTTP client")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(HttpPool {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    pub fn pick(&self) -> reqwest::Client {
        self.clients[self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()].clone()
    }
}

/// What a session presents at CONNECT: a chatgate visitor token, or for the
/// relay just the conversation id (`login` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub conversation: Uuid,
    pub token: Option<String>,
}

impl Credentials {
    /// A conversation on the relay, which has no authentication.
    pub fn relay() -> Credentials {
        Credentials {
            conversation: Uuid::new_v4(),
            token: None,
        }
    }

    fn connect_frame(&self) -> StompFrame {
        let frame = StompFrame::new(Command::Connect)
            .header("accept-version", "1.2")
            .header("heart-beat", "0,0");
        match &self.token {
            Some(token) => frame.header("Authorization", format!("Bearer {token}")),
            None => frame.header("login", self.conversation.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct Authenticated {
    token: String,
    conversation_id: Uuid,
}

/// `POST /chatplugin.authenticate`: a new conversation on `channel`.
pub async fn authenticate(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    channel: Uuid,
) -> Result<Credentials> {
    const CALL: &str = "POST /chatplugin.authenticate";
    let response = http
        .post(format!("{}/chatplugin.authenticate", endpoint.http))
        // The page's context, as the widget sends it: a new conversation
        // stores it with its first message.
        .json(&serde_json::json!({
            "channel_id": channel,
            "context": {
                "url": "https://shop.example/products/42?ref=bench",
                "title": "Product 42 - Shop",
                "language": "en-GB",
                "time_zone": "Europe/London",
                "utc_offset_minutes": 0,
            },
        }))
        .send()
        .await;
    let auth: Authenticated = success(CALL, response)
        .await?
        .json()
        .await
        .with_context(|| format!("{CALL}: unexpected body"))?;
    Ok(Credentials {
        conversation: auth.conversation_id,
        token: Some(auth.token),
    })
}

/// A response with a 2xx status, or an error naming the call, the status
/// and the start of the body.
async fn success(
    call: &str,
    response: reqwest::Result<reqwest::Response>,
) -> Result<reqwest::Response> {
    let response = response.with_context(|| call.to_string())?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("{call}: {status}: {}", clip(&body));
    }
    Ok(response)
}

/// The body of a message send, over HTTP or STOMP.
pub fn send_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "message": { "text": text } }))
        .expect("a JSON value always serialises")
}

/// Reads STOMP frames off the receiving half of a socket.
pub struct FrameReader {
    stream: SplitStream<Ws>,
    decoder: StompDecoder,
}

impl FrameReader {
    /// The next frame; `Ok(None)` when the peer closed the socket.
    pub async fn next(&mut self) -> Result<Option<StompFrame>> {
        loop {
            match self.decoder.next()? {
                Some(Incoming::Frame(frame)) => return Ok(Some(frame)),
                Some(Incoming::Heartbeat) => continue,
                None => {}
            }
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => self.decoder.push(text.as_bytes())?,
                Some(Ok(Message::Binary(data))) => self.decoder.push(&data)?,
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
            }
        }
    }

    /// Like [`FrameReader::next`], but a close or an ERROR frame is an error.
    async fn expect(&mut self, what: &str) -> Result<StompFrame> {
        match self.next().await? {
            Some(frame) if frame.command == Command::Error => bail!(
                "ERROR frame while waiting for {what}: {}",
                describe_error(&frame)
            ),
            Some(frame) => Ok(frame),
            None => bail!("socket closed while waiting for {what}"),
        }
    }
}

/// An open, connected and subscribed session.
pub struct Session {
    pub sink: WsSink,
    pub frames: FrameReader,
}

/// Encodes a frame as a WebSocket text message (binary if not UTF-8).
pub fn ws_message(frame: &StompFrame) -> Message {
    match String::from_utf8(frame.encode()) {
        Ok(text) => Message::text(text),
        Err(err) => Message::binary(err.into_bytes()),
    }
}

/// WebSocket, CONNECT, SUBSCRIBE `/queue/message` with a receipt: when this
/// returns, the server delivers every later message to the session.
pub async fn open_session(
    endpoint: &Endpoint,
    source: IpAddr,
    credentials: &Credentials,
) -> Result<Session> {
    tokio::time::timeout(OPEN_TIMEOUT, open_inner(endpoint, source, credentials))
        .await
        .map_err(|_| anyhow!("opening a session took over {OPEN_TIMEOUT:?}"))?
}

async fn open_inner(
    endpoint: &Endpoint,
    source: IpAddr,
    credentials: &Credentials,
) -> Result<Session> {
    let ws = connect_ws(endpoint, source, &endpoint.ws_url, Some("v12.stomp")).await?;
    let (mut sink, stream) = ws.split();
    let mut frames = FrameReader {
        stream,
        decoder: StompDecoder::new(MAX_FRAME),
    };

    sink.send(ws_message(&credentials.connect_frame())).await?;
    let connected = frames.expect("CONNECTED").await?;
    if connected.command != Command::Connected {
        bail!("expected CONNECTED, got {}", connected.command.as_str());
    }

    let subscribe = StompFrame::new(Command::Subscribe)
        .header("id", SUBSCRIPTION)
        .header("destination", "/queue/message")
        .header("receipt", "subscribed");
    sink.send(ws_message(&subscribe)).await?;
    loop {
        // A conversation with history replays it before the receipt; the
        // bench's conversations are fresh, so anything else is skipped.
        let frame = frames.expect("the SUBSCRIBE receipt").await?;
        if frame.command == Command::Receipt {
            break;
        }
    }
    Ok(Session { sink, frames })
}

/// A TCP connection from `source` to the endpoint, upgraded to a WebSocket
/// at `url`, offering `protocol` when given.
async fn connect_ws(
    endpoint: &Endpoint,
    source: IpAddr,
    url: &str,
    protocol: Option<&'static str>,
) -> Result<Ws> {
    let socket = if endpoint.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("cannot bind a client socket to {source}"))?;
    let stream = socket
        .connect(endpoint.addr)
        .await
        .with_context(|| format!("cannot connect to {} from {source}", endpoint.addr))?;
    // Frames are small; Nagle's algorithm would add delayed-ACK stalls.
    stream.set_nodelay(true)?;
    let mut request = url.into_client_request()?;
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    }
    // Small buffers: tens of thousands of idle sessions must fit in memory,
    // and the default 128 KiB read buffer per socket would not.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(8192);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    Ok(ws)
}

/// Opens one session per `(endpoint, credentials)` with at most
/// `concurrency` in flight; results keep the order of `targets`. Any
/// failure fails the whole.
pub async fn open_all(
    targets: Vec<(Endpoint, Credentials)>,
    sources: &Arc<Sources>,
    concurrency: usize,
) -> Result<Vec<Session>> {
    let count = targets.len();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, (endpoint, credentials)) in targets.into_iter().enumerate() {
        let sources = sources.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let session = open_session(&endpoint, sources.pick(), &credentials).await;
            (index, credentials.conversation, session)
        });
    }
    let mut opened: Vec<Option<Session>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, conversation, session) = joined.context("a session task panicked")?;
        let session = session.with_context(|| {
            format!("cannot open session {index} of {count} (conversation {conversation})")
        })?;
        opened[index] = Some(session);
    }
    Ok(opened
        .into_iter()
        .map(|s| s.expect("every task reported"))
        .collect())
}

/// A `SEND /app/send` frame with `body` (see [`send_body`]); the server
/// answers `receipt` once the message is stored.
pub fn send_frame(body: Vec<u8>, receipt: String) -> Message {
    let frame = StompFrame::new(Command::Send)
        .header("destination", "/app/send")
        .header("receipt", receipt)
        .header("content-type", "application/json")
        .body(body);
    ws_message(&frame)
}

/// The part of a pushed MESSAGE body (`/queue/message`) the bench reads.
#[derive(Deserialize)]
pub struct Pushed<'a> {
    /// `message.created` or `message.updated`.
    #[serde(borrow, rename = "type", default)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub message: PushedMessage<'a>,
}

#[derive(Deserialize)]
pub struct PushedMessage<'a> {
    #[serde(borrow)]
    pub content: Cow<'a, str>,
    /// `RIGHT` (the visitor's own), `LEFT` (an agent's), `CENTER` (notices).
    #[serde(borrow, default)]
    pub alignment: Cow<'a, str>,
}

/// Writes a socket's messages in order, batching whatever is queued into
/// one flush; returns the sink when the queue closes or a write fails.
pub async fn write_loop(mut sink: WsSink, mut frames: mpsc::UnboundedReceiver<Message>) -> WsSink {
    while let Some(first) = frames.recv().await {
        if sink.feed(first).await.is_err() {
            break;
        }
        let mut failed = false;
        while let Ok(more) = frames.try_recv() {
            if sink.feed(more).await.is_err() {
                failed = true;
                break;
            }
        }
        if failed || sink.flush().await.is_err() {
            break;
        }
    }
    sink
}

/// Closes sockets politely, without waiting long for slow peers.
pub async fn close_all(sinks: Vec<WsSink>) {
    let closing = futures_util::future::join_all(sinks.into_iter().map(|mut sink| async move {
        let _ = sink.close().await;
    }));
    let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
}

/// A logged-in agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentLogin {
    pub uuid: Uuid,
    pub token: String,
}

/// `POST /api/auth/0.1/token` with HTTP Basic credentials.
pub async fn login(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    email: &str,
    password: &str,
) -> Result<AgentLogin> {
    let call = format!("login as {email}");
    let response = http
        .post(format!("{}/api/auth/0.1/token", endpoint.http))
        .basic_auth(email, Some(password))
        .json(&serde_json::json!({}))
        .send()
        .await;
    let body: Value = success(&call, response).await?.json().await?;
    let data = &body["data"];
    Ok(AgentLogin {
        uuid: data["metadata"]["uuid"]
            .as_str()
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| anyhow!("{call}: no metadata.uuid in {}", clip(&body.to_string())))?,
        token: data["token"]
            .as_str()
            .ok_or_else(|| anyhow!("{call}: no token in {}", clip(&body.to_string())))?
            .to_string(),
    })
}

/// The URL of a path of the agent API (`/api/chatd/1.0<path>`).
pub fn chatd_url(endpoint: &Endpoint, path: &str) -> String {
    format!("{}/api/chatd/1.0{path}", endpoint.http)
}

/// `POST /agents` with an admin's token: a new agent (role `agent`).
pub async fn create_agent(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    admin: &AgentLogin,
    email: &str,
    display_name: &str,
    password: &str,
) -> Result<()> {
    let response = http
        .post(chatd_url(endpoint, "/agents"))
        .header("X-Auth-Token", &admin.token)
        .json(&serde_json::json!({
            "email": email,
            "display_name": display_name,
            "password": password,
            "role": "agent",
        }))
        .send()
        .await;
    success(&format!("create agent {email}"), response).await?;
    Ok(())
}

/// `PUT /queues/<room>/answer`: `Ok(true)` when this agent answered it,
/// `Ok(false)` when another agent had (409).
pub async fn answer(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    agent: &AgentLogin,
    room: Uuid,
) -> Result<bool> {
    let url = chatd_url(endpoint, &format!("/queues/{room}/answer"));
    let response = http
        .put(&url)
        .header("X-Auth-Token", &agent.token)
        .send()
        .await;
    if let Ok(r) = &response {
        if r.status() == reqwest::StatusCode::CONFLICT {
            return Ok(false);
        }
    }
    success(&format!("PUT {url}"), response)
        .await?
        .bytes()
        .await?;
    Ok(true)
}

/// `POST /users/me/rooms/<room>/messages` (`url`, see [`chatd_url`]): the
/// agent's message into a room, a reply to the visitor in a visitor room.
/// The body is read whole, which returns the connection to the pool.
pub async fn post_message(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    content: &str,
) -> Result<()> {
    let response = http
        .post(url)
        .header("X-Auth-Token", token)
        .json(&serde_json::json!({ "content": content }))
        .send()
        .await;
    success("POST message", response).await?.bytes().await?;
    Ok(())
}

/// `POST /chatplugin.send` with a visitor's token: one message over HTTP
/// (a 200 means stored).
pub async fn send_http(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    credentials: &Credentials,
    text: &str,
) -> Result<()> {
    let token = credentials.token.as_deref().unwrap_or_default();
    let response = http
        .post(format!("{}/chatplugin.send", endpoint.http))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(send_body(text))
        .send()
        .await;
    success("POST /chatplugin.send", response)
        .await?
        .bytes()
        .await?;
    Ok(())
}

/// A call with an agent's (or admin's) token and an optional JSON body;
/// the JSON answer (`null` for an empty one) of a 2xx status.
pub async fn call_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    agent: &AgentLogin,
    body: Option<&Value>,
) -> Result<Value> {
    let call = format!("{method} {url}");
    let mut request = http
        .request(method, url)
        .header("X-Auth-Token", &agent.token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let bytes = success(&call, request.send().await).await?.bytes().await?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{call}: unexpected body"))
}

/// `POST /channels.<op>` (`info`, `update`) with an admin's token.
pub async fn channel_call(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    admin: &AgentLogin,
    op: &str,
    body: &Value,
) -> Result<Value> {
    let url = format!("{}/channels.{op}", endpoint.http);
    call_json(http, reqwest::Method::POST, &url, admin, Some(body)).await
}

/// `PUT /users/me/rooms/<room>/state` (`closed` or `open`).
pub async fn set_room_state(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    agent: &AgentLogin,
    room: Uuid,
    state: &str,
) -> Result<()> {
    let url = chatd_url(endpoint, &format!("/users/me/rooms/{room}/state"));
    let body = serde_json::json!({ "state": state });
    call_json(http, reqwest::Method::PUT, &url, agent, Some(&body)).await?;
    Ok(())
}

/// Every room of an agent (`GET /users/me/rooms`, page by page).
pub async fn all_rooms(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    agent: &AgentLogin,
) -> Result<Vec<Value>> {
    const PAGE: usize = 100;
    let mut rooms = Vec::new();
    loop {
        let path = format!("/users/me/rooms?limit={PAGE}&offset={}", rooms.len());
        let url = chatd_url(endpoint, &path);
        let mut page = call_json(http, reqwest::Method::GET, &url, agent, None).await?;
        let items = match page["items"].take() {
            Value::Array(items) => items,
            other => bail!("GET {url}: no items in {}", clip(&other.to_string())),
        };
        let last = items.len() < PAGE;
        rooms.extend(items);
        if last {
            return Ok(rooms);
        }
    }
}

/// An agent's event socket (`/api/websocketd/`, wazo-websocketd v2),
/// subscribed to every event and started.
pub struct EventSocket {
    pub sink: WsSink,
    pub events: EventReader,
}

/// One event as the socket delivers it: `data.name` and `data.data`.
#[derive(Debug)]
pub struct AgentEvent {
    pub name: String,
    pub data: Value,
}

#[derive(Deserialize)]
struct Envelope {
    op: String,
    #[serde(default)]
    data: Value,
}

/// What [`EventReader::next_or_stop`] got.
pub enum Polled {
    Event(AgentEvent),
    /// The run is over.
    Stopped,
    /// The socket closed or failed, as said.
    Ended(String),
}

/// Reads the event socket's JSON messages.
pub struct EventReader {
    stream: SplitStream<Ws>,
}

impl EventReader {
    /// The next message, whatever its `op`; `Ok(None)` when the socket closed normally.
    async fn message(&mut self) -> Result<Option<Envelope>> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .with_context(|| format!("unreadable event message: {}", clip(&text)))
                }
                Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) != 1000 => {
                    bail!(
                        "closed by the server ({} {})",
                        u16::from(frame.code),
                        frame.reason
                    )
                }
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
            }
        }
    }

    /// The next event (answers to our own ops are skipped); `Ok(None)` when
    /// the socket closed normally.
    pub async fn next(&mut self) -> Result<Option<AgentEvent>> {
        loop {
            let Some(mut envelope) = self.message().await? else {
                return Ok(None);
            };
            if envelope.op == "event" {
                return Ok(Some(AgentEvent {
                    name: envelope.data["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    data: envelope.data["data"].take(),
                }));
            }
        }
    }

    /// The next event, unless `stop` changes first; a socket that ends is
    /// reported with what happened.
    pub async fn next_or_stop(&mut self, stop: &mut watch::Receiver<bool>) -> Polled {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => return Polled::Stopped,
            next = self.next() => next,
        };
        match next {
            Ok(Some(event)) => Polled::Event(event),
            Ok(None) => Polled::Ended("an event socket was closed by the server".into()),
            Err(err) => Polled::Ended(format!("an event socket failed: {err:#}")),
        }
    }

    /// The next message, which must have this `op`.
    async fn expect(&mut self, op: &str) -> Result<()> {
        match self.message().await? {
            Some(envelope) if envelope.op == op => Ok(()),
            Some(envelope) => bail!("expected op {op}, got {}", envelope.op),
            None => bail!("socket closed while waiting for op {op}"),
        }
    }
}

/// Opens an agent's event socket: `init`, subscribe to `*`, `start`. When
/// this returns, every later event of the agent's audience reaches it.
pub async fn open_events(
    endpoint: &Endpoint,
    source: IpAddr,
    agent: &AgentLogin,
) -> Result<EventSocket> {
    let url = endpoint.ws(&format!("/api/websocketd/?token={}&version=2", agent.token));
    let open = async {
        let ws = connect_ws(endpoint, source, &url, None).await?;
        let (mut sink, stream) = ws.split();
        let mut events = EventReader { stream };
        events.expect("init").await?;
        let subscribe = serde_json::json!({"op": "subscribe", "data": {"event_name": "*"}});
        sink.send(Message::text(subscribe.to_string())).await?;
        events.expect("subscribe").await?;
        sink.send(Message::text(r#"{"op":"start"}"#)).await?;
        events.expect("start").await?;
        anyhow::Ok(EventSocket { sink, events })
    };
    tokio::time::timeout(OPEN_TIMEOUT, open)
        .await
        .map_err(|_| anyhow!("opening an event socket took over {OPEN_TIMEOUT:?}"))?
        .with_context(|| format!("event socket of agent {}", agent.uuid))
}

/// The `message` header of an ERROR frame and the start of its body.
pub fn describe_error(frame: &StompFrame) -> String {
    let body = String::from_utf8_lossy(&frame.body);
    format!(
        "{} ({})",
        frame.get("message").unwrap_or("no message header"),
        clip(body.trim())
    )
}

/// Shortens text for error messages.
pub fn clip(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
