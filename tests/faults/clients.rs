//! Real clients of a chatgate process: a visitor over HTTP and over STOMP
//! (tokio-tungstenite with the server's own frame codec), an agent over
//! REST and its event socket. Every call returns what happened, errors
//! included: under a fault, errors are what the test looks at.

use std::time::Duration;

use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a client waits for an answer before calling it lost.
pub const WAIT: Duration = Duration::from_secs(15);

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// A status and a JSON body (Null when empty or not JSON), or a transport error.
#[derive(Debug)]
pub enum Answer {
    Reply(u16, Value),
    /// No HTTP answer at all (connection refused or reset, timeout).
    NoAnswer(#[allow(dead_code)] String), // why, shown by a failing test's `{:?}`
}

impl Answer {
    async fn from(sent: reqwest::Result<reqwest::Response>) -> Answer {
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => Answer::Reply(
                        status,
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    ),
                    Err(e) => Answer::NoAnswer(e.to_string()),
                }
            }
            Err(e) => Answer::NoAnswer(e.to_string()),
        }
    }
}

/// POSTs JSON to `base + path` with an optional bearer token.
pub async fn post(
    http: &reqwest::Client,
    url: String,
    body: &Value,
    token: Option<&str>,
) -> Answer {
    let mut request = http.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::from(request.send().await).await
}

/// A visitor's conversation: its tokens.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub token: String,
    pub resume_token: String,
    pub conversation_id: String,
}

impl Visitor {
    /// Authenticates a new conversation on `channel_id`.
    pub async fn start(http: &reqwest::Client, base: &str, channel_id: &str) -> Visitor {
        let answer = post(
            http,
            format!("{base}/chatplugin.authenticate"),
            &json!({"channel_id": channel_id}),
            None,
        )
        .await;
        let Answer::Reply(200, body) = answer else {
            panic!("authenticate: {answer:?}");
        };
        let text = |k: &str| body[k].as_str().expect(k).to_string();
        Visitor {
            token: text("token"),
            resume_token: text("resume_token"),
            conversation_id: text("conversation_id"),
        }
    }

    /// `/chatplugin.send` with a `client_message_id`.
    pub async fn send(&self, http: &reqwest::Client, base: &str, text: &str) -> Answer {
        post(
            http,
            format!("{base}/chatplugin.send"),
            &json!({"message": {"text": text}, "client_message_id": text}),
            Some(&self.token),
        )
        .await
    }

