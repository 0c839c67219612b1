//! `email`: the `chat` load while offline visitors' replies are emailed.
//!
//! The bench spawns chatgate with `CHATGATE_SMTP_URL` pointing at an SMTP
//! sink it runs itself ([`Sink`], a minimal receiver that counts messages
//! and notes their recipients) and a short `CHATGATE_EMAIL_OFFLINE_DELAY_MS`.
//! Setup: the channel's `email_fallback` on (or off, the baseline), then
//! `--visitors` visitors, each authenticated with the address
//! `v<n>@bench.invalid`, one message sent over HTTP and no socket opened,
//! each room answered by the admin. Load: the `chat` traffic (the same
//! machinery and figures), and meanwhile the admin's one reply to each
//! offline visitor, spread evenly over the measured window; each reply
//! finds its visitor offline, so with the fallback on it becomes one email.
//! After the load the bench waits (up to `--email-deadline`) until the sink
//! has every expected email. `--smtp-down S` starts the sink only S seconds
//! after the load started (until then it answers every connection 421 and
//! closes it), so the outbox's retries must deliver them later.
//!
//! The run fails when the chat lost or failed anything, a reply failed, an
//! email is missing at the sink (lost = expected − received), or an email
//! arrived with the fallback off.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::traffic::{self, TrafficSpec};
use crate::cli::{EmailArgs, OnOff};
use crate::client::{self, AgentLogin, Credentials, Endpoint, HttpPool, Sources};
use crate::clock;
use crate::report::{self, TrafficRow};
use crate::spawn::{self, Deployment};

/// The domain of the visitors' addresses (`.invalid` is reserved: never real mail).
const DOMAIN: &str = "bench.invalid";

/// The address of visitor `n`.
fn address(n: u32) -> String {
    format!("v{n}@{DOMAIN}")
}

/// The visitor number of an address `v<n>@bench.invalid` (angle brackets and
/// case aside), if it is one.
fn visitor_of(address: &str) -> Option<u32> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(DOMAIN) {
        return None;
    }
    local.strip_prefix('v')?.parse().ok()
}

// --- The SMTP sink ----------------------------------------------------------

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Size of the DATA, after dot-unstuffing, line ends included.
    pub bytes: usize,
}

/// What the sink does after a line from the client.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing to answer (a line of the message's DATA).
    Nothing,
    /// Answer this (one or more lines, without the final CRLF).
    Reply(String),
    /// The message's final dot: answer, and the message is accepted.
    Accepted(String, Mail),
    /// Answer and close (QUIT).
    Close(String),
}

/// The protocol state of one SMTP connection: just enough of RFC 5321 for
/// a client like lettre (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
#[derive(Debug, Default)]
struct Session {
    from: Option<String>,
    to: Vec<String>,
    in_data: bool,
    bytes: usize,
}

impl Session {
    /// One line from the client, without its line end.
    fn line(&mut self, line: &str) -> Step {
        if self.in_data {
            if line == "." {
                self.in_data = false;
                let mail = Mail {
                    from: self.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut self.to),
                    bytes: std::mem::take(&mut self.bytes),
                };
                return Step::Accepted("250 2.0.0 OK queued".into(), mail);
            }
            // Dot-unstuffing: a leading dot was doubled by the client.
            let line = line.strip_prefix('.').unwrap_or(line);
            self.bytes += line.len() + 2;
            return Step::Nothing;
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let reply = |text: &str| Step::Reply(text.to_string());
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                self.reset();
                reply("250-bench.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8")
            }
            "HELO" => {
                self.reset();
                reply("250 bench.invalid")
            }
            "MAIL" => match path_after(rest, "FROM:") {
                Some(from) => {
                    self.reset();
                    self.from = Some(from);
                    reply("250 2.1.0 OK")
                }
                None => reply("501 5.5.4 Syntax: MAIL FROM:<address>"),
            },
            "RCPT" if self.from.is_none() => reply("503 5.5.1 MAIL first"),
            "RCPT" => match path_after(rest, "TO:") {
                Some(to) => {
                    self.to.push(to);
                    reply("250 2.1.5 OK")
                }
                None => reply("501 5.5.4 Syntax: RCPT TO:<address>"),
            },
            "DATA" if self.to.is_empty() => reply("503 5.5.1 RCPT first"),
            "DATA" => {
                self.in_data = true;
                self.bytes = 0;
                reply("354 End data with <CR><LF>.<CR><LF>")
            }
            "RSET" => {
                self.reset();
                reply("250 2.0.0 OK")
            }
            "NOOP" => reply("250 2.0.0 OK"),
            "QUIT" => Step::Close("221 2.0.0 Bye".into()),
            _ => reply("502 5.5.2 Command not implemented"),
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
        self.bytes = 0;
    }
}

