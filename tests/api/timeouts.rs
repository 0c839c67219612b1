//! HTTP connection timeouts: a client that trickles its request headers, or
//! keeps an idle connection, does not hold it forever; requests and
//! WebSocket sessions are unaffected. Raw TCP, so nothing buffers for us.

use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use chatgate::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{raw_tcp, read_until_closed, Stomp, TestApp};

const HEADER_READ: u64 = 1;
const KEEPALIVE_IDLE: u64 = 4;
/// Slack for a loaded machine: a timeout must fire within this after its time.
const SLACK: Duration = Duration::from_millis(1500);

/// The server's timeouts, shortened for these tests.
fn short_timeouts(c: &mut Config) {
    c.header_read_timeout = HEADER_READ;
    c.keepalive_idle_timeout = KEEPALIVE_IDLE;
}

/// Sends `line` every 200 ms until the server closes the connection;
/// returns how long after `since` it did, and how many lines it took
/// meanwhile. Panics if the connection is still open after `give_up`, or
/// if the server answered anything.
async fn trickle_until_closed(
    stream: &mut TcpStream,
    line: &[u8],
    since: Instant,
    give_up: Duration,
) -> (Duration, usize) {
    let closed = read_until_closed(stream, line, since, give_up).await;
    assert!(
        closed.data.is_empty(),
        "unexpected answer: {}",
        String::from_utf8_lossy(&closed.data)
    );
    (closed.after, closed.trickled)
}

/// Reads one response with a Content-Length body; returns its status line.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a full response");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("content-length");
        if data.len() >= end + 4 + length {
            return text.lines().next().unwrap().to_string();
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: chatgate\r\n\r\n";

#[tokio::test]
async fn a_client_trickling_its_request_headers_is_disconnected_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(short_timeouts).await;
    let connected = Instant::now();
    let mut stream = raw_tcp(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: chatgate\r\n")
        .await
        .unwrap();
    let (closed_after, lines) = trickle_until_closed(
        &mut stream,
        b"x-slow: 1\r\n",
        connected,
        Duration::from_secs(HEADER_READ + 3),
    )
    .await;
    assert!(
        closed_after >= Duration::from_millis(HEADER_READ * 1000 - 100),
        "open until the timeout, receiving header lines: closed after {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(HEADER_READ) + SLACK,
        "{closed_after:?}"
    );
    assert!(lines >= 3, "the server took {lines} lines before closing");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(short_timeouts).await;
    let connected = Instant::now();
    let mut stream = raw_tcp(&app).await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(HEADER_READ + 3), stream.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let closed_after = connected.elapsed();
    assert!(
        closed_after >= Duration::from_millis(HEADER_READ * 1000 - 100),
        "{closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(HEADER_READ) + SLACK,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(short_timeouts).await;
    let mut stream = raw_tcp(&app).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await, "HTTP/1.1 200 OK");
    let answered = Instant::now();
    // Past the header-read timeout, an idle connection is still open...
    let mut buf = [0u8; 16];
    let early = tokio::time::timeout(
        Duration::from_millis(HEADER_READ * 1000 + 500),
        stream.read(&mut buf),
    )
    .await;
    assert!(early.is_err(), "closed before the idle timeout: {early:?}");
    // ...and the server closes it once it was idle for the idle timeout.
    let read = tokio::time::timeout(
        Duration::from_secs(KEEPALIVE_IDLE + 3),
        stream.read(&mut buf),
    )
    .await
    .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let closed_after = answered.elapsed();
    assert!(
        closed_after >= Duration::from_millis(KEEPALIVE_IDLE * 1000 - 100),
        "{closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(KEEPALIVE_IDLE) + SLACK,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn a_later_request_must_send_its_headers_within_the_timeout_from_its_first_byte() {
    let app = TestApp::spawn_with(short_timeouts).await;
    let mut stream = raw_tcp(&app).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(read_response(&mut stream).await, "HTTP/1.1 200 OK");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next request begins, and trickles: the header-read timeout counts
    // from its first byte, not the (longer) idle timeout from the response.
    let begun = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let (closed_after, _) = trickle_until_closed(
        &mut stream,
        b"x-slow: 1\r\n",
        begun,
        Duration::from_secs(KEEPALIVE_IDLE + 3),
    )
    .await;
    assert!(
        closed_after >= Duration::from_millis(HEADER_READ * 1000 - 100),
        "{closed_after:?}"
    );
    // The idle timeout would have closed it 3.5 s after `begun`.
    assert!(
        closed_after < Duration::from_secs(HEADER_READ) + SLACK,
        "{closed_after:?}"
    );
}

#[tokio::test]
async fn requests_and_quiet_websocket_sessions_still_work_with_short_timeouts() {
    let app = TestApp::spawn_with(short_timeouts).await;
    // Several requests on one kept-alive connection, with pauses shorter
    // than the idle timeout but longer than the header-read timeout.
    let mut stream = raw_tcp(&app).await;
    for _ in 0..3 {
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_response(&mut stream).await, "HTTP/1.1 200 OK");
        tokio::time::sleep(Duration::from_millis(HEADER_READ * 1000 + 300)).await;
    }
    // And through an ordinary client.
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "hello").await.status, 200);

    // An upgraded connection is no longer subject to either timeout.
    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    tokio::time::sleep(Duration::from_secs(KEEPALIVE_IDLE + 1)).await;
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
    assert_eq!(receipt.get("receipt-id"), Some("still-here"));
}
