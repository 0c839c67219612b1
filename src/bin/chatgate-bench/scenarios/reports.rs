//! `reports`: how long the Reports page (and its CSV) takes on the embedded
//! default with a big history.
//!
//! Seeding. chatgate is started once on an empty SQLite file (it migrates
//! and creates the first-start admin, tenant and demo channel) and stopped;
//! the bench then writes, with plain SQL in a few large statements:
//! `--channels` channels (the demo one among them), `--agents` agents, and
//! `--conversations` visitor conversations spread over the last `--days`
//! days (more on weekdays and office hours), with `--messages` messages
//! between them: the visitor's first message, the agent's first reply
//! after a wait of seconds to minutes, then visitor and agent in turns.
//! Most conversations are closed (two in five rated, mostly well), a few
//! are open, a few still queued, a few closed without an answer. Every
//! conversation's `first_response_at` and `closed_at` are those of its
//! messages, as the server's own writes would have made them. The layout
//! is a deterministic function of the options ([`plan`]).
//!
//! Measuring. The bench logs into the console as the admin and requests
//! each page ([`pages`]) a few times unmeasured, then `--requests` times,
//! one at a time, timing each to the last byte of the body; it checks that
//! the page counts every seeded conversation of the period. It reports per
//! page p50/p95/p99/max in ms; a p99 over `--budget-ms` is marked, and any
//! reply other than 2xx fails the run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use uuid::Uuid;

use super::console::{admin_ids, console_login, first_start, insert_rows, lit, Db};
use crate::cli::{Backend, ReportsArgs};
use crate::report::{self, Percentiles};
use crate::spawn::{self, ScratchDir};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
/// Unmeasured requests of each page before the measured ones.
const WARMUP: u32 = 3;
/// Between two messages of a conversation after the first reply.
const TURN_MS: i64 = 30_000;

/// How a seeded conversation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered and closed.
    Closed,
    /// Answered, still open.
    Open,
    /// Never answered, closed (a visitor who gave up).
    Missed,
    /// Never answered, still queued.
    Queued,
}

/// One seeded conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub created_ms: i64,
    pub channel: usize,
    /// Index into the agents (0: the admin); `None` when never answered.
    pub agent: Option<usize>,
    pub messages: u64,
    /// The first reply's wait.
    pub first_wait_ms: i64,
    pub outcome: Outcome,
    pub rating: Option<u8>,
}

impl Planned {
    /// When message `n` (1-based) is sent.
    pub fn sent_at(&self, n: u64) -> i64 {
        if n <= 1 || self.agent.is_none() {
            return self.created_ms + (n as i64 - 1) * TURN_MS;
        }
        self.created_ms + self.first_wait_ms + (n as i64 - 2) * TURN_MS
    }

    pub fn first_response_ms(&self) -> Option<i64> {
        (self.agent.is_some() && self.messages >= 2).then(|| self.sent_at(2))
    }

    pub fn closed_ms(&self) -> Option<i64> {
        matches!(self.outcome, Outcome::Closed | Outcome::Missed)
            .then(|| self.sent_at(self.messages) + 2 * MIN)
    }
}

