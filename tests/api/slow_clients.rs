//! Slow and heavy clients cannot hold the server: a body trickled past its
//! deadline, a request head over the cap, a visitor socket that never
//! CONNECTs, too many sockets for one conversation, too many connections
//! from one IP. Real sockets, raw where a client library would buffer.

use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{raw_tcp, read_until_closed, Closed, Stomp, TestApp, WAIT};

/// Slack for a loaded machine: a deadline must fire within this after its time.
const SLACK: Duration = Duration::from_millis(1500);

/// The status line and the body (after the head) of a raw response.
fn split_response(data: &[u8]) -> (String, Vec<u8>) {
    let text = String::from_utf8_lossy(data);
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| data[i + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

/// Sends a health check on a fresh connection; the status line, or `None`
/// when the server closed the connection without answering.
async fn health_check(app: &TestApp) -> Option<String> {
    let mut stream = raw_tcp(app).await;
    // The server may already have closed: then the write or the read fails.
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: chatgate\r\nconnection: close\r\n\r\n")
        .await;
    let mut data = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut data))
        .await
        .expect("an answer or a close in time");
    if read.is_err() || data.is_empty() {
        return None;
    }
    Some(split_response(&data).0)
}

/// Waits (up to `WAIT`) until a fresh connection is served again.
async fn served_again(app: &TestApp) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if health_check(app).await.as_deref() == Some("HTTP/1.1 200 OK") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A connection the server served a request on and keeps open (retrying
/// while a slot freed a moment ago is still held).
async fn kept_alive(app: &TestApp) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = raw_tcp(app).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: chatgate\r\n\r\n")
            .await;
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("an answer or a close in time");
        if let Ok(n) = read {
            if buf[..n].starts_with(b"HTTP/1.1 200 OK") {
                return stream;
            }
        }
        assert!(Instant::now() < deadline, "never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408_at_the_body_deadline_and_nothing_is_stored() {
    const BODY_READ: u64 = 1;
    let app = TestApp::spawn_with(|c| c.body_read_timeout = BODY_READ).await;
    let visitor = app.visitor().await;
    let mut stream = raw_tcp(&app).await;
    let head = format!(
        "POST /chatplugin.send HTTP/1.1\r\nhost: chatgate\r\ncontent-type: application/json\r\n\
         authorization: Bearer {}\r\ncontent-length: 1000\r\n\r\n{{\"message\":{{\"text\":\"",
        visitor.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let Closed {
        data,
        after: closed_after,
        ..
    } = read_until_closed(
        &mut stream,
        b"a",
        Instant::now(),
        Duration::from_secs(BODY_READ) + 2 * SLACK,
    )
    .await;
    let (status, body) = split_response(&data);
    assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{data:?}");
    let body: Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(body["error_id"], "request-timeout", "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        body["details"].is_object() && body["timestamp"].is_number(),
        "{body}"
    );
    assert!(
        closed_after >= Duration::from_millis(BODY_READ * 1000 - 100),
        "cut off before the deadline: {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(BODY_READ) + SLACK,
        "{closed_after:?}"
    );
    assert!(app.contents(&visitor).await.is_empty(), "nothing stored");
    // A body that arrives in time is served as before.
    assert_eq!(app.send(&visitor.token, "on time").await.status, 200);
}

#[tokio::test]
async fn a_request_head_over_the_cap_is_refused_with_431_and_one_under_it_is_served() {
    const CAP: usize = 16 * 1024;
    let app = TestApp::spawn_with(|c| c.max_head_bytes = CAP).await;
    let head = |filler: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: chatgate\r\nconnection: close\r\nx-filler: {}\r\n\r\n",
            "a".repeat(filler)
        )
    };

    let mut stream = raw_tcp(&app).await;
    // Written in pieces, as a client trickling a huge head would.
    for chunk in head(CAP + 4096).as_bytes().chunks(4096) {
        if stream.write_all(chunk).await.is_err() {
            break; // closed already
        }
    }
    let data = read_until_closed(&mut stream, b"", Instant::now(), WAIT)
        .await
        .data;
    assert_eq!(
        split_response(&data).0,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    let mut stream = raw_tcp(&app).await;
    stream.write_all(head(CAP - 4096).as_bytes()).await.unwrap();
    let data = read_until_closed(&mut stream, b"", Instant::now(), WAIT)
        .await
        .data;
    assert_eq!(split_response(&data).0, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_socket_that_only_sends_heart_beats_never_gets_connected_and_is_closed_at_the_deadline() {
    const CONNECT_BY: u64 = 1;
    let app = TestApp::spawn_with(|c| c.stomp_connect_timeout = CONNECT_BY).await;
    let opened = Instant::now();
    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    let mut beats = 0;
    let frame = loop {
        assert!(
            opened.elapsed() < Duration::from_secs(CONNECT_BY) + 2 * SLACK,
            "still open after {:?} and {beats} heart-beats",
            opened.elapsed()
        );
        if stomp.beat().await {
            beats += 1;
        }
        match stomp.recv_within(Duration::from_millis(200)).await {
            Err(()) => continue,
            Ok(frame) => break frame,
        }
    };
    let closed_after = opened.elapsed();
    let frame = frame.expect("an ERROR frame before the close");
    assert_eq!(frame.command, Command::Error, "{frame:?}");
    assert_eq!(frame.get("message"), Some("connect timeout"));
    assert_eq!(stomp.close_code().await, Some(1008));
    assert!(beats >= 3, "{beats} heart-beats sent before the close");
    assert!(
        closed_after >= Duration::from_millis(CONNECT_BY * 1000 - 100),
        "{closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(CONNECT_BY) + SLACK,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn a_socket_that_connects_in_time_outlives_the_connect_deadline() {
    const CONNECT_BY: u64 = 1;
    let app = TestApp::spawn_with(|c| c.stomp_connect_timeout = CONNECT_BY).await;
    let visitor = app.visitor().await;
    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    tokio::time::sleep(Duration::from_millis(CONNECT_BY * 1000 + 500)).await;
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-0")
                .header("destination", "/queue/message")
                .header("receipt", "still-here"),
        )
        .await;
    let receipt = stomp.recv().await.expect("RECEIPT");
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
}

#[tokio::test]
async fn the_51st_socket_of_a_conversation_gets_too_many_sessions_and_a_freed_slot_is_reused() {
    let app = TestApp::spawn().await;
    assert_eq!(app.config.max_sessions_per_conversation, 50, "the default");
    let visitor = app.visitor().await;
    let mut open = Vec::new();
    for _ in 0..50 {
        open.push(Stomp::connect(&app, &visitor.token).await.0);
    }

    let mut extra = Stomp::open(&app.ws_url(), None).await.unwrap();
    extra
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    let refused = extra.recv().await.expect("ERROR");
    assert_eq!(refused.command, Command::Error, "{refused:?}");
    assert_eq!(refused.get("message"), Some("too-many-sessions"));
    assert_eq!(extra.close_code().await, Some(1008));

    // Another conversation has its own count.
    let other = app.visitor().await;
    Stomp::connect(&app, &other.token).await;

    // One tab closes: its place is free again once the server saw it go.
    let mut leaving = open.pop().expect("a socket");
    leaving.send(StompFrame::new(Command::Disconnect)).await;
    assert_eq!(leaving.close_code().await, Some(1000));
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = Stomp::open(&app.ws_url(), None).await.unwrap();
        again
            .send(
                StompFrame::new(Command::Connect)
                    .header("accept-version", "1.2")
                    .header("Authorization", format!("Bearer {}", visitor.token)),
            )
            .await;
        let frame = again.recv().await.expect("a frame");
        if frame.command == Command::Connected {
            break;
        }
        assert_eq!(frame.get("message"), Some("too-many-sessions"));
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connections_beyond_the_per_ip_cap_are_closed_at_once_and_websockets_count() {
    let app = TestApp::spawn_with(|c| {
        c.max_connections_per_ip = 3;
        // Neither deadline closes a held connection during the test.
        c.header_read_timeout = 60;
        c.stomp_connect_timeout = 60;
    })
    .await;
    // Three held: an idle connection, an upgraded socket, a kept-alive one.
    let idle = raw_tcp(&app).await;
    let socket = Stomp::open(&app.ws_url(), None).await.unwrap();
    let kept = kept_alive(&app).await;

    // The fourth is closed without an answer, and so is the next one.
    assert_eq!(health_check(&app).await, None);
    assert_eq!(health_check(&app).await, None);

    // The idle one goes: a new connection is served again.
    drop(idle);
    assert!(served_again(&app).await, "a freed slot is reused");

    // The upgraded socket still holds its slot until it closes.
    let held = kept_alive(&app).await;
    assert_eq!(health_check(&app).await, None, "the socket still counts");
    drop(socket);
    assert!(
        served_again(&app).await,
        "the socket's slot is freed on close"
    );
    drop((held, kept));
}
