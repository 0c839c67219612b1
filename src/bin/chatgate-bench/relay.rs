//! The baseline: a minimal STOMP-over-WebSocket relay with no storage and no
//! authentication.
//!
//! It does what chatgate's socket path does minus the database, the bus and
//! the auth checks, so chatgate's figures can be read as a ratio of "the cost
//! of just moving the frames" on the same machine at the same moment:
//!
//! - the same codec parses client frames and encodes MESSAGE frames;
//! - the JSON body has the same shape as chatgate's, with a per-conversation
//!   `seq`, encoded once per message however many sessions receive it;
//! - each socket is one task that reads frames in order and writes its own
//!   queue, a bounded channel per session; a session whose queue is full is
//!   dropped, as chatgate drops slow consumers.
//!
//! CONNECT names the conversation in its `login` header. `SEND /app/send`
//! fans a MESSAGE out to every session of the conversation (the sender's own
//! included), then answers the sender's receipt.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::client::ws_message;

/// Same limits and queue depth as chatgate's defaults.
const MAX_FRAME: usize = 64 * 1024;
const SESSION_QUEUE: usize = 256;

/// Runs the relay until killed. Prints `relay listening on http://ADDR`.
pub fn main(listen: SocketAddr) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(listen))
}

async fn serve(listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "relay listening on http://{}",
        listener.local_addr()?
    )?;
    stdout.flush()?;
    let rooms = Arc::new(Rooms::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let rooms = rooms.clone();
                tokio::spawn(async move {
                    let _ = session(stream, rooms).await;
                });
            }
            // Out of file descriptors, typically: back off, keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The sessions of every conversation.
#[derive(Default)]
struct Rooms {
    rooms: Mutex<HashMap<Uuid, Room>>,
    next_member: AtomicU64,
}

#[derive(Default)]
struct Room {
    seq: i64,
    members: Vec<(u64, mpsc::Sender<Bytes>)>,
}

/// Arbitrary but fixed, as every relay conversation is on "one channel".
const CHANNEL: Uuid = Uuid::from_u128(0x6368_6174_6761_7465_2d72_656c_6179_0001);

impl Rooms {
    fn join(&self, conversation: Uuid, queue: mpsc::Sender<Bytes>) -> u64 {
        let id = self.next_member.fetch_add(1, Ordering::Relaxed);
        let mut rooms = self.rooms.lock().expect("rooms lock");
        rooms
            .entry(conversation)
            .or_default()
            .members
            .push((id, queue));
        id
    }

    fn leave(&self, conversation: Uuid, id: u64) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if let Some(room) = rooms.get_mut(&conversation) {
            room.members.retain(|(member, _)| *member != id);
            if room.members.is_empty() {
                rooms.remove(&conversation);
            }
        }
    }

    /// Assigns the next seq and queues the body for every session, under one
    /// lock so that every session sees the conversation in seq order.
    fn publish(&self, conversation: Uuid, text: &str) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        let room = rooms.entry(conversation).or_default();
        room.seq += 1;
        let body = serde_json::json!({
            "type": "message.created",
            "conversation_id": conversation,
            "channel_id": CHANNEL,
            "message": {
                "id": Uuid::new_v4(),
                "content": text,
                "state": "DELIVERED",
                "alignment": "RIGHT",
                "sent_at": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "seq": room.seq,
                "sender": { "id": conversation, "name": null, "avatar_url": null },
                "client_message_id": null,
            }
        });
        let body = Bytes::from(serde_json::to_vec(&body).expect("JSON serialises"));
        // A full queue drops the member: its receiver then ends, and the
        // session closes like chatgate's slow consumers.
        room.members
            .retain(|(_, queue)| queue.try_send(body.clone()).is_ok());
    }
}

/// Why a session ends with an ERROR frame.
struct Fatal(String);

struct RelaySession {
    rooms: Arc<Rooms>,
    /// The conversation and member id once CONNECTed.
    joined: Option<(Uuid, u64)>,
    /// Handed to the room at CONNECT.
    queue: Option<mpsc::Sender<Bytes>>,
    subscription: Option<String>,
    frames_sent: u64,
}

impl Drop for RelaySession {
    fn drop(&mut self) {
        if let Some((conversation, id)) = self.joined {
            self.rooms.leave(conversation, id);
        }
    }
}