/// xorshift64*: the same numbers for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The conversations, oldest first: `conversations` of them over the `days`
/// days before `now_ms`, with `messages` messages in all (at least two each).
pub fn plan(
    conversations: u32,
    messages: u64,
    channels: u32,
    agents: u32,
    days: u32,
    now_ms: i64,
) -> Result<Vec<Planned>> {
    let n = u64::from(conversations);
    if n == 0 || messages < 2 * n {
        bail!("--messages must be at least twice --conversations");
    }
    if channels == 0 || days == 0 {
        bail!("--channels and --days must be at least 1");
    }
    let mut rng = Rng(0x5eed_0f4e_9000);
    let today = now_ms - now_ms.rem_euclid(DAY);
    let first_day = today - (i64::from(days) - 1) * DAY;
    let mut planned: Vec<Planned> = (0..n)
        .map(|k| {
            // Weekends get a third of a weekday's visitors; office hours most.
            let day = loop {
                let d = rng.below(u64::from(days)) as i64;
                let weekday = ((first_day + d * DAY) / DAY + 3).rem_euclid(7); // 0: Monday
                if weekday < 5 || rng.below(3) == 0 {
                    break d;
                }
            };
            let hour = if rng.below(5) == 0 {
                rng.below(24) as i64
            } else {
                8 + rng.below(10) as i64
            };
            let created = (first_day + day * DAY + hour * 60 * MIN + rng.below(60) as i64 * MIN)
                .min(now_ms - 60 * MIN - rng.below(60) as i64 * MIN);
            let outcome = match rng.below(100) {
                0..=2 => Outcome::Queued,
                3..=4 => Outcome::Missed,
                5..=9 => Outcome::Open,
                _ => Outcome::Closed,
            };
            let answered = matches!(outcome, Outcome::Closed | Outcome::Open);
            let rating = (outcome == Outcome::Closed && rng.below(5) < 2)
                .then(|| [5, 5, 5, 4, 4, 4, 3, 2, 1, 5][rng.below(10) as usize]);
            Planned {
                created_ms: created,
                channel: (k % u64::from(channels)) as usize,
                agent: answered.then(|| rng.below(u64::from(agents) + 1) as usize),
                messages: 0,
                // 5 s to 5 min, most under a minute.
                first_wait_ms: if rng.below(4) == 0 {
                    (60 + rng.below(240)) as i64 * 1000
                } else {
                    (5 + rng.below(55)) as i64 * 1000
                },
                outcome,
                rating,
            }
        })
        .collect();
    // Messages: evenly, the rest one more each to the first conversations.
    let (each, extra) = (messages / n, messages % n);
    for (k, p) in planned.iter_mut().enumerate() {
        p.messages = each + u64::from((k as u64) < extra);
    }
    planned.sort_by_key(|p| p.created_ms);
    Ok(planned)
}

/// The ids of a run: a prefix and numbers, sorting in insertion order.
fn conversation_id(prefix: u32, k: usize) -> String {
    format!(
        "{prefix:08x}-{:04x}-{:04x}-8000-000000000000",
        (k >> 16) & 0xffff,
        k & 0xffff
    )
}

fn agent_id(prefix: u32, i: usize) -> String {
    format!("{prefix:08x}-a9e0-4000-8000-{i:012x}")
}

fn channel_id(prefix: u32, i: usize) -> String {
    format!("{prefix:08x}-c4a0-4000-8000-{i:012x}")
}

/// What the seeding made: who logs in, what the filters name.
struct Seeded {
    admin: spawn::AdminLogin,
    channels: Vec<String>,
    agents: Vec<String>,
    planned: Vec<Planned>,
}

