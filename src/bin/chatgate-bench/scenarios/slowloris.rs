//! `slowloris`: slow clients from one IP cannot hold the server.
//!
//! `--connections` slow connections come from one address (127.0.0.1), a
//! third of each kind: a request head trickled a header line at a time, a
//! request body trickled a byte at a time, and a WebSocket on
//! `/ws.chatplugin` that sends only heart-beats and never CONNECTs. Each
//! sends something every `--trickle-ms` until the server closes it, and
//! records how long after its deadline began that was (the connection for
//! a head, the end of the head for a body, the upgrade for a socket). Once
//! all are open, one more connection from that address must be closed at
//! once (the per-IP cap). Meanwhile a visitor on another address
//! (127.0.0.2) sends messages over HTTP at `--visitor-rate`, open loop,
//! and the server's RSS is sampled.
//!
//! `--head-bytes` makes each trickled head send that many bytes of header
//! at once first: the most a slow client can make the server buffer is
//! then the head cap (`CHATGATE_MAX_HEAD_BYTES`).
//!
//! The run passes when every slow connection was closed within its
//! deadline plus `--slack` (and none before it), the extra connection was refused, the RSS grew
//! by less than `--rss-budget-mib`, and the visitor's p99 stayed under
//! `--p99-budget-ms` with no failed send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::SlowlorisArgs;
use crate::client::{self, Endpoint, Sources};
use crate::report::{self, Percentiles};
use crate::spawn::{self, Deployment};

/// Slow connections being opened at once.
const OPEN_CONCURRENCY: usize = 100;
/// How long past its deadline a connection is followed before giving up on it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Head,
    Body,
    Socket,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Head, Kind::Body, Kind::Socket];

    fn label(self) -> &'static str {
        match self {
            Kind::Head => "trickled heads",
            Kind::Body => "trickled bodies",
            Kind::Socket => "sockets without CONNECT",
        }
    }
}

/// What became of one slow connection.
struct Outcome {
    kind: Kind,
    /// From the start of its deadline to the close; `None`: never opened,
    /// or still open when given up on.
    closed_after: Option<Duration>,
    /// The start of what the server sent before closing (a 408, an ERROR).
    answer: String,
    error: Option<String>,
}

pub async fn run(args: &SlowlorisArgs) -> Result<bool> {
    let deadline = args.deadline.to_string();
    let cap = args.per_ip_cap.unwrap_or(args.connections).to_string();
    let extra = [
        ("CHATGATE_HEADER_READ_TIMEOUT", deadline.as_str()),
        ("CHATGATE_BODY_READ_TIMEOUT", deadline.as_str()),
        ("CHATGATE_STOMP_CONNECT_TIMEOUT", deadline.as_str()),
        ("CHATGATE_MAX_CONNECTIONS_PER_IP", cap.as_str()),
    ];
    let deployment = spawn::chatgate_with(&args.target, true, &extra).await?;
    let outcome = attack(args, &deployment).await;
    deployment.shutdown().await;
    outcome
}

