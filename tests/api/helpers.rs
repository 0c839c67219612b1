//! `TestApp`: the real server on port 0 with its own database (an SQLite
//! file, or a PostgreSQL schema with `CHATGATE_TEST_BACKEND=postgres`), and
//! clients that read like an SDK (reqwest for HTTP, tokio-tungstenite for STOMP).

use std::sync::Arc;
use std::time::Duration;

use chatgate::app::FirstStart;
use chatgate::presence::{Presence, PresenceKey};
use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};
use chatgate::{Application, Config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backends::PgSchema;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// The demo channel created by the first start.
    pub channel_id: String,
    pub admin_email: String,
    pub admin_password: String,
    pub config: Config,
    /// Who is connected, as this instance sees the deployment.
    pub presence: Arc<Presence>,
    /// Held so the database lives as long as the server.
    pub db: Option<TestDatabase>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// Selects the backend of the server tests: `sqlite` (or unset) or `postgres`.
pub const BACKEND_VAR: &str = "CHATGATE_TEST_BACKEND";
/// The Redis the `postgres` backend's servers use for their bus.
pub const REDIS_URL_VAR: &str = "CHATGATE_TEST_REDIS_URL";

/// What keeps one test server's data: a temporary directory (the SQLite
/// file lives there) and, on PostgreSQL, the test's schema, which the
/// instances of a cluster share. Dropping the last holder removes them.
pub struct TestDatabase {
    pub dir: TempDir,
    pub schema: Option<Arc<PgSchema>>,
}

impl TestDatabase {
    /// A temporary directory, and `schema` if the database is PostgreSQL.
    pub fn new(schema: Option<Arc<PgSchema>>) -> TestDatabase {
        TestDatabase {
            dir: tempfile::tempdir().unwrap(),
            schema,
        }
    }
}

/// A configuration for tests: port 0, a fresh database, webhooks allowed
/// to reach this machine, and the defaults otherwise. The database is an SQLite file in the returned directory, or
/// with `CHATGATE_TEST_BACKEND=postgres` a fresh PostgreSQL schema plus
/// Redis, the multi-instance deployment. Restarting on the same config (with
/// the same `TestDatabase` held) finds the same data.
pub async fn test_config() -> (Config, TestDatabase) {
    let mut db = TestDatabase::new(None);
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.dir.path().join("chatgate.db").display().to_string(),
        // Files in the test's directory on either backend (the instances of
        // a PostgreSQL cluster test share it, as they would a bucket).
        files_url: Some(db.dir.path().join("files").display().to_string()),
        // The tests' webhook receivers listen on 127.0.0.1; the refusal of
        // private targets is tested with this off.
        webhook_allow_private: true,
        ..Config::default()
    };
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => {}
        Ok("postgres") => {
            let schema = PgSchema::create().await;
            config.database_url = schema.url().to_string();
            db.schema = Some(Arc::new(schema));
            config.redis_url = Some(match std::env::var(REDIS_URL_VAR) {
                Ok(url) if !url.trim().is_empty() => url,
                _ => panic!(
                    "{REDIS_URL_VAR} is not set; {BACKEND_VAR}=postgres needs it (.ci/run sets it)"
                ),
            });
        }
        Ok(other) => panic!("{BACKEND_VAR}=`{other}`: expected `sqlite` or `postgres`"),
        Err(e) => panic!("{BACKEND_VAR}: {e}"),
    }
    (config, db)
}