/// Writes the plan into a migrated, bootstrapped SQLite file in one transaction.
async fn seed(
    db: &mut Db,
    args: &ReportsArgs,
    demo: Uuid,
    admin: &spawn::AdminLogin,
) -> Result<Seeded> {
    let (admin_id, tenant) = admin_ids(db, &admin.email).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let planned = plan(
        args.conversations,
        args.messages,
        args.channels,
        args.agents,
        args.days,
        now,
    )?;
    let prefix = Uuid::new_v4().as_u128() as u32;
    let tenant_lit = lit(&tenant)?;
    let t0 = now - (i64::from(args.days) + 1) * DAY;
    db.execute("BEGIN").await?;

    let mut channels = vec![demo.to_string()];
    let mut rows = Vec::new();
    for i in 1..args.channels as usize {
        let id = channel_id(prefix, i);
        rows.push(format!(
            "({}, {tenant_lit}, {}, NULL, '[]', 1, {t0})",
            lit(&id)?,
            lit(&format!("Channel {i}"))?
        ));
        channels.push(id);
    }
    insert_rows(
        db,
        "channels (id, tenant_id, name, image_url, allowed_origins, connected, created_at)",
        &rows,
    )
    .await?;

    let hash = chatgate::auth::hash_password(&Uuid::new_v4().simple().to_string())
        .map_err(|e| anyhow!("cannot hash a password: {e}"))?;
    let mut agents = vec![admin_id.clone()];
    let mut names = vec!["Admin".to_string()];
    let mut rows = Vec::new();
    for i in 1..=args.agents as usize {
        let id = agent_id(prefix, i);
        rows.push(format!(
            "({}, {tenant_lit}, {}, {}, NULL, 'agent', {}, {t0})",
            lit(&id)?,
            lit(&format!("agent-{i}-{prefix:08x}@bench.invalid"))?,
            lit(&format!("Agent {i}"))?,
            lit(&hash)?,
        ));
        agents.push(id);
        names.push(format!("Agent {i}"));
    }
    insert_rows(
        db,
        "agents (id, tenant_id, email, display_name, avatar_url, role, password_hash, created_at)",
        &rows,
    )
    .await?;

    let mut rooms = Vec::with_capacity(planned.len());
    let mut members = Vec::new();
    let mut seed_rows = Vec::with_capacity(planned.len());
    for (k, p) in planned.iter().enumerate() {
        let id = lit(&conversation_id(prefix, k))?;
        let channel = lit(&channels[p.channel])?;
        let state = match p.outcome {
            Outcome::Closed | Outcome::Missed => "closed",
            Outcome::Open => "open",
            Outcome::Queued => "queued",
        };
        let assignee = p.agent.map(|a| agents[a].as_str());
        let opt = |v: Option<i64>| v.map_or("NULL".to_string(), |v| v.to_string());
        rooms.push(format!(
            "({id}, {tenant_lit}, 'visitor', {channel}, '{state}', {}, {}, {}, {}, {}, {}, {}, {}, {})",
            assignee.map_or(Ok("NULL".to_string()), lit)?,
            p.created_ms,
            p.created_ms,
            p.messages,
            p.sent_at(p.messages),
            opt(p.first_response_ms()),
            opt(p.closed_ms()),
            opt(p.rating.map(i64::from)),
            opt(p.rating.map(|_| p.closed_ms().unwrap_or(p.created_ms) + MIN)),
        ));
        if let Some(a) = p.agent {
            members.push(format!(
                "({id}, {}, {tenant_lit}, {}, {})",
                lit(&agents[a])?,
                p.created_ms + p.first_wait_ms - 1000,
                p.messages
            ));
        }
        seed_rows.push(format!(
            "({k}, {id}, {channel}, {}, {}, {}, {}, {})",
            p.messages,
            p.created_ms,
            p.first_wait_ms,
            p.agent
                .map_or(Ok("NULL".to_string()), |a| lit(&agents[a]))?,
            p.agent.map_or(Ok("NULL".to_string()), |a| lit(&names[a]))?,
        ));
    }
    insert_rows(
        db,
        "conversations (id, tenant_id, kind, channel_id, state, assignee_id, created_at, queued_at, \
         last_seq, last_message_at, first_response_at, closed_at, rating, rated_at)",
        &rooms,
    )
    .await?;
    insert_rows(
        db,
        "room_members (room_id, member_id, tenant_id, joined_at, last_read_seq)",
        &members,
    )
    .await?;

    // The messages: one INSERT ... SELECT over the conversations and the
    // numbers 1..most. Message 1 is the visitor's; in answered
    // conversations message 2 is the agent's first reply, then they take
    // turns (the agent on even numbers), TURN_MS apart.
    db.execute(
        "CREATE TEMP TABLE seed_rooms (k BIGINT PRIMARY KEY, id TEXT NOT NULL, channel_id TEXT NOT NULL, \
         n BIGINT NOT NULL, created_at BIGINT NOT NULL, first_wait BIGINT NOT NULL, agent_id TEXT, \
         agent_name TEXT)",
    )
    .await?;
    insert_rows(db, "seed_rooms", &seed_rows).await?;
    let most = planned.iter().map(|p| p.messages).max().unwrap_or(1);
    db.execute("CREATE TEMP TABLE seed_numbers (n BIGINT PRIMARY KEY)")
        .await?;
    db.execute(&format!(
        "INSERT INTO seed_numbers (n) WITH RECURSIVE c(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {most}) SELECT n FROM c"
    ))
    .await?;
    let agent_side = "r.agent_id IS NOT NULL AND s.n % 2 = 0";
    let content = format!(
        "CASE WHEN {agent_side} THEN \
           CASE s.n % 4 WHEN 0 THEN 'Let me check that for you' ELSE 'It left the warehouse yesterday' END \
         ELSE CASE s.n % 3 WHEN 0 THEN 'Hello, where is my order?' WHEN 1 THEN 'Thanks, and the address?' \
           ELSE 'Great, thank you!' END END"
    );
    let sent_at = format!(
        "CASE WHEN r.agent_id IS NULL OR s.n = 1 THEN r.created_at + (s.n - 1) * {TURN_MS} \
         ELSE r.created_at + r.first_wait + (s.n - 2) * {TURN_MS} END"
    );
    let inserted = db
        .execute(&format!(
            "INSERT INTO messages (id, conversation_id, channel_id, tenant_id, seq, sender_kind, \
             sender_id, sender_name, sender_avatar, content, state, sent_at, client_message_id, \
             search_text, read_at, edited_at, deleted) \
             SELECT substr(r.id, 1, 19) || '9000-' || printf('%012x', s.n), r.id, r.channel_id, \
             {tenant_lit}, s.n, \
             CASE WHEN {agent_side} THEN 'agent' ELSE 'visitor' END, \
             CASE WHEN {agent_side} THEN r.agent_id ELSE r.id END, \
             CASE WHEN {agent_side} THEN r.agent_name END, \
             NULL, {content}, 'DELIVERED', {sent_at}, NULL, lower({content}), NULL, NULL, 0 \
             FROM seed_rooms r JOIN seed_numbers s ON s.n <= r.n ORDER BY r.k, s.n"
        ))
        .await
        .context("inserting the messages")?;
    if inserted != args.messages {
        bail!("inserted {inserted} messages, expected {}", args.messages);
    }
    db.execute("DROP TABLE seed_rooms").await?;
    db.execute("DROP TABLE seed_numbers").await?;
    db.execute("COMMIT").await?;
    db.execute("ANALYZE").await?;
    Ok(Seeded {
        admin: admin.clone(),
        channels,
        agents,
        planned,
    })
}

