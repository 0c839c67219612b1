//! Clients of the agent side for tests: `AgentClient` (REST, as an SDK
//! would call it) and `EventSocket` (`/api/websocketd/`, wazo-websocketd v2).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Reply, TestApp, WAIT};

/// An agent logged in to a test server.
#[derive(Clone)]
pub struct AgentClient {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub uuid: String,
    pub tenant: String,
    pub email: String,
}

impl AgentClient {
    /// A login attempt's reply, whatever it is.
    pub async fn try_login(app: &TestApp, email: &str, password: &str) -> Reply {
        AgentClient::try_login_with(app, email, password, json!({})).await
    }

    /// A login with `body` (`{"expiration": seconds}`, say).
    async fn try_login_with(app: &TestApp, email: &str, password: &str, body: Value) -> Reply {
        Reply::from(
            app.http
                .post(app.url("/api/auth/0.1/token"))
                .basic_auth(email, Some(password))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Logs in with email and password.
    pub async fn login(app: &TestApp, email: &str, password: &str) -> AgentClient {
        AgentClient::login_with(app, email, password, json!({})).await
    }

    /// Logs in for a token that expires after `seconds`.
    pub async fn login_expiring(
        app: &TestApp,
        email: &str,
        password: &str,
        seconds: u64,
    ) -> AgentClient {
        AgentClient::login_with(app, email, password, json!({"expiration": seconds})).await
    }

    async fn login_with(app: &TestApp, email: &str, password: &str, body: Value) -> AgentClient {
        let reply = AgentClient::try_login_with(app, email, password, body).await;
        assert_eq!(reply.status, 200, "login {email}: {}", reply.body);
        let data = &reply.body["data"];
        AgentClient {
            base: app.base.clone(),
            http: app.http.clone(),
            token: data["token"].as_str().unwrap().to_string(),
            uuid: data["metadata"]["uuid"].as_str().unwrap().to_string(),
            tenant: data["metadata"]["tenant_uuid"]
                .as_str()
                .unwrap()
                .to_string(),
            email: email.to_string(),
        }
    }

    /// The first-start admin.
    pub async fn admin(app: &TestApp) -> AgentClient {
        AgentClient::login(app, &app.admin_email, &app.admin_password).await
    }

    /// The admin of a second tenant on the same server, created the way
    /// `chatgate tenant add` does it (through the store of the running
    /// server's database), then logged in over HTTP.
    pub async fn other_tenant_admin(app: &TestApp) -> AgentClient {
        let store = chatgate::store::open(&app.config.database_url)
            .await
            .expect("the test server's store opens a second time");
        let name = format!("Other {}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let (email, password) = chatgate::service::agents::add_tenant(store.as_ref(), &name)
            .await
            .expect("tenant added");
        drop(store);
        AgentClient::login(app, &email, &password).await
    }

    /// Creates an agent of the admin's tenant (role `agent`) and logs it in.
    pub async fn new_agent(&self, app: &TestApp, name: &str) -> AgentClient {
        self.new_agent_with_role(app, name, "agent").await
    }

    pub async fn new_agent_with_role(&self, app: &TestApp, name: &str, role: &str) -> AgentClient {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let reply = self
            .call(
                "POST",
                "/agents",
                Some(json!({"email": email, "display_name": name, "password": "correct horse", "role": role})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        AgentClient::login(app, &email, "correct horse").await
    }

    /// Logs out: `DELETE /api/auth/0.1/token/<token>`.
    pub async fn logout(&self) -> Reply {
        let url = format!("{}/api/auth/0.1/token/{}", self.base, self.token);
        Reply::from(self.http.delete(url).send().await.unwrap()).await
    }

    /// A call to `/api/chatd/1.0<path>` with this agent's token.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_as(&self.token, method, path, body).await
    }

    /// The same call with any token.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let method: reqwest::Method = method.parse().unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/api/chatd/1.0{}", self.base, path))
            .header("X-Auth-Token", token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// Creates an agent room with these agents; returns the room JSON.
    pub async fn create_room(&self, others: &[&AgentClient]) -> Value {
        let users: Vec<Value> = others.iter().map(|a| json!({"uuid": a.uuid})).collect();
        let reply = self
            .call("POST", "/users/me/rooms", Some(json!({"users": users})))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// Posts a message; returns it.
    pub async fn post(&self, room: &str, content: &str) -> Value {
        let reply = self
            .call(
                "POST",
                &format!("/users/me/rooms/{room}/messages"),
                Some(json!({"content": content})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body
    }

    /// A room's messages, oldest first.
    pub async fn messages(&self, room: &str) -> Vec<Value> {
        let reply = self
            .call(
                "GET",
                &format!("/users/me/rooms/{room}/messages?direction=asc"),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    /// The caller's rooms.
    pub async fn rooms(&self) -> Vec<Value> {
        let reply = self.call("GET", "/users/me/rooms", None).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["items"].as_array().unwrap().clone()
    }

    /// Answers a queued visitor room; returns the reply.
    pub async fn answer(&self, room: &str) -> Reply {
        self.call("PUT", &format!("/queues/{room}/answer"), None)
            .await
    }

    /// Opens the event socket, subscribed to every event and started.
    pub async fn events(&self) -> EventSocket {
        EventSocket::connect(&self.base, &self.token).await
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A `/api/websocketd/` client.
pub struct EventSocket {
    pub ws: Ws,
}

impl EventSocket {
    /// Connects without the protocol's handshake.
    pub async fn open(base: &str, token: &str) -> Ws {
        let url = format!(
            "{}/api/websocketd/?token={token}&version=2",
            base.replacen("http", "ws", 1)
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        ws
    }

    /// Connects, reads `init`, subscribes to `*` and starts.
    pub async fn connect(base: &str, token: &str) -> EventSocket {
        let mut socket = EventSocket {
            ws: EventSocket::open(base, token).await,
        };
        let init = socket.next().await.expect("init");
        assert_eq!(
            init,
            json!({"op": "init", "code": 0, "data": {"version": 2}})
        );
        socket
            .send(json!({"op": "subscribe", "data": {"event_name": "*"}}))
            .await;
        assert_eq!(socket.next().await.unwrap()["op"], "subscribe");
        socket.send(json!({"op": "start"})).await;
        assert_eq!(socket.next().await.unwrap()["op"], "start");
        socket
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(WsMessage::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message (None when the socket closed or nothing came in time).
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(text)))) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap())
                }
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }

    /// The next event named `name` (others are skipped); its `data.data`.
    pub async fn event(&mut self, name: &str) -> Value {
        loop {
            let msg = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {name} event in time"));
            if msg["op"] == "event" && msg["data"]["name"] == name {
                return msg["data"]["data"].clone();
            }
        }
    }

    /// The next event named `name` whose data has `field` equal to `value`.
    pub async fn event_with(&mut self, name: &str, field: &str, value: &str) -> Value {
        loop {
            let data = self.event(name).await;
            if data[field] == value {
                return data;
            }
        }
    }

    /// The envelopes (`data`: name and data) of the events received before
    /// the marker: the next event named `name` whose data has `field` equal
    /// to `value`. Events published before the marker on this tenant's
    /// topic arrive before it, so a test asserts that something did not
    /// arrive by sending a marker after it and reading up to the marker.
    pub async fn events_before(&mut self, name: &str, field: &str, value: &str) -> Vec<Value> {
        let mut before = Vec::new();
        loop {
            let msg = self
                .next()
                .await
                .unwrap_or_else(|| panic!("no {name} with {field} = {value} in time"));
            if msg["op"] != "event" {
                continue;
            }
            if msg["data"]["name"] == name && msg["data"]["data"][field] == value {
                return before;
            }
            before.push(msg["data"].clone());
        }
    }

    /// Waits for the close frame; returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        self.close_code_within(WAIT).await
    }

    /// Waits up to `wait` in all for the close frame, reading past anything
    /// else; returns its code (None on timeout or a close without a frame).
    pub async fn close_code_within(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }
}

impl EventSocket {
    /// Waits for the close frame and returns its code; panics if an event
    /// named `name` arrives first (the socket must end before it hears more).
    pub async fn closed_before(&mut self, name: &str) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(WsMessage::Text(text)))) => {
                    let msg: Value = serde_json::from_str(text.as_str()).unwrap();
                    assert_ne!(msg["data"]["name"], name, "heard after revocation: {msg}");
                }
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }
}