async fn attack(args: &SlowlorisArgs, deployment: &Deployment) -> Result<bool> {
    let endpoint = Endpoint::resolve(&deployment.spec.front).await?;
    let channel = deployment
        .spec
        .channel
        .context("the target has no channel (pass --channel-id)")?;
    // The attacker on 127.0.0.1, the visitor on 127.0.0.2 (loopback server).
    let visitor_ip = Sources::new(1, 0, endpoint.addr).pick();
    let attacker_ip = match endpoint.addr.ip() {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => visitor_ip,
    };
    let http = reqwest::Client::builder()
        .local_address(visitor_ip)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let visitor = client::authenticate(&http, &endpoint, channel).await?;
    let token = visitor.token.clone().unwrap_or_default();
    let send_url = format!("{}/chatplugin.send", endpoint.http);
    // Warm the visitor's connection and the server's paths before measuring.
    for i in 0..20 {
        send(&http, &send_url, &token, &format!("warm-up {i}")).await?;
    }
    let rss_pid = deployment.rss_pid;
    let rss_before = rss_pid.map(spawn::rss_bytes).transpose()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let latencies = Arc::new(Mutex::new(report::histogram()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let visitor_task = tokio::spawn(visit(
        http.clone(),
        send_url,
        token,
        args.visitor_rate,
        latencies.clone(),
        failures.clone(),
        stop_rx.clone(),
    ));
    let peak_rss = Arc::new(Mutex::new(rss_before.unwrap_or(0)));
    let sampler = rss_pid.map(|pid| tokio::spawn(sample_rss(pid, peak_rss.clone(), stop_rx)));

    let started = Instant::now();
    let deadline = Duration::from_secs(args.deadline);
    let trickle = Duration::from_millis(args.trickle_ms.max(1));
    let fat_head: Arc<[u8]> = if args.head_bytes > 0 {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: bench\r\nx-fat: {}\r\n",
            "a".repeat(args.head_bytes)
        )
        .into_bytes()
        .into()
    } else {
        Arc::from(&b"GET /healthz HTTP/1.1\r\nhost: bench\r\n"[..])
    };
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
    let opening = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let mut slow = JoinSet::new();
    for i in 0..args.connections as usize {
        let kind = Kind::ALL[i % 3];
        let (endpoint, opening, opened) = (endpoint.clone(), opening.clone(), opened_tx.clone());
        let head = fat_head.clone();
        slow.spawn(async move {
            let permit = opening.acquire_owned().await;
            let outcome = hold(
                kind,
                &endpoint,
                attacker_ip,
                &head,
                deadline,
                trickle,
                move || {
                    drop(permit);
                    let _ = opened.send(());
                },
            )
            .await;
            outcome.unwrap_or_else(|err| Outcome {
                kind,
                closed_after: None,
                answer: String::new(),
                error: Some(format!("{err:#}")),
            })
        });
    }
    drop(opened_tx);
    // Once every slow connection is open (or failed), one more from the
    // same address is over the cap.
    let mut opened = 0;
    while opened_rx.recv().await.is_some() {
        opened += 1;
    }
    let all_open_after = started.elapsed();
    let refusal = one_more(endpoint.addr, attacker_ip).await;

    let mut outcomes = Vec::new();
    while let Some(joined) = slow.join_next().await {
        outcomes.push(joined.context("a slow connection's task failed")?);
    }
    let attack_took = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = visitor_task.await;
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }

    // The report.
    let slack = Duration::from_secs_f64(args.slack.max(0.0));
    println!(
        "slowloris: {} slow connections from {attacker_ip} ({opened} opened in {:.1} s), \
         deadlines {} s (+{:.1} s slack), a byte or heart-beat every {} ms; \
         a visitor on {visitor_ip} sends {} msg/s",
        args.connections,
        all_open_after.as_secs_f64(),
        args.deadline,
        slack.as_secs_f64(),
        args.trickle_ms,
        args.visitor_rate,
    );
    let mut passed = true;
    for kind in Kind::ALL {
        let of_kind: Vec<&Outcome> = outcomes.iter().filter(|o| o.kind == kind).collect();
        let closed: Vec<Duration> = of_kind.iter().filter_map(|o| o.closed_after).collect();
        let on_time = closed.iter().filter(|d| **d <= deadline + slack).count();
        let early = closed
            .iter()
            .filter(|d| **d + Duration::from_millis(200) < deadline)
            .count();
        let min = closed.iter().min().copied().unwrap_or_default();
        let max = closed.iter().max().copied().unwrap_or_default();
        let answered = match kind {
            Kind::Head => String::new(),
            Kind::Body => format!(
                ", {} answered 408",
                of_kind
                    .iter()
                    .filter(|o| o.answer.contains(" 408 "))
                    .count()
            ),
            Kind::Socket => format!(
                ", {} got an ERROR frame",
                of_kind
                    .iter()
                    .filter(|o| o.answer.starts_with("ERROR"))
                    .count()
            ),
        };
        println!(
            "  {:<24} {:>5}: {on_time} closed on time (after {:.2} to {:.2} s){answered}",
            kind.label(),
            of_kind.len(),
            min.as_secs_f64(),
            max.as_secs_f64(),
        );
        for o in of_kind.iter().filter(|o| o.error.is_some()).take(3) {
            println!("      error: {}", o.error.as_deref().unwrap_or_default());
        }
        if on_time != of_kind.len() || early > 0 {
            passed = false;
            println!(
                "      FAIL: {early} closed early, {} late or never",
                of_kind.len() - on_time
            );
        }
    }
    match &refusal {
        Ok(took) => println!(
            "  one more from {attacker_ip}: closed without an answer after {:.1} ms",
            took.as_secs_f64() * 1000.0
        ),
        Err(err) => {
            passed = false;
            println!("  one more from {attacker_ip}: FAIL: {err:#}");
        }
    }
    if let Some(before) = rss_before {
        let peak = *peak_rss.lock().expect("rss lock");
        let grew = peak.saturating_sub(before) as f64 / (1024.0 * 1024.0);
        let ok = grew < args.rss_budget_mib;
        passed &= ok;
        println!(
            "  server RSS: {:.1} MiB before, {:.1} MiB at most during the attack: +{grew:.1} MiB{}",
            before as f64 / (1024.0 * 1024.0),
            peak as f64 / (1024.0 * 1024.0),
            if ok { "" } else { "  FAIL" },
        );
    }
    let p = Percentiles::of(&latencies.lock().expect("histogram lock"));
    let failed = failures.lock().expect("failures lock").clone();
    let ok = p.p99 < args.p99_budget_ms && failed.is_empty() && p.count > 0;
    passed &= ok;
    println!(
        "  visitor: {} sends in {:.1} s, {} failed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        p.count,
        attack_took.as_secs_f64(),
        failed.len(),
        p.p50,
        p.p99,
        p.max,
        if ok { "" } else { "  FAIL" },
    );
    for failure in failed.iter().take(3) {
        println!("      {failure}");
    }
    println!("{}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

async fn send(http: &reqwest::Client, url: &str, token: &str, text: &str) -> Result<()> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(client::send_body(text))
        .send()
        .await
        .context("POST /chatplugin.send")?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "POST /chatplugin.send: {status}");
    Ok(())
}

