//! A webhook receiver for the tests that send webhooks: a real HTTP server
//! (warp) on port 0 that checks every request's Standard Webhooks signature
//! with the specification's algorithm and answers as the test's script
//! says: at once, failing, too late (past the sender's timeout) or slowly.
//! Shared by the API tests and the fault tests (each includes this file as
//! its module `webhook_receiver`).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use warp::Filter;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 at once.
    Ok,
    /// 500 at once.
    Fail,
    /// Waits this long, then 503 (past the sender's timeout: it gave up).
    Hang(Duration),
    /// Waits this long, then 200 (within the sender's timeout).
    Slow(Duration),
    /// 200 at once, with a body of this many bytes (a web app's page).
    Page(usize),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `webhook-id`.
    pub id: String,
    pub timestamp: i64,
    pub body: Value,
    /// The signature verified against the secret, the timestamp is within
    /// five minutes, and the body's `id` is the `webhook-id`.
    pub verified: bool,
    /// The how-manieth request with this id (1: the first).
    pub try_number: usize,
    /// What the receiver answered (2xx: delivered).
    pub status: u16,
    /// The sender's port: a new one is a new connection.
    pub port: u16,
    /// When it came.
    pub at: Instant,
}

impl Hit {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    /// The conversation the event is about (`data.message.room.uuid` or
    /// `data.room.uuid`), if any.
    pub fn conversation(&self) -> Option<String> {
        let data = &self.body["data"];
        data["message"]["room"]["uuid"]
            .as_str()
            .or(data["room"]["uuid"].as_str())
            .map(str::to_string)
    }
}

type Script = Box<dyn FnMut(&Hit) -> Answer + Send>;

struct State {
    secret: Option<Vec<u8>>,
    hits: Vec<Hit>,
    script: Script,
}

/// The running receiver (it stops with the test's runtime).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// A receiver answering 200 to everything until `script` says otherwise.
    pub async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(State {
            secret: None,
            hits: Vec::new(),
            script: Box::new(|_| Answer::Ok),
        }));
        let shared = state.clone();
        let route = warp::post()
            .and(warp::addr::remote())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |from: Option<std::net::SocketAddr>,
                      headers: warp::http::HeaderMap,
                      body: bytes::Bytes| {
                    let state = shared.clone();
                    let port = from.map_or(0, |addr| addr.port());
                    async move { receive(state, port, headers, body).await }
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            state,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `whsec_...` secret the endpoint's creation answered.
    pub fn set_secret(&self, shown: &str) {
        let key = shown.strip_prefix("whsec_").expect("a whsec_ secret");
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("the secret is base64");
        self.lock().secret = Some(key);
    }

    /// How to answer from now on.
    pub fn script(&self, script: impl FnMut(&Hit) -> Answer + Send + 'static) {
        self.lock().script = Box::new(script);
    }

    /// Every request so far, in the order they came.
    pub fn hits(&self) -> Vec<Hit> {
        self.lock().hits.clone()
    }

    /// The requests answered 2xx, in the order they came.
    pub fn delivered(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .collect()
    }

    /// Waits until `n` distinct events were answered 2xx (panics after `within`).
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + within;
        loop {
            let delivered = self.delivered();
            let mut ids: Vec<&str> = delivered.iter().map(|h| h.id.as_str()).collect();
            ids.sort();
            ids.dedup();
            if ids.len() >= n {
                return delivered;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} of {n} events delivered within {within:?}; requests: {:#?}",
                    ids.len(),
                    self.hits()
                        .iter()
                        .map(|h| (h.kind().to_string(), h.status, h.try_number))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(
    state: Arc<Mutex<State>>,
    port: u16,
    headers: warp::http::HeaderMap,
    body: bytes::Bytes,
) -> warp::http::Response<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or(0);
    let signatures = header("webhook-signature");
    let raw = String::from_utf8_lossy(&body).into_owned();
    let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let answer = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let verified = state
            .secret
            .as_deref()
            .is_some_and(|key| verify(key, &id, timestamp, &raw, &signatures))
            && parsed["id"].as_str() == Some(id.as_str());
        let try_number = state.hits.iter().filter(|h| h.id == id).count() + 1;
        let mut hit = Hit {
            id,
            timestamp,
            body: parsed,
            verified,
            try_number,
            status: 0,
            port,
            at: Instant::now(),
        };
        let answer = (state.script)(&hit);
        hit.status = match answer {
            Answer::Ok | Answer::Slow(_) | Answer::Page(_) => 200,
            Answer::Fail => 500,
            Answer::Hang(_) => 503,
        };
        state.hits.push(hit);
        answer
    };
    let (status, body) = match answer {
        Answer::Ok => (200, String::new()),
        Answer::Fail => (500, String::new()),
        Answer::Hang(wait) => {
            tokio::time::sleep(wait).await;
            (503, String::new())
        }
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            (200, String::new())
        }
        Answer::Page(bytes) => (200, "x".repeat(bytes)),
    };
    warp::http::Response::builder()
        .status(status)
        .body(body)
        .unwrap()
}

/// The Standard Webhooks check: one of the space-separated `v1,<base64>`
/// signatures is the HMAC-SHA256 of `<id>.<timestamp>.<body>`, and the
/// timestamp is within five minutes of now (no replays).
fn verify(key: &[u8], id: &str, timestamp: i64, body: &str, signatures: &str) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}
