//! The visitor client: HTTP calls and STOMP-over-WebSocket sessions.
//!
//! Everything a scenario needs to talk to a target (chatgate or the relay)
//! lives here, so scenarios only decide *what* to open and send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
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
    let response = http
        .post(format!("{}/chatplugin.authenticate", endpoint.http))
        .json(&serde_json::json!({ "channel_id": channel }))
        .send()
        .await
        .context("POST /chatplugin.authenticate")?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("POST /chatplugin.authenticate: {status}: {}", clip(&body));
    }
    let auth: Authenticated = response
        .json()
        .await
        .context("POST /chatplugin.authenticate: unexpected body")?;
    Ok(Credentials {
        conversation: auth.conversation_id,
        token: Some(auth.token),
    })
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
    let mut request = endpoint.ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v12.stomp"),
    );
    // Small buffers: tens of thousands of idle sessions must fit in memory,
    // and the default 128 KiB read buffer per socket would not.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(8192);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
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