/// The address of `MAIL FROM:<a> PARAMS` or `RCPT TO:<a>`: what is between
/// the angle brackets (`None` without the keyword or the brackets).
fn path_after(rest: &str, keyword: &str) -> Option<String> {
    let rest = rest.trim_start();
    if rest.len() < keyword.len() || !rest[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

/// What the sink received, shared with the scenario.
#[derive(Default)]
pub struct Inbox {
    /// Each message with when it was accepted (Unix microseconds).
    mails: Mutex<Vec<(i64, Mail)>>,
    /// Connections served (while up), and refused (while down).
    connections: AtomicU64,
    refused: AtomicU64,
    /// From when the sink serves (`None`: down until told).
    up_at: Mutex<Option<Instant>>,
}

impl Inbox {
    fn is_up(&self) -> bool {
        self.up_at
            .lock()
            .expect("up_at lock")
            .is_some_and(|at| Instant::now() >= at)
    }

    fn accepted(&self) -> usize {
        self.mails.lock().expect("inbox lock").len()
    }
}

/// The SMTP sink: an address, and the messages received there.
pub struct Sink {
    pub addr: SocketAddr,
    pub inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// The sink on a loopback port, up at once or (`down`) down until
    /// [`Sink::up_at`] says when. While down it answers every connection
    /// `421` (service not available) and closes it, as a server that is
    /// shutting down or overloaded does; the client must try again later.
    /// Those refusals are counted, which shows the outage was really met.
    pub async fn start(down: bool) -> Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the SMTP sink")?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        if !down {
            *inbox.up_at.lock().expect("up_at lock") = Some(Instant::now());
        }
        let task = tokio::spawn(serve(listener, inbox.clone()));
        Ok(Sink { addr, inbox, task })
    }

    /// The sink serves from `at` on.
    pub fn up_at(&self, at: Instant) {
        *self.inbox.up_at.lock().expect("up_at lock") = Some(at);
    }

    /// Connections refused while the sink was down.
    pub fn refused(&self) -> u64 {
        self.inbox.refused.load(Ordering::Relaxed)
    }
}

async fn serve(listener: TcpListener, inbox: Arc<Inbox>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: let some close.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if !inbox.is_up() {
            inbox.refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"421 4.3.2 bench sink down, try again later\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
            continue;
        }
        inbox.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(stream, inbox.clone()));
    }
}