    /// The stored conversation, as a resuming visitor reads it (oldest first).
    pub async fn history(&self, http: &reqwest::Client, base: &str) -> Vec<Value> {
        let answer = post(
            http,
            format!("{base}/chatplugin.authenticate"),
            &json!({"resume_token": self.resume_token}),
            None,
        )
        .await;
        let Answer::Reply(200, body) = answer else {
            panic!("resume: {answer:?}");
        };
        body["messages"].as_array().expect("messages").clone()
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A STOMP session on `/ws.chatplugin`.
pub struct Stomp {
    ws: Ws,
    decoder: StompDecoder,
}

impl Stomp {
    /// Opens, CONNECTs with the visitor's token and, given `since_seq`,
    /// subscribes to its messages after that seq; Err when the server is not there.
    pub async fn connect(
        ws_base: &str,
        token: &str,
        since_seq: Option<i64>,
    ) -> Result<Stomp, String> {
        let mut request = format!("{ws_base}/ws.chatplugin")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "v12.stomp".parse().expect("header"),
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let mut stomp = Stomp {
            ws,
            decoder: StompDecoder::new(1 << 20),
        };
        stomp
            .send(
                StompFrame::new(Command::Connect)
                    .header("accept-version", "1.2")
                    .header("heart-beat", "0,0")
                    .header("Authorization", format!("Bearer {token}")),
            )
            .await?;
        match stomp.recv(WAIT).await {
            Some(frame) if frame.command == Command::Connected => {}
            other => return Err(format!("no CONNECTED: {other:?}")),
        }
        if let Some(since_seq) = since_seq {
            stomp
                .send(
                    StompFrame::new(Command::Subscribe)
                        .header("id", "sub-0")
                        .header("destination", "/queue/message")
                        .header("since-seq", since_seq.to_string()),
                )
                .await?;
        }
        Ok(stomp)
    }

    /// SUBSCRIBEs from `seq` on and waits for the RECEIPT (nothing is
    /// replayed when `seq` is the conversation's last).
    pub async fn subscribe_after(&mut self, seq: i64) -> Result<(), String> {
        self.send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-1")
                .header("destination", "/queue/message")
                .header("since-seq", seq.to_string())
                .header("receipt", "subscribed"),
        )
        .await?;
        loop {
            match self.recv(WAIT).await {
                Some(frame) if frame.command == Command::Receipt => return Ok(()),
                Some(frame) if frame.command == Command::Error => {
                    return Err(format!("ERROR {:?}", frame.get("message")))
                }
                Some(_) => {}
                None => return Err("no RECEIPT for SUBSCRIBE".into()),
            }
        }
    }

    pub async fn send(&mut self, frame: StompFrame) -> Result<(), String> {
        let text = String::from_utf8(frame.encode()).map_err(|e| e.to_string())?;
        self.ws
            .send(WsMessage::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    /// `/app/send` with a receipt named after the text.
    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        let body = json!({"message": {"text": text}, "client_message_id": text}).to_string();
        self.send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .header("receipt", text)
                .header("content-type", "application/json")
                .body(body.into_bytes()),
        )
        .await
    }

    /// The next frame; None when the socket closed or nothing came within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<StompFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.decoder.next() {
                Ok(Some(Incoming::Frame(frame))) => return Some(frame),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(_) => return None,
            }
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(t)))) => self.decoder.push(t.as_bytes()).ok()?,
                Ok(Some(Ok(WsMessage::Binary(b)))) => self.decoder.push(&b).ok()?,
                Ok(Some(Ok(WsMessage::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                    return None
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Reads MESSAGE frames until every seq up to `last` has been seen;
    /// returns the contents by seq (seq, content). None if the socket ended first.
    pub async fn replay_until(&mut self, last: i64) -> Option<Vec<(i64, String)>> {
        let mut seen = std::collections::BTreeMap::new();
        while seen.len() < last as usize {
            let frame = self.recv(WAIT).await?;
            if frame.command != Command::Message {
                continue;
            }
            let body: Value = serde_json::from_slice(&frame.body).ok()?;
            let message = &body["message"];
            if let (Some(seq), Some(content)) =
                (message["seq"].as_i64(), message["content"].as_str())
            {
                seen.insert(seq, content.to_string());
            }
        }
        Some(seen.into_iter().collect())
    }
}

/// An agent logged in over REST.
#[derive(Clone)]
pub struct Agent {
    pub http: reqwest::Client,
    pub token: String,
    pub uuid: String,
}

impl Agent {
    pub async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> Agent {
        let response = http
            .post(format!("{base}/api/auth/0.1/token"))
            .basic_auth(email, Some(password))
            .json(&json!({"expiration": 3600}))
            .send()
            .await;
        let answer = Answer::from(response).await;
        let Answer::Reply(200, body) = answer else {
            panic!("login {email}: {answer:?}");
        };
        Agent {
            http: http.clone(),
            token: body["data"]["token"].as_str().expect("token").to_string(),
            uuid: body["data"]["metadata"]["uuid"]
                .as_str()
                .expect("uuid")
                .to_string(),
        }
    }

    /// A call to `/api/chatd/1.0<path>`.
    pub async fn call(&self, base: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let method: reqwest::Method = method.parse().expect("method");
        let mut request = self
            .http
            .request(method, format!("{base}/api/chatd/1.0{path}"))
            .header("X-Auth-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::from(request.send().await).await
    }

    /// Creates an agent of this admin's tenant and logs it in.
    pub async fn new_agent(&self, base: &str, name: &str) -> Agent {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let answer = self
            .call(
                base,
                "POST",
                "/agents",
                Some(json!({"email": email, "display_name": name, "password": "correct horse", "role": "admin"})),
            )
            .await;
        assert!(matches!(answer, Answer::Reply(201, _)), "{answer:?}");
        Agent::login(&self.http, base, &email, "correct horse").await
    }

    /// Answers a queued visitor room (it must be queued: its first message is stored).
    pub async fn answer(&self, base: &str, room: &str) {
        let answer = self
            .call(base, "PUT", &format!("/queues/{room}/answer"), None)
            .await;
        assert!(
            matches!(answer, Answer::Reply(200, _)),
            "answer: {answer:?}"
        );
    }

    /// Replies in a room.
    pub async fn reply(&self, base: &str, room: &str, content: &str) -> Answer {
        self.call(
            base,
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": content})),
        )
        .await
    }

    /// Every message of a room, paging by seq (`after_seq`), oldest first.
    pub async fn all_messages(&self, base: &str, room: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        let mut after = 0;
        loop {
            let answer = self
                .call(
                    base,
                    "GET",
                    &format!(
                        "/users/me/rooms/{room}/messages?direction=asc&limit=100&after_seq={after}"
                    ),
                    None,
                )
                .await;
            let Answer::Reply(200, body) = answer else {
                panic!("page after seq {after}: {answer:?}");
            };
            let items = body["items"].as_array().expect("items").clone();
            let Some(last) = items.last().and_then(|m| m["seq"].as_i64()) else {
                return all;
            };
            assert!(last > after, "paging by seq goes forward");
            after = last;
            all.extend(items);
        }
    }
}

/// An agent's `/api/websocketd/` socket, subscribed to everything.
pub struct EventSocket {
    ws: Ws,
}

impl EventSocket {
    pub async fn connect(ws_base: &str, token: &str) -> Result<EventSocket, String> {
        let url = format!("{ws_base}/api/websocketd/?token={token}&version=2");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let mut socket = EventSocket { ws };
        let init = socket.next(WAIT).await.ok_or("no init")?;
        if init["op"] != "init" {
            return Err(format!("not init: {init}"));
        }
        socket
            .send(json!({"op": "subscribe", "data": {"event_name": "*"}}))
            .await?;
        socket.next(WAIT).await.ok_or("no subscribe answer")?;
        socket.send(json!({"op": "start"})).await?;
        let started = socket.next(WAIT).await.ok_or("no start answer")?;
        if started["op"] != "start" {
            return Err(format!("not start: {started}"));
        }
        Ok(socket)
    }

    async fn send(&mut self, value: Value) -> Result<(), String> {
        self.ws
            .send(WsMessage::text(value.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next JSON message: Ok(None) when nothing came within `wait`,
    /// Err when the socket closed.
    pub async fn poll(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(Some(Ok(WsMessage::Text(text)))) => {
                    return Ok(serde_json::from_str(text.as_str()).ok())
                }
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
                Ok(_) => return Err(()),
            }
        }
    }

    /// The next JSON message; None when the socket closed or nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(text)))) => {
                    return serde_json::from_str(text.as_str()).ok()
                }
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }
}