/// One page measured.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSpec {
    pub name: String,
    pub path: String,
    /// The conversations the page must count (checked on report pages).
    pub expect: Option<usize>,
}

/// The pages: the whole history, one channel, one agent, the default
/// period, and the CSV.
fn pages(seeded: &Seeded, days: u32, now_ms: i64) -> Vec<PageSpec> {
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .date_naive();
    let from = today - chrono::Days::new(u64::from(days.max(1) - 1));
    let from_ms = from
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    let last30 = (today - chrono::Days::new(29))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
    let period = format!("from={from}&to={today}");
    let count = |keep: &dyn Fn(&Planned) -> bool| {
        seeded
            .planned
            .iter()
            .filter(|p| p.created_ms >= from_ms && keep(p))
            .count()
    };
    let channel = &seeded.channels[seeded.channels.len() - 1];
    let agent = &seeded.agents[seeded.agents.len().min(2) - 1];
    let last_channel = seeded.channels.len() - 1;
    let agent_index = seeded.agents.len().min(2) - 1;
    vec![
        PageSpec {
            name: format!("report, {days} days"),
            path: format!("/console/reports?{period}"),
            expect: Some(count(&|_| true)),
        },
        PageSpec {
            name: format!("report, {days} days, a channel"),
            path: format!("/console/reports?{period}&channel={channel}"),
            expect: Some(count(&|p| p.channel == last_channel)),
        },
        PageSpec {
            name: format!("report, {days} days, an agent"),
            path: format!("/console/reports?{period}&agent={agent}"),
            expect: Some(count(&|p| p.agent == Some(agent_index))),
        },
        PageSpec {
            name: "report, last 30 days".into(),
            path: "/console/reports".into(),
            expect: Some(
                seeded
                    .planned
                    .iter()
                    .filter(|p| p.created_ms >= last30)
                    .count(),
            ),
        },
        PageSpec {
            name: format!("CSV, {days} days"),
            path: format!("/console/reports.csv?{period}"),
            expect: None,
        },
    ]
}