/// One client connection: greeting, then a reply per command.
async fn connection(stream: TcpStream, inbox: Arc<Inbox>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut session = Session::default();
    if write
        .write_all(b"220 bench.invalid ESMTP sink\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match read.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buffer);
        let line = line.trim_end_matches(['\r', '\n']);
        let (answer, close) = match session.line(line) {
            Step::Nothing => continue,
            Step::Reply(text) => (text, false),
            Step::Accepted(text, mail) => {
                let at = clock::now_micros();
                inbox.mails.lock().expect("inbox lock").push((at, mail));
                (text, false)
            }
            Step::Close(text) => (text, true),
        };
        if write
            .write_all(format!("{answer}\r\n").as_bytes())
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

// --- The scenario -------------------------------------------------------------

/// The email half of a run's report.
#[derive(Debug, Clone, Serialize)]
pub struct EmailRow {
    pub fallback: bool,
    pub visitors: u32,
    /// Replies the server stored (201), one per visitor.
    pub replies: u64,
    pub reply_errors: u64,
    /// Emails the run should produce: one per stored reply with the fallback on.
    pub expected: u64,
    /// Distinct visitors the sink got an email for.
    pub received: u64,
    /// Messages the sink accepted in all (a visitor's second copy included).
    pub messages: u64,
    /// Visitors who got more than one email.
    pub duplicates: u64,
    /// Messages for an address that is no visitor of this run.
    pub strays: u64,
    pub lost: u64,
    pub smtp_down_secs: Option<f64>,
    /// SMTP connections the sink served, and refused (421) while down.
    pub smtp_connections: u64,
    pub refused_while_down: u64,
    /// When the last expected email arrived, in seconds after the load started.
    pub last_email_secs: Option<f64>,
    /// Seconds waited after the load for the emails.
    pub drain_secs: f64,
    pub error_samples: Vec<String>,
}

impl EmailRow {
    fn failed(&self) -> bool {
        self.reply_errors > 0 || self.lost > 0 || (!self.fallback && self.messages > 0)
    }
}

#[derive(Serialize)]
struct EmailRun<'a> {
    chat: &'a TrafficRow,
    email: &'a EmailRow,
}

pub async fn run(args: &EmailArgs) -> Result<bool> {
    if args.target.server.is_some() {
        bail!(
            "the email scenario spawns chatgate itself (its SMTP URL must point at the bench's sink); drop --server"
        );
    }
    let spec = args.chat.spec(&args.load);
    spec.timeline().check(spec.drain)?;
    let negative = |s: f64| s.is_nan() || s < 0.0;
    if args.smtp_down.is_some_and(negative) || negative(args.email_deadline) {
        bail!("--smtp-down and --email-deadline must not be negative");
    }
    let fallback = args.fallback == OnOff::On;
    let sink = Sink::start(args.smtp_down.is_some()).await?;
    let smtp_url = format!("smtp://{}", sink.addr);
    let delay = args.offline_delay_ms.to_string();
    let extra = [
        ("CHATGATE_SMTP_URL", smtp_url.as_str()),
        ("CHATGATE_EMAIL_OFFLINE_DELAY_MS", delay.as_str()),
    ];
    let deployment = spawn::chatgate_with(&args.target, true, &extra).await?;
    let result = run_on(args, &spec, fallback, &sink, &deployment).await;
    deployment.shutdown().await;
    let (chat, email) = result?;

    let title = format!(
        "email: {} offline visitors answered (fallback {}{}) during chat: {}",
        args.visitors,
        if fallback { "on" } else { "off" },
        args.smtp_down.map_or(String::new(), |s| format!(
            ", SMTP down for the first {s} s"
        )),
        args.chat.describe(&args.load)
    );
    report::print_traffic(&title, std::slice::from_ref(&chat));
    print_email(&email);
    if let Some(path) = &args.run.json {
        let runs = [EmailRun {
            chat: &chat,
            email: &email,
        }];
        report::write_json(path, "email", args, &runs)?;
    }
    let mut ok = true;
    if chat.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {}: chat: {} errors, {} lost (details above)",
            chat.target,
            chat.errors.total(),
            chat.lost
        );
        ok = false;
    }
    if email.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {}: email: {} of {} lost, {} reply errors, {} emails with the fallback off",
            chat.target,
            email.lost,
            email.expected,
            email.reply_errors,
            if fallback { 0 } else { email.messages }
        );
        ok = false;
    }
    Ok(ok)
}

fn print_email(row: &EmailRow) {
    let last = row
        .last_email_secs
        .map_or("-".to_string(), |s| format!("{s:.1} s"));
    println!(
        "  emails: expected {}, received {}, lost {} (sink: {} messages, {} duplicates, {} strays; last at {last} after the start; waited {:.1} s after the load)",
        row.expected,
        row.received,
        row.lost,
        row.messages,
        row.duplicates,
        row.strays,
        row.drain_secs
    );
    println!(
        "  replies: {} stored, {} failed; SMTP connections: {} served, {} refused while down",
        row.replies, row.reply_errors, row.smtp_connections, row.refused_while_down
    );
    if row.smtp_down_secs.is_some() && row.refused_while_down == 0 {
        println!(
            "  note: no email was due while SMTP was down; a longer --smtp-down tests the retries"
        );
    }
    for sample in &row.error_samples {
        println!("    {sample}");
    }
}