/// The normal visitor: one send every `1 / rate` s, each timed from when it
/// was due, until stopped.
async fn visit(
    http: reqwest::Client,
    url: String,
    token: String,
    rate: f64,
    latencies: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut tick = tokio::time::interval(every);
    let mut sends = JoinSet::new();
    for n in 0u64.. {
        let due = tokio::select! {
            due = tick.tick() => due,
            _ = stop.changed() => break,
        };
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        let (latencies, failures) = (latencies.clone(), failures.clone());
        sends.spawn(async move {
            match send(&http, &url, &token, &format!("during the attack {n}")).await {
                Ok(()) => report::record(&latencies, due.elapsed().as_micros() as i64),
                Err(err) => failures
                    .lock()
                    .expect("failures lock")
                    .push(format!("{err:#}")),
            }
        });
        while sends.try_join_next().is_some() {}
    }
    while sends.join_next().await.is_some() {}
}

async fn sample_rss(pid: u32, peak: Arc<Mutex<u64>>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if let Ok(rss) = spawn::rss_bytes(pid) {
            let mut peak = peak.lock().expect("rss lock");
            *peak = (*peak).max(rss);
        }
    }
}

async fn connect_from(server: SocketAddr, from: IpAddr) -> Result<TcpStream> {
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !from.is_unspecified() {
        socket.bind(SocketAddr::new(from, 0))?;
    }
    Ok(socket.connect(server).await?)
}