/// The conversations a report page counts (its first card).
fn counted(html: &str) -> Option<usize> {
    let card = html.find("Conversations</span>")?;
    let marker = "<span class=\"kpi-value\">";
    let start = card + html[card..].find(marker)? + marker.len();
    let end = html[start..].find('<')?;
    html[start..start + end].trim().parse().ok()
}

/// One page's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PageRow {
    pub name: String,
    pub path: String,
    pub requests: u64,
    pub failed: u64,
    pub latency_ms: Percentiles,
    pub bytes: usize,
    pub over_budget: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportsReport {
    pub target: String,
    pub conversations: u32,
    pub messages: u64,
    pub channels: u32,
    pub agents: u32,
    pub days: u32,
    pub seed_secs: f64,
    pub requests: u32,
    pub budget_ms: f64,
    pub pages: Vec<PageRow>,
    pub errors: Vec<String>,
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    page: &PageSpec,
    args: &ReportsArgs,
    errors: &mut Vec<String>,
) -> Result<PageRow> {
    let url = format!("{base}{}", page.path);
    let histogram = Mutex::new(report::histogram());
    let mut failed = 0;
    let mut bytes = 0;
    for i in 0..WARMUP + args.requests {
        let started = Instant::now();
        let reply = http
            .get(&url)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await?;
        let took = started.elapsed();
        if !status.is_success() {
            failed += 1;
            if errors.len() < 10 {
                errors.push(format!("{url}: {status}: {}", crate::client::clip(&body)));
            }
            continue;
        }
        if i == 0 {
            bytes = body.len();
            if let Some(expected) = page.expect {
                let shown = counted(&body);
                if shown != Some(expected) {
                    failed += 1;
                    errors.push(format!(
                        "{url}: counts {shown:?} conversations, {expected} were seeded in its period"
                    ));
                }
            }
        }
        if i >= WARMUP {
            report::record(&histogram, took.as_micros() as i64);
        }
    }
    let latency = Percentiles::of(&histogram.lock().expect("histogram lock"));
    Ok(PageRow {
        name: page.name.clone(),
        path: page.path.clone(),
        requests: u64::from(args.requests),
        failed,
        over_budget: latency.p99 > args.budget_ms,
        latency_ms: latency,
        bytes,
    })
}

fn print(r: &ReportsReport) {
    println!();
    println!(
        "reports: {} conversations, {} messages over {} days, {} channels, {} agents; {} requests per page, one at a time",
        r.conversations, r.messages, r.days, r.channels, r.agents, r.requests
    );
    println!("{}, database seeded in {:.1} s", r.target, r.seed_secs);
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "page", "p50 ms", "p95 ms", "p99 ms", "max ms", "KiB", "failed"
    );
    for p in &r.pages {
        println!(
            "{:<32} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>6}{}",
            p.name,
            p.latency_ms.p50,
            p.latency_ms.p95,
            p.latency_ms.p99,
            p.latency_ms.max,
            p.bytes as f64 / 1024.0,
            p.failed,
            if p.over_budget {
                format!("  p99 over {} ms", r.budget_ms)
            } else {
                String::new()
            }
        );
    }
    for e in &r.errors {
        println!("    {e}");
    }
}