/// The offline visitors: authenticated with an address, one message each,
/// their rooms answered by the admin.
async fn offline_visitors(
    count: u32,
    channel: uuid::Uuid,
    front: &Endpoint,
    http: &Arc<HttpPool>,
    admin: &AgentLogin,
    concurrency: usize,
) -> Result<Vec<Credentials>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let (http, permits, front, admin) =
            (http.clone(), permits.clone(), front.clone(), admin.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let visitor = async {
                let http = http.pick();
                let body = json!({ "channel_id": channel, "visitor": { "email": address(n) } });
                let auth: serde_json::Value = http
                    .post(format!("{}/chatplugin.authenticate", front.http))
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                let credentials = Credentials {
                    conversation: auth["conversation_id"]
                        .as_str()
                        .and_then(|c| c.parse().ok())
                        .ok_or_else(|| anyhow!("no conversation_id in {auth}"))?,
                    token: Some(
                        auth["token"]
                            .as_str()
                            .ok_or_else(|| anyhow!("no token in {auth}"))?
                            .to_string(),
                    ),
                };
                client::send_http(&http, &front, &credentials, &format!("hello from v{n}")).await?;
                client::answer(&http, &front, &admin, credentials.conversation).await?;
                anyhow::Ok(credentials)
            };
            (n, visitor.await)
        });
    }
    let mut visitors: Vec<Option<Credentials>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (n, result) = joined.context("a visitor task panicked")?;
        visitors[n as usize] =
            Some(result.with_context(|| format!("cannot set up offline visitor v{n}"))?);
    }
    Ok(visitors.into_iter().flatten().collect())
}