impl TestApp {
    /// A fresh server with default settings.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// A fresh server whose config `tweak` adjusts.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let (mut config, db) = test_config().await;
        tweak(&mut config);
        TestApp::start(config, db, None).await
    }

    /// Starts a server on `config`; `first` carries over what an earlier start printed.
    pub async fn start(config: Config, db: TestDatabase, first: Option<FirstStart>) -> TestApp {
        let app = Application::build(config.clone())
            .await
            .expect("app builds");
        let first = app
            .first_start()
            .cloned()
            .or(first)
            .expect("first start info");
        let base = format!("http://{}", app.local_addr());
        let presence = app.presence();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            http: reqwest::Client::new(),
            channel_id: first.channel_id.to_string(),
            admin_email: first.admin_email,
            admin_password: first.admin_password,
            config,
            presence,
            db: Some(db),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) -> (Config, TestDatabase, FirstStart) {
        self.shutdown().await;
        let first = FirstStart {
            admin_email: self.admin_email.clone(),
            admin_password: self.admin_password.clone(),
            channel_id: self.channel_id.parse().unwrap(),
        };
        let db = self.db.take().expect("db");
        (self.config.clone(), db, first)
    }

    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("server stops in time")
                .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws.chatplugin", self.base.replacen("http", "ws", 1))
    }

    /// POSTs raw bytes; returns status, headers and the body parsed as JSON (Null if empty).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        let auth;
        if let Some(t) = token {
            auth = format!("Bearer {t}");
            headers.push(("authorization", auth.as_str()));
        }
        self.post_raw(path, body.to_string(), &headers).await
    }

    /// Whether this instance sees the conversation's visitor as connected.
    pub async fn visitor_online(&self, visitor: &VisitorSession) -> bool {
        let key = PresenceKey::Conversation(visitor.conversation_id.parse().unwrap());
        self.presence.online(&[key]).await[0]
    }

    /// Waits (up to `within`) until `visitor_online` answers `online`.
    pub async fn wait_visitor_online(
        &self,
        visitor: &VisitorSession,
        online: bool,
        within: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.visitor_online(visitor).await == online {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Authenticates a new conversation on the demo channel.
    pub async fn visitor(&self) -> VisitorSession {
        self.visitor_on(&self.channel_id).await
    }

    pub async fn visitor_on(&self, channel_id: &str) -> VisitorSession {
        let reply = self
            .post(
                "/chatplugin.authenticate",
                &json!({"channel_id": channel_id}),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        VisitorSession::from(&reply.body)
    }

    pub async fn send(&self, token: &str, text: &str) -> Reply {
        self.post(
            "/chatplugin.send",
            &json!({"message": {"text": text}}),
            Some(token),
        )
        .await
    }

    /// The conversation's stored messages, oldest first, as a resuming client sees them.
    pub async fn history(&self, visitor: &VisitorSession) -> Vec<Value> {
        let reply = self
            .post(
                "/chatplugin.authenticate",
                &json!({"resume_token": visitor.resume_token}),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["messages"].as_array().unwrap().clone()
    }

    /// The `content` of each stored message, oldest first.
    pub async fn contents(&self, visitor: &VisitorSession) -> Vec<String> {
        self.history(visitor)
            .await
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_string())
            .collect()
    }

    /// Logs in as the first-start admin; returns the agent token.
    pub async fn admin_token(&self) -> String {
        let reply = self
            .http
            .post(self.url("/api/auth/0.1/token"))
            .basic_auth(&self.admin_email, Some(&self.admin_password))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let reply = Reply::from(reply).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["data"]["token"].as_str().unwrap().to_string()
    }

    /// Creates a channel as admin; returns its id.
    pub async fn create_channel(&self, admin: &str, body: Value) -> String {
        let reply = self
            .post("/channels.chatplugin.connect", &body, Some(admin))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["id"].as_str().unwrap().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, Clone)]
pub struct VisitorSession {
    pub token: String,
    pub resume_token: String,
    pub conversation_id: String,
}

impl From<&Value> for VisitorSession {
    fn from(body: &Value) -> Self {
        VisitorSession {
            token: body["token"].as_str().unwrap().to_string(),
            resume_token: body["resume_token"].as_str().unwrap().to_string(),
            conversation_id: body["conversation_id"].as_str().unwrap().to_string(),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Asserts the contract's error shape, status and id.
    pub fn assert_error(&self, status: u16, error_id: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error_id"], error_id, "{}", self.body);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert!(self.body["details"].is_object(), "{}", self.body);
        assert!(
            self.body["timestamp"].as_f64().is_some_and(|t| t > 1.7e9),
            "{}",
            self.body
        );
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A STOMP client over a real WebSocket.
pub struct Stomp {
    ws: Ws,
    decoder: StompDecoder,
}

impl Stomp {
    /// Opens the socket (offering the STOMP sub-protocols), without CONNECT.
    pub async fn open(
        url: &str,
        origin: Option<&str>,
    ) -> Result<Stomp, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "v12.stomp, v11.stomp, v10.stomp".parse().unwrap(),
        );
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await?;
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap()),
            Some("v12.stomp")
        );
        Ok(Stomp {
            ws,
            decoder: StompDecoder::new(1 << 20),
        })
    }

    /// Opens and CONNECTs with `token`; returns the client and the CONNECTED frame.
    pub async fn connect(app: &TestApp, token: &str) -> (Stomp, StompFrame) {
        let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
        stomp
            .send(
                StompFrame::new(Command::Connect)
                    .header("accept-version", "1.2,1.1,1.0")
                    .header("heart-beat", "0,0")
                    .header("Authorization", format!("Bearer {token}")),
            )
            .await;
        let connected = stomp.recv().await.expect("CONNECTED");
        assert_eq!(connected.command, Command::Connected, "{connected:?}");
        (stomp, connected)
    }

    /// Connects and subscribes to `/queue/message` (with `since-seq` if given).
    pub async fn subscribed(app: &TestApp, token: &str, since: Option<i64>) -> Stomp {
        let (mut stomp, _) = Stomp::connect(app, token).await;
        let mut sub = StompFrame::new(Command::Subscribe)
            .header("id", "sub-0")
            .header("destination", "/queue/message")
            .header("receipt", "r-sub");
        if let Some(n) = since {
            sub = sub.header("since-seq", n.to_string());
        }
        stomp.send(sub).await;
        // Replayed MESSAGE frames come before the RECEIPT; callers that use
        // since-seq read them with `messages`, so only wait for the receipt here
        // when nothing is to be replayed.
        if since.is_none() {
            let receipt = stomp.recv().await.expect("RECEIPT");
            assert_eq!(receipt.command, Command::Receipt);
            assert_eq!(receipt.get("receipt-id"), Some("r-sub"));
        }
        stomp
    }

    pub async fn send(&mut self, frame: StompFrame) {
        let text = String::from_utf8(frame.encode()).unwrap();
        self.ws.send(WsMessage::text(text)).await.unwrap();
    }

    /// Sends a STOMP heart-beat (an end of line) and a WebSocket ping;
    /// false once the socket is closed.
    pub async fn beat(&mut self) -> bool {
        self.ws.send(WsMessage::text("\n")).await.is_ok()
            && self
                .ws
                .send(WsMessage::Ping(Default::default()))
                .await
                .is_ok()
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.ws
            .send(WsMessage::binary(bytes.to_vec()))
            .await
            .unwrap();
    }

    /// The next frame, or None when the socket closes; panics after `WAIT`.
    pub async fn recv(&mut self) -> Option<StompFrame> {
        self.recv_within(WAIT).await.expect("a frame in time")
    }

    /// Err(()) on timeout, Ok(None) when closed.
    pub async fn recv_within(&mut self, wait: Duration) -> Result<Option<StompFrame>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(incoming) = self.decoder.next().unwrap() {
                if let Incoming::Frame(frame) = incoming {
                    return Ok(Some(frame));
                }
            }
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(()),
                Ok(None) | Ok(Some(Err(_))) => return Ok(None),
                Ok(Some(Ok(msg))) => msg,
            };
            match msg {
                WsMessage::Text(t) => self.decoder.push(t.as_bytes()).unwrap(),
                WsMessage::Binary(b) => self.decoder.push(&b).unwrap(),
                WsMessage::Close(_) => return Ok(None),
                _ => {}
            }
        }
    }

    /// Waits for `n` heart-beats (EOLs) from the server; panics on a frame,
    /// on the socket closing, or after `WAIT`.
    pub async fn heartbeats(&mut self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut beats = 0;
        while beats < n {
            while let Some(incoming) = self.decoder.next().unwrap() {
                match incoming {
                    Incoming::Heartbeat => beats += 1,
                    Incoming::Frame(frame) => panic!("a frame among heart-beats: {frame:?}"),
                }
            }
            if beats >= n {
                break;
            }
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{beats} of {n} heart-beats in time"));
            match msg {
                Some(Ok(WsMessage::Text(t))) => self.decoder.push(t.as_bytes()).unwrap(),
                Some(Ok(WsMessage::Binary(b))) => self.decoder.push(&b).unwrap(),
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => {
                    panic!("closed after {beats} of {n} heart-beats")
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The close code the server sent, reading past any frames.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    }

    /// The next `n` MESSAGE frames' JSON bodies.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = self.recv().await.expect("socket open");
            if frame.command == Command::Message {
                out.push(serde_json::from_slice(&frame.body).unwrap());
            }
        }
        out
    }
}

/// A raw TCP connection to `app`, for tests where a client library would buffer.
pub async fn raw_tcp(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// What a raw connection received until the server closed it.
pub struct Closed {
    /// Everything the server sent.
    pub data: Vec<u8>,
    /// How long after `since` the server closed.
    pub after: std::time::Duration,
    /// How many writes of `trickle` went through meanwhile.
    pub trickled: usize,
}

/// Reads until the server closes `stream`, writing `trickle` (if any)
/// every 200 ms meanwhile (write errors ignored: the server may have
/// closed); panics if still open `give_up` after `since`.
pub async fn read_until_closed(
    stream: &mut TcpStream,
    trickle: &[u8],
    since: tokio::time::Instant,
    give_up: std::time::Duration,
) -> Closed {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut data = Vec::new();
    let mut trickled = 0;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Err(_) => {} // still open
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Closed {
                    data,
                    after: since.elapsed(),
                    trickled,
                }
            }
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
        }
        assert!(
            since.elapsed() < give_up,
            "still open after {:?} ({trickled} writes), received {:?}",
            since.elapsed(),
            String::from_utf8_lossy(&data)
        );
        if !trickle.is_empty() && stream.write_all(trickle).await.is_ok() {
            trickled += 1;
        }
    }
}