/// Opens one slow connection of `kind`, calls `opened` once it is open,
/// and trickles until the server closes it.
async fn hold(
    kind: Kind,
    endpoint: &Endpoint,
    from: IpAddr,
    head: &[u8],
    deadline: Duration,
    trickle: Duration,
    opened: impl FnOnce(),
) -> Result<Outcome> {
    let give_up = deadline + GIVE_UP_AFTER;
    let connecting = connect_from(endpoint.addr, from).await;
    let stream = match connecting {
        Ok(stream) => stream,
        Err(err) => {
            opened();
            return Err(err);
        }
    };
    match kind {
        Kind::Head | Kind::Body => {
            let mut stream = stream;
            let (first, each): (&[u8], &[u8]) = match kind {
                Kind::Head => (head, b"x-slow: 1\r\n"),
                _ => (
                    b"POST /chatplugin.send HTTP/1.1\r\nhost: bench\r\n\
                      content-type: application/json\r\ncontent-length: 60000\r\n\r\n{",
                    b" ",
                ),
            };
            // A head's deadline runs from the connection, a body's from its head.
            let began = Instant::now();
            let written = stream.write_all(first).await;
            opened();
            written?;
            let (answer, closed_after) =
                trickle_until_closed(&mut stream, each, trickle, began, give_up).await;
            Ok(Outcome {
                kind,
                closed_after,
                answer,
                error: None,
            })
        }
        Kind::Socket => {
            let handshake = tokio_tungstenite::client_async(endpoint.ws_url.as_str(), stream).await;
            let began = Instant::now();
            opened();
            let (ws, _) = handshake.context("WebSocket handshake")?;
            let (mut sink, mut stream) = ws.split();
            let mut answer = String::new();
            let mut beat = tokio::time::interval_at(began + trickle, trickle);
            let closed_after = loop {
                if began.elapsed() > give_up {
                    break None;
                }
                tokio::select! {
                    _ = beat.tick() => {
                        // The server may have closed already; the read says so.
                        let _ = sink.send(Message::text("\n")).await;
                    }
                    incoming = stream.next() => match incoming {
                        Some(Ok(Message::Text(text))) if answer.is_empty() => {
                            answer = text.as_str().chars().take(64).collect();
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            break Some(began.elapsed());
                        }
                        Some(Ok(_)) => {}
                    },
                }
            };
            Ok(Outcome {
                kind,
                closed_after,
                answer,
                error: None,
            })
        }
    }
}

/// Writes `each` every `trickle` until the server closes the connection;
/// what it sent, and when it closed (from `began`), or `None` past `give_up`.
async fn trickle_until_closed(
    stream: &mut TcpStream,
    each: &[u8],
    trickle: Duration,
    began: Instant,
    give_up: Duration,
) -> (String, Option<Duration>) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let mut next_write = began + trickle;
    loop {
        if began.elapsed() > give_up {
            return (String::from_utf8_lossy(&answer).into_owned(), None);
        }
        match tokio::time::timeout_at(next_write, stream.read(&mut buf)).await {
            Err(_) => {
                // The server may have closed already; the read says so.
                let _ = stream.write_all(each).await;
                next_write += trickle;
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                let closed_after = began.elapsed();
                let answer = String::from_utf8_lossy(&answer[..answer.len().min(64)]);
                return (answer.into_owned(), Some(closed_after));
            }
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// One more connection from `from` asking for `/healthz`: it must be closed
/// without an answer; how long that took.
async fn one_more(server: SocketAddr, from: IpAddr) -> Result<Duration> {
    let began = Instant::now();
    let mut stream = connect_from(server, from).await?;
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .context("still open after 5 s: the per-IP cap did not apply")?;
    if read.is_ok() && !answer.is_empty() {
        anyhow::bail!(
            "served: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        );
    }
    Ok(began.elapsed())
}