/// Setup, the chat load with the replies alongside, then the email drain.
async fn run_on(
    args: &EmailArgs,
    spec: &TrafficSpec,
    fallback: bool,
    sink: &Sink,
    target: &Deployment,
) -> Result<(TrafficRow, EmailRow)> {
    let channel = target
        .spec
        .channel
        .ok_or_else(|| anyhow!("no channel id for {}", target.spec.label))?;
    let login = target
        .spec
        .admin
        .as_ref()
        .ok_or_else(|| anyhow!("chatgate did not print its admin login"))?;
    let front = Endpoint::resolve(&target.spec.front).await?;
    let sources = Sources::new(args.run.source_ips, 0, front.addr);
    let http = Arc::new(HttpPool::new(&sources)?);
    let admin = client::login(&http.pick(), &front, &login.email, &login.password).await?;
    client::channel_call(
        &http.pick(),
        &front,
        &admin,
        "update",
        &json!({ "channel_id": channel, "email_fallback": fallback }),
    )
    .await
    .context("cannot set the channel's email_fallback")?;
    let visitors = offline_visitors(
        args.visitors,
        channel,
        &front,
        &http,
        &admin,
        args.run.connect_concurrency,
    )
    .await?;

    // The replies: reply n at the start of the measured window plus
    // n/visitors of its duration, each in its own task.
    let (started_tx, started_rx) = oneshot::channel::<i64>();
    let replies = Arc::new(Replies::default());
    let replier = {
        let (replies, http, front, admin) =
            (replies.clone(), http.clone(), front.clone(), admin.clone());
        let (warmup, duration, smtp_down) = (spec.warmup, spec.duration, args.smtp_down);
        async move {
            let Ok(start) = started_rx.await else {
                return None;
            };
            let origin = clock::instant_at(start);
            if let Some(down) = smtp_down {
                sink.up_at(origin + Duration::from_secs_f64(down));
            }
            let window = origin + Duration::from_secs_f64(warmup);
            let mut tasks = JoinSet::new();
            let count = visitors.len().max(1) as f64;
            for (n, visitor) in visitors.iter().enumerate() {
                let due = window + Duration::from_secs_f64(duration * n as f64 / count);
                tokio::time::sleep_until(due).await;
                let url = client::chatd_url(
                    &front,
                    &format!("/users/me/rooms/{}/messages", visitor.conversation),
                );
                let (replies, http, token) = (replies.clone(), http.pick(), admin.token.clone());
                tasks.spawn(async move {
                    let text = format!("the answer for v{n}");
                    match client::post_message(&http, &url, &token, &text).await {
                        Ok(()) => replies.stored.fetch_add(1, Ordering::Relaxed),
                        Err(err) => {
                            replies.sample(format!("reply to v{n}: {err:#}"));
                            replies.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
            Some(start)
        }
    };
    let (chat, start) = tokio::join!(
        traffic::run_with(spec, target, &args.run, Some(started_tx)),
        replier
    );
    let chat = chat?;
    let start = start.ok_or_else(|| anyhow!("the chat load never started"))?;

    // The drain: with the fallback on, until every stored reply's email is
    // in (or the deadline); off, one offline delay plus the outbox's poll
    // and a margin, so an email that should not exist has had its chance.
    let stored = replies.stored.load(Ordering::Relaxed);
    let expected = if fallback { stored } else { 0 };
    let drain_started = Instant::now();
    let deadline = drain_started
        + if fallback {
            Duration::from_secs_f64(args.email_deadline)
        } else {
            Duration::from_millis(args.offline_delay_ms + 3_000)
        };
    loop {
        let count = distinct_visitors(sink, args.visitors).received;
        if (fallback && count >= expected) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let Tally {
        received,
        duplicates,
        strays,
        last_first,
    } = distinct_visitors(sink, args.visitors);
    let samples = replies.samples.lock().expect("samples lock").clone();
    let email = EmailRow {
        fallback,
        visitors: args.visitors,
        replies: stored,
        reply_errors: replies.failed.load(Ordering::Relaxed),
        expected,
        received,
        messages: sink.inbox.accepted() as u64,
        duplicates,
        strays,
        lost: expected.saturating_sub(received),
        smtp_down_secs: args.smtp_down,
        smtp_connections: sink.inbox.connections.load(Ordering::Relaxed),
        refused_while_down: sink.refused(),
        last_email_secs: last_first.map(|at| (at - start) as f64 / 1e6),
        drain_secs,
        error_samples: samples,
    };
    Ok((chat, email))
}

/// The sink's messages counted per visitor.
#[derive(Debug, PartialEq, Eq)]
struct Tally {
    /// Distinct visitors of this run with an email at the sink.
    received: u64,
    /// Visitors with more than one.
    duplicates: u64,
    /// Recipients that are no visitor of this run.
    strays: u64,
    /// When the last visitor got its first email (Unix microseconds).
    last_first: Option<i64>,
}

fn distinct_visitors(sink: &Sink, visitors: u32) -> Tally {
    let mails = sink.inbox.mails.lock().expect("inbox lock");
    // Per visitor: emails, and when the first arrived.
    let mut per_visitor: BTreeMap<u32, (u64, i64)> = BTreeMap::new();
    let mut strays = 0;
    for (at, mail) in mails.iter() {
        for to in &mail.to {
            match visitor_of(to).filter(|n| *n < visitors) {
                Some(n) => per_visitor.entry(n).or_insert((0, *at)).0 += 1,
                None => strays += 1,
            }
        }
    }
    Tally {
        received: per_visitor.len() as u64,
        duplicates: per_visitor.values().filter(|(c, _)| *c > 1).count() as u64,
        strays,
        last_first: per_visitor.values().map(|(_, at)| *at).max(),
    }
}

/// The replies' outcome, shared by their tasks.
#[derive(Default)]
struct Replies {
    stored: AtomicU64,
    failed: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Replies {
    fn sample(&self, text: String) {
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < 5 {
            samples.push(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds lines, returns the replies (`None` for DATA lines) and the mails.
    fn feed(session: &mut Session, lines: &[&str]) -> (Vec<Option<String>>, Vec<Mail>) {
        let mut replies = Vec::new();
        let mut mails = Vec::new();
        for line in lines {
            replies.push(match session.line(line) {
                Step::Nothing => None,
                Step::Reply(text) | Step::Close(text) => Some(text),
                Step::Accepted(text, mail) => {
                    mails.push(mail);
                    Some(text)
                }
            });
        }
        (replies, mails)
    }

    fn code(reply: &Option<String>) -> &str {
        reply.as_deref().map_or("-", |r| &r[..3])
    }

    #[test]
    fn a_whole_exchange_is_one_mail_per_data() {
        let mut session = Session::default();
        let (replies, mails) = feed(
            &mut session,
            &[
                "EHLO client.example",
                "MAIL FROM:<chatgate@localhost> BODY=8BITMIME",
                "RCPT TO:<v7@bench.invalid>",
                "DATA",
                "Subject: hello",
                "",
                "..a line that began with a dot",
                ".",
                "RSET",
                "MAIL FROM:<>",
                "rcpt to:<v8@BENCH.INVALID>",
                "RCPT TO:<someone@else.example>",
                "DATA",
                "body",
                ".",
                "NOOP",
                "QUIT",
            ],
        );
        let codes: Vec<&str> = replies.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                "250", "250", "250", "354", "-", "-", "-", "250", "250", "250", "250", "250",
                "354", "-", "250", "250", "221"
            ]
        );
        assert_eq!(
            replies[0].as_deref(),
            Some("250-bench.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8")
        );
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].from, "chatgate@localhost");
        assert_eq!(mails[0].to, ["v7@bench.invalid"]);
        // "Subject: hello\r\n" + "\r\n" + ".a line that began with a dot\r\n"
        assert_eq!(mails[0].bytes, 16 + 2 + 31);
        assert_eq!(mails[1].from, "");
        assert_eq!(mails[1].to, ["v8@BENCH.INVALID", "someone@else.example"]);
        assert!(matches!(session.line("QUIT"), Step::Close(_)));
    }

    #[test]
    fn out_of_order_and_malformed_commands_are_refused() {
        let mut session = Session::default();
        let (replies, mails) = feed(
            &mut session,
            &[
                "HELO client",
                "RCPT TO:<v1@bench.invalid>",
                "DATA",
                "MAIL v1@bench.invalid",
                "MAIL FROM:<a@b.example>",
                "RCPT TO:v1@bench.invalid",
                "DATA",
                "STARTTLS",
                "RCPT TO:<v1@bench.invalid>",
                "RSET",
                "DATA",
            ],
        );
        let codes: Vec<&str> = replies.iter().map(code).collect();
        assert_eq!(
            codes,
            ["250", "503", "503", "501", "250", "501", "503", "502", "250", "250", "503"]
        );
        assert!(mails.is_empty());
    }

    #[test]
    fn addresses_name_visitors() {
        assert_eq!(visitor_of(&address(42)), Some(42));
        assert_eq!(visitor_of("<v0@Bench.Invalid>"), Some(0));
        assert_eq!(visitor_of("v1@other.example"), None);
        assert_eq!(visitor_of("w1@bench.invalid"), None);
        assert_eq!(visitor_of("vx@bench.invalid"), None);
    }

    #[tokio::test]
    async fn the_sink_takes_a_message_over_tcp() {
        let sink = Sink::start(false).await.expect("sink");
        let stream = TcpStream::connect(sink.addr).await.expect("connect");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        async fn expect(
            lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
            code: &str,
        ) {
            let line = lines.next_line().await.expect("read").expect("a line");
            assert!(line.starts_with(code), "{line} is not {code}");
        }
        expect(&mut lines, "220").await;
        for (command, code) in [
            ("HELO me", "250"),
            ("MAIL FROM:<a@b.example>", "250"),
            ("RCPT TO:<v3@bench.invalid>", "250"),
            ("DATA", "354"),
        ] {
            write
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .expect("write");
            expect(&mut lines, code).await;
        }
        write
            .write_all(b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
            .await
            .expect("write");
        expect(&mut lines, "250").await;
        expect(&mut lines, "221").await;
        assert_eq!(sink.inbox.accepted(), 1);
        let tally = distinct_visitors(&sink, 10);
        assert_eq!((tally.received, tally.duplicates, tally.strays), (1, 0, 0));
        assert!(tally.last_first.is_some());
        let tally = distinct_visitors(&sink, 3);
        assert_eq!(
            (tally.received, tally.strays, tally.last_first),
            (0, 1, None)
        );
    }

    #[tokio::test]
    async fn a_sink_that_is_down_refuses_with_421() {
        let sink = Sink::start(true).await.expect("sink");
        let stream = TcpStream::connect(sink.addr).await.expect("connect");
        let mut lines = BufReader::new(stream).lines();
        let line = lines.next_line().await.expect("read").expect("a line");
        assert!(line.starts_with("421 "), "{line}");
        assert_eq!(lines.next_line().await.expect("read"), None, "closed");
        assert_eq!(sink.refused(), 1);
        assert_eq!(sink.inbox.accepted(), 0);
        // Up from now: served.
        sink.up_at(Instant::now());
        let stream = TcpStream::connect(sink.addr).await.expect("connect");
        let mut lines = BufReader::new(stream).lines();
        let line = lines.next_line().await.expect("read").expect("a line");
        assert!(line.starts_with("220 "), "{line}");
        assert_eq!(sink.refused(), 1);
    }
}