/// `reports`: seeds a SQLite file, measures the report pages, prints,
/// writes the JSON; `Ok(false)` when a page failed or miscounted.
pub async fn run(args: &ReportsArgs) -> Result<bool> {
    if args.target.server.is_some() || !matches!(args.target.backend, Backend::Sqlite) {
        bail!("the reports scenario seeds its own SQLite file (the embedded default): no --server, no --backend postgres");
    }
    let scratch = ScratchDir::create()?;
    let database = scratch.path().join("reports.db");
    let started = Instant::now();
    let first = spawn::chatgate_sqlite_at(&args.target, &database).await?;
    let found = first_start(&first);
    first.shutdown().await;
    let (admin, demo) = found?;
    let mut db = Db::sqlite(&database).await?;
    let seeded = seed(&mut db, args, demo, &admin).await?;
    db.close().await?;
    let seed_secs = started.elapsed().as_secs_f64();

    let deployment = spawn::chatgate_sqlite_at(&args.target, &database).await?;
    let measured = async {
        let base = deployment.spec.front.clone();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        let cookie = console_login(&http, &base, &seeded.admin).await?;
        let mut errors = Vec::new();
        let mut rows = Vec::new();
        for page in pages(&seeded, args.days, chrono::Utc::now().timestamp_millis()) {
            rows.push(measure(&http, &base, &cookie, &page, args, &mut errors).await?);
        }
        anyhow::Ok((rows, errors))
    }
    .await;
    let target = deployment.spec.label.clone();
    deployment.shutdown().await;
    drop(scratch);
    let (pages, errors) = measured?;
    let report = ReportsReport {
        target,
        conversations: args.conversations,
        messages: args.messages,
        channels: args.channels,
        agents: args.agents,
        days: args.days,
        seed_secs,
        requests: args.requests,
        budget_ms: args.budget_ms,
        pages,
        errors,
    };
    print(&report);
    if let Some(path) = &args.json {
        report::write_json(path, "reports", args, &[&report])?;
    }
    let failed = report.pages.iter().any(|p| p.failed > 0);
    if failed {
        eprintln!("chatgate-bench: FAILED: report pages failed or miscounted (details above)");
    }
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_spreads_every_message_over_conversations_that_look_like_traffic() {
        let now = 1_796_000_000_000;
        let planned = super::plan(10_000, 1_000_000, 3, 8, 90, now).unwrap();
        let plan = planned;
        assert_eq!(plan.len(), 10_000);
        assert_eq!(plan.iter().map(|p| p.messages).sum::<u64>(), 1_000_000);
        assert!(plan.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
        assert!(plan.iter().all(|p| p.created_ms < now));
        assert!(plan[0].created_ms >= now - 90 * DAY);
        let share = |o| plan.iter().filter(|p| p.outcome == o).count() as f64 / 10_000.0;
        assert!(share(Outcome::Closed) > 0.8);
        assert!(share(Outcome::Queued) > 0.01);
        let rated = plan.iter().filter(|p| p.rating.is_some()).count();
        assert!((3_000..4_000).contains(&rated), "{rated}");
        assert_eq!(
            (0..3)
                .map(|c| plan.iter().filter(|p| p.channel == c).count())
                .min(),
            Some(3_333)
        );
        for p in &plan {
            match p.outcome {
                Outcome::Closed | Outcome::Open => {
                    let first = p.first_response_ms().unwrap();
                    assert_eq!(first - p.created_ms, p.first_wait_ms);
                }
                Outcome::Missed | Outcome::Queued => assert_eq!(p.first_response_ms(), None),
            }
            if let Some(closed) = p.closed_ms() {
                assert!(closed > p.sent_at(p.messages));
            }
        }
        assert!(super::plan(10, 19, 1, 1, 1, now).is_err());
    }
}