async fn session(stream: TcpStream, rooms: Arc<Rooms>) -> Result<()> {
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME * 2))
        .max_frame_size(Some(MAX_FRAME * 2));
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, choose_subprotocol, Some(config))
            .await?;
    let (mut sink, mut stream) = ws.split();
    let (queue, mut inbox) = mpsc::channel::<Bytes>(SESSION_QUEUE);
    let mut state = RelaySession {
        rooms,
        joined: None,
        queue: Some(queue),
        subscription: None,
        frames_sent: 0,
    };
    let mut decoder = StompDecoder::new(MAX_FRAME);
    let outcome: Result<(), Fatal> = loop {
        tokio::select! {
            incoming = stream.next() => {
                let data = match incoming {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(data))) => data,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => continue,
                };
                match state.on_bytes(&data, &mut decoder, &mut sink).await {
                    Ok(true) => {}
                    Ok(false) => break Ok(()),
                    Err(fatal) => break Err(fatal),
                }
            }
            body = inbox.recv(), if state.joined.is_some() => {
                let Some(body) = body else {
                    // Dropped from the room: too slow.
                    break Ok(());
                };
                let Some(subscription) = state.subscription.clone() else { continue };
                state.frames_sent += 1;
                let frame = StompFrame::new(Command::Message)
                    .header("destination", "/queue/message")
                    .header("subscription", subscription)
                    .header("message-id", state.frames_sent.to_string())
                    .header("content-type", "application/json")
                    .body(body);
                if sink.send(ws_message(&frame)).await.is_err() {
                    return Ok(());
                }
            }
        }
    };
    if let Err(Fatal(message)) = outcome {
        let frame = StompFrame::new(Command::Error).header("message", message);
        let _ = sink.send(ws_message(&frame)).await;
    }
    let _ = sink.close().await;
    Ok(())
}

/// Accepts the handshake, agreeing on `v12.stomp` when the client offers it.
#[allow(clippy::result_large_err)] // the signature tungstenite's callback requires
fn choose_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "v12.stomp");
    if offered {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v12.stomp"),
        );
    }
    Ok(response)
}

impl RelaySession {
    /// Handles every complete frame in `data`; `Ok(false)` ends the session.
    async fn on_bytes<S>(
        &mut self,
        data: &[u8],
        decoder: &mut StompDecoder,
        sink: &mut S,
    ) -> Result<bool, Fatal>
    where
        S: futures_util::Sink<Message> + Unpin,
    {
        decoder.push(data).map_err(|e| Fatal(e.to_string()))?;
        while let Some(incoming) = decoder.next().map_err(|e| Fatal(e.to_string()))? {
            let Incoming::Frame(frame) = incoming else {
                continue;
            };
            let keep_going = self.on_frame(&frame, sink).await?;
            if frame.command != Command::Connect {
                if let Some(receipt) = frame.get("receipt") {
                    let reply = StompFrame::new(Command::Receipt).header("receipt-id", receipt);
                    sink.send(ws_message(&reply))
                        .await
                        .map_err(|_| Fatal("write failed".into()))?;
                }
            }
            if !keep_going {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn on_frame<S>(&mut self, frame: &StompFrame, sink: &mut S) -> Result<bool, Fatal>
    where
        S: futures_util::Sink<Message> + Unpin,
    {
        match frame.command {
            Command::Connect | Command::Stomp => {
                let conversation = frame
                    .get("login")
                    .and_then(|login| login.parse::<Uuid>().ok())
                    .ok_or_else(|| Fatal("CONNECT needs login:<conversation uuid>".into()))?;
                let queue = self
                    .queue
                    .take()
                    .ok_or_else(|| Fatal("already connected".into()))?;
                let id = self.rooms.join(conversation, queue);
                self.joined = Some((conversation, id));
                let connected = StompFrame::new(Command::Connected)
                    .header("version", "1.2")
                    .header("heart-beat", "0,0")
                    .header("user-name", conversation.to_string())
                    .header("server", "chatgate-bench-relay");
                sink.send(ws_message(&connected))
                    .await
                    .map_err(|_| Fatal("write failed".into()))?;
                Ok(true)
            }
            _ if self.joined.is_none() => Err(Fatal("the first frame must be CONNECT".into())),
            Command::Subscribe => {
                match frame.get("destination") {
                    Some("/queue/message") | Some("/user/queue/message") => {
                        let id = frame
                            .get("id")
                            .ok_or_else(|| Fatal("SUBSCRIBE needs an id".into()))?;
                        self.subscription = Some(id.to_string());
                    }
                    _ => return Err(Fatal("unknown destination".into())),
                }
                Ok(true)
            }
            Command::Send => {
                if frame.get("destination") != Some("/app/send") {
                    return Err(Fatal("unknown destination".into()));
                }
                let body: Value = serde_json::from_slice(&frame.body)
                    .map_err(|e| Fatal(format!("400 invalid-data: {e}")))?;
                let text = body
                    .pointer("/message/text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Fatal("400 invalid-data: message.text is required".into()))?;
                let (conversation, _) = self.joined.expect("checked above");
                self.rooms.publish(conversation, text);
                Ok(true)
            }
            Command::Disconnect => Ok(false),
            _ => Ok(true),
        }
    }
}
