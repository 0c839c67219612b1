//! Logs an operator can keep: the real `chatgate` binary, its stderr read
//! whole. No token (agent, console session, visitor, resume) and no password
//! ever appears in it, at any level; client errors of unauthenticated
//! callers produce no WARN line, and are counted in `/metrics` instead.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::json;

use crate::agent_helpers::EventSocket;
use crate::helpers::{test_config, Reply, Stomp, TestDatabase};

/// A `chatgate` process with its stderr (the log) captured.
struct LoggedServer {
    child: Child,
    base: String,
    admin_email: String,
    admin_password: String,
    channel_id: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    /// Held so the database outlives the process.
    _db: TestDatabase,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl LoggedServer {
    /// Starts the binary on a fresh database of the backend under test,
    /// with `RUST_LOG` set to `rust_log` (unset: the binary's default).
    async fn start(rust_log: Option<&str>) -> LoggedServer {
        let (config, db) = test_config().await;
        let mut command = Process::new(env!("CARGO_BIN_EXE_chatgate"));
        command
            .env_clear()
            .env("NO_COLOR", "1")
            .env("CHATGATE_LISTEN", "127.0.0.1:0")
            .env("CHATGATE_DATABASE_URL", &config.database_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(redis) = &config.redis_url {
            command.env("CHATGATE_REDIS_URL", redis);
            command.env("CHATGATE_REDIS_PREFIX", &config.redis_prefix);
        }
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let mut child = command.spawn().expect("the chatgate binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&chunk[..n]).into_owned();
                sink.lock().unwrap().push_str(&text);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut email, mut password, mut channel) = (None, None, None);
        let base = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "server exited: {}",
                log.lock().unwrap()
            );
            let line = line.trim();
            let value = |prefix: &str| line.strip_prefix(prefix).map(|v| v.trim().to_string());
            email = email.or(value("admin login:"));
            password = password.or(value("admin password:"));
            channel = channel.or(value("demo channel:"));
            if let Some(addr) = line.strip_prefix("chatgate listening on ") {
                break addr.to_string();
            }
        };
        LoggedServer {
            child,
            base,
            admin_email: email.expect("first start prints the admin login"),
            admin_password: password.expect("first start prints the admin password"),
            channel_id: channel.expect("first start prints the demo channel"),
            log,
            reader: Some(reader),
            _db: db,
            _stdout: stdout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server with SIGTERM and returns everything it logged.
    fn stop(mut self) -> String {
        // SAFETY: kill only sends a signal to our own child.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server stopped cleanly: {status}");
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        log
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    Reply::from(response).await
}

/// The value of cookie `name` among a reply's `Set-Cookie` headers.
fn set_cookie(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// Logs in through the console's form; returns the session cookie (an agent token).
async fn console_login(http: &reqwest::Client, server: &LoggedServer) -> String {
    let form = http.get(server.url("/console/login")).send().await.unwrap();
    let login_cookie = set_cookie(form.headers(), "cg_login").expect("the form's cookie");
    let body = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("the form's token") + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    let posted = http
        .post(server.url("/console/login"))
        .header("cookie", format!("cg_login={login_cookie}"))
        .form(&[
            ("csrf", csrf),
            ("email", server.admin_email.as_str()),
            ("password", server.admin_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    set_cookie(posted.headers(), "cg_session").expect("a session cookie")
}

#[tokio::test]
async fn no_token_or_password_reaches_the_log_at_any_level() {
    let server = LoggedServer::start(Some("trace")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut secrets = vec![server.admin_password.clone()];

    // An agent logs in, uses its token as a header, on the event socket's
    // query string and in a token renewal, then logs out (the token in the path).
    let login = reply(
        http.post(server.url("/api/auth/0.1/token"))
            .basic_auth(&server.admin_email, Some(&server.admin_password))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.body["data"]["token"].as_str().unwrap().to_string();
    secrets.push(token.clone());
    let rooms = http
        .get(server.url("/api/chatd/1.0/users/me/rooms"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(rooms.status(), 200);
    let mut events = EventSocket::connect(&server.base, &token).await;
    events
        .send(json!({"op": "token", "data": {"token": token}}))
        .await;
    // The socket's own events (its agent's presence, published as it
    // joined) may come first: the renewal's answer is the first `token`.
    let mut answer = events.next().await.unwrap();
    while answer["op"] == "event" {
        answer = events.next().await.unwrap();
    }
    assert_eq!(answer["op"], "token", "{answer}");
    drop(events);
    let logout = http
        .delete(server.url(&format!("/api/auth/0.1/token/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    // The console: its session cookie is an agent token.
    let session = console_login(&http, &server).await;
    secrets.push(session.clone());
    let inbox = http
        .get(server.url("/console/inbox"))
        .header("cookie", format!("cg_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), 200);

    // A visitor: its token over HTTP and in a STOMP CONNECT, its resume token.
    let visitor = reply(
        http.post(server.url("/chatplugin.authenticate"))
            .json(&json!({"channel_id": server.channel_id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(visitor.status, 200, "{}", visitor.body);
    let visitor_token = visitor.body["token"].as_str().unwrap().to_string();
    let resume_token = visitor.body["resume_token"].as_str().unwrap().to_string();
    secrets.push(visitor_token.clone());
    secrets.push(resume_token.clone());
    let sent = reply(
        http.post(server.url("/chatplugin.send"))
            .bearer_auth(&visitor_token)
            .json(&json!({"message": {"text": "hello"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let resumed = reply(
        http.post(server.url("/chatplugin.authenticate"))
            .json(&json!({"resume_token": resume_token}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let ws_url = format!("{}/ws.chatplugin", server.base.replacen("http", "ws", 1));
    let mut stomp = Stomp::open(&ws_url, None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "0,0")
                .header("Authorization", format!("Bearer {visitor_token}")),
        )
        .await;
    assert_eq!(stomp.recv().await.unwrap().command, Command::Connected);
    drop(stomp);

    let log = server.stop();
    // The log is not empty: the requests above were logged, the logout's
    // path with its token redacted.
    assert!(
        log.contains("/api/auth/0.1/token/<redacted>"),
        "the logout is logged, redacted:\n{log}"
    );
    for secret in &secrets {
        let leaks: Vec<String> = log
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .map(|l| l.replace(secret.as_str(), "<THE SECRET>"))
            .collect();
        assert!(
            leaks.is_empty(),
            "a secret is in the log:\n{}",
            leaks.join("\n")
        );
        // A JWT's signature alone is a secret too (and survives a line break).
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(!log.contains(signature), "a token signature is in the log");
        }
    }
}

/// The value of a sample of the Prometheus text, 0 when absent.
fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_flood_of_client_errors_writes_no_warn_line_and_is_counted_in_metrics() {
    // The binary's default log filter: what an operator keeps.
    let server = LoggedServer::start(None).await;
    let http = reqwest::Client::new();
    for i in 0..30 {
        let failed = http
            .post(server.url("/api/auth/0.1/token"))
            .basic_auth(format!("guess{i}@example.com"), Some("password1"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 401);
    }
    for _ in 0..20 {
        let forged = http
            .get(server.url("/api/chatd/1.0/users/me/rooms"))
            .header("X-Auth-Token", "not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);
        let malformed = http
            .post(server.url("/chatplugin.authenticate"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(malformed.status(), 400);
        let missing = http.get(server.url("/no/such/page")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        let logout = http
            .delete(server.url("/api/auth/0.1/token/not-a-token"))
            .send()
            .await
            .unwrap();
        assert!(logout.status().is_client_error());
    }

    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |labels: &str| {
        sample(
            &metrics,
            &format!("chatgate_http_client_errors_total{{{labels}}}"),
        )
    };
    assert_eq!(
        counted("error_id=\"unauthorized\",status=\"401\""),
        30.0,
        "{metrics}"
    );
    assert!(
        counted("error_id=\"invalid-token\",status=\"401\"") >= 20.0,
        "{metrics}"
    );
    assert_eq!(
        counted("error_id=\"invalid-data\",status=\"400\""),
        20.0,
        "{metrics}"
    );
    assert_eq!(
        counted("error_id=\"not-found\",status=\"404\""),
        20.0,
        "{metrics}"
    );

    let log = server.stop();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .filter(|l| l.contains("chatgate") || l.contains("warp") || l.contains("request"))
        .collect();
    assert!(
        warnings.is_empty(),
        "WARN lines for client errors:\n{}",
        warnings.join("\n")
    );
}
