//! `console`: how long the console's pages take on a big database.
//!
//! Seeding. chatgate is started once on an empty database (it migrates and
//! creates the first-start admin, tenant and demo channel), then the bench
//! writes the rest with plain SQL in a few large statements: `--agents`
//! agents, `--rooms` rooms and `--messages` messages (a PostgreSQL schema is
//! seeded while its servers run; a SQLite file while chatgate is stopped,
//! after which it is started again). The layout ([`Layout`]) is a
//! deterministic function of the options:
//!
//! - a few team rooms (the admin and one agent each), then the closed visitor
//!   rooms (most of them), a few hundred open ones and about fifty queued
//!   ones, newest last;
//! - visitor rooms that are not queued belong to the admin or, every other
//!   one, to an agent; open rooms have a few unread messages;
//! - message counts follow 1/rank (Zipf), at least one per room: with the
//!   defaults the biggest room has about 100,000 messages and ten rooms have
//!   over 10,000. The biggest room is the admin's first open room.
//!
//! Ids are built from a random run prefix, so they sort in insertion order
//! (rooms by number, messages by room then seq) and every B-tree grows at
//! its end. With `--reuse PATH` (SQLite) the seeded file is kept there with
//! a sidecar `PATH.seed.json` (the options, the admin's login, the ids) and
//! reused while the options match.
//!
//! Measuring. The bench logs into the console as the admin (login form,
//! CSRF field, session cookie) and requests each page ([`pages`]) a few
//! times unmeasured, then `--requests` times (`--concurrency` at once),
//! timing each request to the last byte of the body. It reports per page
//! p50/p95/p99/max in ms, the rows the page shows and its size. Any reply
//! other than 2xx fails the run; a p99 over `--budget-ms` is marked, not failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::cli::{Backend, ConsoleArgs};
use crate::report::{self, Percentiles};
use crate::spawn::{self, AdminLogin, Deployment, ScratchDir};

/// Rooms per page of the console's lists (`ROOMS_PAGE` in `http/console/pages.rs`).
const ROOMS_PAGE: u64 = 100;
/// Unmeasured requests of each page before the measured ones.
const WARMUP: u32 = 3;
/// Rows per multi-row INSERT of rooms and members.
const ROWS_PER_INSERT: usize = 500;
/// Failed requests described in the report.
const MAX_SAMPLES: usize = 10;
/// The sidecar's format; a file of another version is seeded again.
const SEED_VERSION: u32 = 1;

/// Who a room belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Admin,
    /// Agent `i` (0-based) of the seeded agents.
    Agent(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The admin and an agent (the owner).
    Team,
    Closed,
    Open,
    Queued,
}

/// One seeded room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomPlan {
    pub kind: Kind,
    /// `None` for queued rooms.
    pub owner: Option<Owner>,
    pub messages: u64,
    /// The owner's read position (team rooms: both members').
    pub last_read: u64,
}

/// Where everything goes: a pure function of the options.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rooms: Vec<RoomPlan>,
    /// The admin's first open room, the one with the most messages.
    pub huge: usize,
    /// An open room of the admin with a typical number of messages.
    pub typical: usize,
    /// The first team room, if any.
    pub team: Option<usize>,
}

impl Layout {
    pub fn new(rooms: u32, messages: u64, agents: u32) -> Result<Layout> {
        let n = rooms as usize;
        if n < 4 {
            bail!("--rooms must be at least 4");
        }
        if messages < u64::from(rooms) {
            bail!("--messages must be at least --rooms (every room has a message)");
        }
        let team = if agents == 0 {
            0
        } else {
            (agents as usize).min(10).min(n / 20)
        };
        let queued = (n / 200).clamp(1, 50);
        let open = (n * 3 / 100).max(1);
        let closed = n - team - queued - open;
        let huge = team + closed;
        let owner_of = |k: usize| -> Owner {
            if agents == 0 || k.is_multiple_of(2) || k == huge {
                Owner::Admin
            } else {
                Owner::Agent((k / 2) as u32 % agents)
            }
        };
        let mut plan: Vec<RoomPlan> = (0..n)
            .map(|k| {
                let (kind, owner) = if k < team {
                    (Kind::Team, Some(Owner::Agent(k as u32 % agents.max(1))))
                } else if k < team + closed {
                    (Kind::Closed, Some(owner_of(k)))
                } else if k < team + closed + open {
                    (Kind::Open, Some(owner_of(k)))
                } else {
                    (Kind::Queued, None)
                };
                RoomPlan {
                    kind,
                    owner,
                    messages: 0,
                    last_read: 0,
                }
            })
            .collect();
        // The biggest share to the huge room, the others over a fixed shuffle.
        let mut order: Vec<usize> = (0..n).filter(|&k| k != huge).collect();
        shuffle(&mut order, 0x5eed);
        order.insert(0, huge);
        for (room, count) in order.into_iter().zip(message_counts(n, messages)) {
            plan[room].messages = count;
        }
        for (k, room) in plan.iter_mut().enumerate() {
            room.last_read = match room.kind {
                Kind::Closed => room.messages,
                Kind::Open => room.messages.saturating_sub(k as u64 % 4),
                Kind::Team => room.messages.saturating_sub(1),
                Kind::Queued => 0,
            };
        }
        let typical = (huge..huge + open)
            .filter(|&k| plan[k].owner == Some(Owner::Admin))
            .min_by_key(|&k| plan[k].messages.abs_diff(messages / rooms as u64))
            .unwrap_or(huge);
        Ok(Layout {
            rooms: plan,
            huge,
            typical,
            team: (team > 0).then_some(0),
        })
    }

    /// Closed rooms the admin is a member of.
    pub fn admin_closed(&self) -> u64 {
        self.rooms
            .iter()
            .filter(|r| r.kind == Kind::Closed && r.owner == Some(Owner::Admin))
            .count() as u64
    }

    /// The admin's last page of closed rooms (0-based).
    pub fn last_closed_page(&self) -> u64 {
        self.admin_closed().saturating_sub(1) / ROOMS_PAGE
    }
}

/// `total` messages over `rooms` rooms by rank: rank `r` gets a share
/// proportional to 1/(r+1), every room at least one, the rounding left over
/// to rank 0. The counts add up to `total` exactly.
pub fn message_counts(rooms: usize, total: u64) -> Vec<u64> {
    if rooms == 0 {
        return Vec::new();
    }
    let harmonic: f64 = (1..=rooms).map(|r| 1.0 / r as f64).sum();
    let spare = total.saturating_sub(rooms as u64);
    let mut counts: Vec<u64> = (0..rooms)
        .map(|r| 1 + (spare as f64 / (r as f64 + 1.0) / harmonic).floor() as u64)
        .collect();
    let sum: u64 = counts.iter().sum();
    counts[0] += total.saturating_sub(sum);
    counts
}

/// A fixed permutation (xorshift Fisher-Yates): the same for the same seed.
fn shuffle(items: &mut [usize], seed: u64) {
    let mut state = seed.max(1);
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// Ids of a seeding run: a random prefix and numbers, so that they sort in
/// insertion order.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ids {
    pub prefix: u32,
}

impl Ids {
    pub fn room(&self, k: usize) -> String {
        format!(
            "{:08x}-{:04x}-{:04x}-8000-000000000000",
            self.prefix,
            (k >> 16) & 0xffff,
            k & 0xffff
        )
    }

    pub fn agent(&self, i: u32) -> String {
        format!("{:08x}-a9e0-4000-8000-{i:012x}", self.prefix)
    }
}

/// What a seeded database holds, beyond what its options say: the sidecar.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seeded {
    pub version: u32,
    pub rooms: u32,
    pub messages: u64,
    pub agents: u32,
    pub ids: Ids,
    pub tenant: String,
    pub channel: Uuid,
    pub admin_id: String,
    pub admin_email: String,
    pub admin_password: String,
}

impl Seeded {
    fn matches(&self, args: &ConsoleArgs) -> bool {
        self.version == SEED_VERSION
            && (self.rooms, self.messages, self.agents) == (args.rooms, args.messages, args.agents)
    }

    fn admin(&self) -> AdminLogin {
        AdminLogin {
            email: self.admin_email.clone(),
            password: self.admin_password.clone(),
        }
    }
}

fn sidecar(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".seed.json");
    PathBuf::from(name)
}

/// A connection to the database being seeded.
pub(crate) enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Db {
    pub(crate) async fn sqlite(path: &Path) -> Result<Db> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        // A throwaway file being filled: no fsync, a rollback journal (no
        // WAL to copy back), no foreign key checks. chatgate puts WAL back
        // when it opens the file.
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Delete)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(false)
            .pragma("cache_size", "-262144");
        Ok(Db::Sqlite(
            SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?,
        ))
    }

    async fn postgres(url: &str) -> Result<Db> {
        Ok(Db::Postgres(PgConnection::connect(url).await?))
    }

    pub(crate) async fn execute(&mut self, sql: &str) -> Result<u64> {
        let done = match self {
            Db::Sqlite(c) => sqlx::query(sql).execute(c).await?.rows_affected(),
            Db::Postgres(c) => sqlx::query(sql).execute(c).await?.rows_affected(),
        };
        Ok(done)
    }

    async fn two_strings(&mut self, sql: &str) -> Result<(String, String)> {
        let row = match self {
            Db::Sqlite(c) => sqlx::query_as(sql).fetch_one(c).await?,
            Db::Postgres(c) => sqlx::query_as(sql).fetch_one(c).await?,
        };
        Ok(row)
    }

    /// `expr` as 12 lower-case hex digits.
    fn hex12(&self, expr: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("printf('%012x', {expr})"),
            Db::Postgres(_) => format!("lpad(to_hex({expr}), 12, '0')"),
        }
    }

    pub(crate) async fn close(self) -> Result<()> {
        match self {
            Db::Sqlite(c) => c.close().await?,
            Db::Postgres(c) => c.close().await?,
        }
        Ok(())
    }
}

/// A SQL string literal of text we made (ids, names, hashes): no quotes in it.
pub(crate) fn lit(text: &str) -> Result<String> {
    if text.contains('\'') || text.contains('\\') {
        bail!("unexpected quote in {text:?}");
    }
    Ok(format!("'{text}'"))
}

fn opt_lit(text: Option<&str>) -> Result<String> {
    text.map_or(Ok("NULL".into()), lit)
}

/// Runs `INSERT INTO <head> VALUES <rows>` in chunks.
pub(crate) async fn insert_rows(db: &mut Db, head: &str, rows: &[String]) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        db.execute(&format!("INSERT INTO {head} VALUES {}", chunk.join(", ")))
            .await
            .with_context(|| format!("inserting into {head}"))?;
    }
    Ok(())
}

/// Writes the layout into a migrated, bootstrapped database in one transaction.
async fn seed(db: &mut Db, layout: &Layout, seeded: &Seeded, now_ms: i64) -> Result<()> {
    let ids = seeded.ids;
    let tenant = lit(&seeded.tenant)?;
    let channel = lit(&seeded.channel.to_string())?;
    let admin = seeded.admin_id.clone();
    let hour = 3_600_000_i64;
    let most = layout.rooms.iter().map(|r| r.messages).max().unwrap_or(1);
    // Every message is sent before now: room k opens k hours after t0, its
    // messages follow one per second.
    let t0 = now_ms - (layout.rooms.len() as i64 + 1) * hour - most as i64 * 1000;
    let created = |k: usize| t0 + k as i64 * hour;
    let agent_name = |i: u32| format!("Agent {i}");
    let owner_id = |o: Owner| match o {
        Owner::Admin => admin.clone(),
        Owner::Agent(i) => ids.agent(i),
    };
    let owner_name = |o: Owner| match o {
        Owner::Admin => "Admin".to_string(),
        Owner::Agent(i) => agent_name(i),
    };

    db.execute("BEGIN").await?;
    let hash = chatgate::auth::hash_password(&Uuid::new_v4().simple().to_string())
        .map_err(|e| anyhow!("cannot hash a password: {e}"))?;
    let agents: Vec<String> = (0..seeded.agents)
        .map(|i| {
            Ok(format!(
                "({}, {tenant}, {}, {}, NULL, 'agent', {}, {})",
                lit(&ids.agent(i))?,
                lit(&format!("agent-{i}-{:08x}@bench.invalid", ids.prefix))?,
                lit(&agent_name(i))?,
                lit(&hash)?,
                t0
            ))
        })
        .collect::<Result<_>>()?;
    insert_rows(
        db,
        "agents (id, tenant_id, email, display_name, avatar_url, role, password_hash, created_at)",
        &agents,
    )
    .await?;

    let mut rooms = Vec::with_capacity(layout.rooms.len());
    let mut members = Vec::with_capacity(layout.rooms.len() + 16);
    let mut plan = Vec::with_capacity(layout.rooms.len());
    for (k, r) in layout.rooms.iter().enumerate() {
        let id = lit(&ids.room(k))?;
        let at = created(k);
        let owner = r.owner.map(owner_id);
        let (kind, state) = match r.kind {
            Kind::Team => ("agent", "open"),
            Kind::Closed => ("visitor", "closed"),
            Kind::Open => ("visitor", "open"),
            Kind::Queued => ("visitor", "queued"),
        };
        let team = r.kind == Kind::Team;
        let member_key = if team {
            let mut key = [admin.clone(), owner.clone().unwrap_or_default()];
            key.sort();
            Some(key.join(","))
        } else {
            None
        };
        rooms.push(format!(
            "({id}, {tenant}, '{kind}', {}, {}, '{state}', {}, {}, {at}, {}, {}, {})",
            if team { "NULL".into() } else { channel.clone() },
            opt_lit(team.then(|| format!("Team room {k}")).as_deref())?,
            opt_lit((!team).then_some(owner.as_deref()).flatten())?,
            opt_lit(member_key.as_deref())?,
            if r.kind == Kind::Queued {
                at.to_string()
            } else {
                "NULL".into()
            },
            r.messages,
            // The newest message's sent_at (below: one per second).
            at + r.messages as i64 * 1000
        ));
        if let Some(owner) = &owner {
            members.push(format!(
                "({id}, {}, {tenant}, {at}, {})",
                lit(owner)?,
                r.last_read
            ));
        }
        if team {
            members.push(format!(
                "({id}, {}, {tenant}, {}, {})",
                lit(&admin)?,
                at + 1,
                r.last_read
            ));
        }
        // For the messages: who speaks for the agent side (team rooms: the
        // owner and the admin take turns), none in a queued room.
        let speaker = r.owner.map(|o| (owner_id(o), owner_name(o)));
        plan.push(format!(
            "({k}, {id}, {}, {}, {}, {}, {}, {at}, {})",
            r.messages,
            if team { "NULL".into() } else { channel.clone() },
            opt_lit(speaker.as_ref().map(|s| s.0.as_str()))?,
            opt_lit(speaker.as_ref().map(|s| s.1.as_str()))?,
            if team { lit(&admin)? } else { "NULL".into() },
            i64::from(team)
        ));
    }
    insert_rows(
        db,
        "conversations (id, tenant_id, kind, channel_id, name, state, assignee_id, member_key, \
         created_at, queued_at, last_seq, last_message_at)",
        &rooms,
    )
    .await?;
    insert_rows(
        db,
        "room_members (room_id, member_id, tenant_id, joined_at, last_read_seq)",
        &members,
    )
    .await?;

    // The messages: one INSERT ... SELECT over the rooms and the numbers 1..most.
    db.execute(
        "CREATE TEMP TABLE seed_rooms (k BIGINT PRIMARY KEY, id TEXT NOT NULL, n BIGINT NOT NULL, \
         channel_id TEXT, agent_id TEXT, agent_name TEXT, other_id TEXT, created_at BIGINT NOT NULL, \
         team BIGINT NOT NULL)",
    )
    .await?;
    insert_rows(db, "seed_rooms", &plan).await?;
    db.execute("CREATE TEMP TABLE seed_numbers (n BIGINT PRIMARY KEY)")
        .await?;
    db.execute(&format!(
        "INSERT INTO seed_numbers (n) WITH RECURSIVE c(n) AS \
         (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {most}) SELECT n FROM c"
    ))
    .await?;
    let content = "CASE s.n % 6 \
         WHEN 0 THEN 'Hello, I have a question about my order' \
         WHEN 1 THEN 'Thanks! Could you check the delivery date for me?' \
         WHEN 2 THEN 'Sure, one moment please while I look it up' \
         WHEN 3 THEN 'The tracking number says it left the warehouse yesterday' \
         WHEN 4 THEN 'Great, and can I still change the address?' \
         ELSE 'Yes, I have updated it. Anything else I can help with?' END \
         || ' (#' || CAST(s.n AS TEXT) || ' in room ' || CAST(r.k AS TEXT) || ')'";
    // Agent side: every third message (team rooms: every other one is the admin's).
    let agent_side = "r.agent_id IS NOT NULL AND (r.team = 1 OR s.n % 3 = 0)";
    let sql = format!(
        "INSERT INTO messages (id, conversation_id, channel_id, tenant_id, seq, sender_kind, \
         sender_id, sender_name, sender_avatar, content, state, sent_at, client_message_id, \
         search_text, read_at, edited_at, deleted) \
         SELECT substr(r.id, 1, 19) || '9000-' || {hex}, r.id, r.channel_id, {tenant}, s.n, \
         CASE WHEN {agent_side} THEN 'agent' ELSE 'visitor' END, \
         CASE WHEN r.team = 1 AND s.n % 2 = 0 THEN r.other_id WHEN {agent_side} THEN r.agent_id ELSE r.id END, \
         CASE WHEN r.team = 1 AND s.n % 2 = 0 THEN 'Admin' WHEN {agent_side} THEN r.agent_name END, \
         NULL, {content}, 'DELIVERED', r.created_at + s.n * 1000, NULL, lower({content}), \
         NULL, NULL, 0 \
         FROM seed_rooms r JOIN seed_numbers s ON s.n <= r.n ORDER BY r.k, s.n",
        hex = db.hex12("s.n"),
    );
    let inserted = db.execute(&sql).await.context("inserting the messages")?;
    let expected: u64 = layout.rooms.iter().map(|r| r.messages).sum();
    if inserted != expected {
        bail!("inserted {inserted} messages, expected {expected}");
    }
    db.execute("DROP TABLE seed_rooms").await?;
    db.execute("DROP TABLE seed_numbers").await?;
    db.execute("COMMIT").await?;
    Ok(())
}

/// The first-start admin's id and tenant.
pub(crate) async fn admin_ids(db: &mut Db, email: &str) -> Result<(String, String)> {
    db.two_strings(&format!(
        "SELECT id, tenant_id FROM agents WHERE lower(email) = lower({})",
        lit(email)?
    ))
    .await
    .with_context(|| format!("reading the admin {email}"))
}

pub(crate) fn first_start(deployment: &Deployment) -> Result<(AdminLogin, Uuid)> {
    let admin = deployment
        .spec
        .admin
        .clone()
        .ok_or_else(|| anyhow!("chatgate did not print its first-start admin"))?;
    let channel = deployment
        .spec
        .channel
        .ok_or_else(|| anyhow!("chatgate did not print its demo channel"))?;
    Ok((admin, channel))
}

fn new_seeded(
    args: &ConsoleArgs,
    admin: AdminLogin,
    channel: Uuid,
    ids: (String, String),
) -> Seeded {
    Seeded {
        version: SEED_VERSION,
        rooms: args.rooms,
        messages: args.messages,
        agents: args.agents,
        ids: Ids {
            prefix: Uuid::new_v4().as_u128() as u32,
        },
        admin_id: ids.0,
        tenant: ids.1,
        channel,
        admin_email: admin.email,
        admin_password: admin.password,
    }
}

/// A seeded SQLite file: reused when its sidecar matches the options, else
/// made: first start, seed, sidecar.
async fn sqlite_database(
    args: &ConsoleArgs,
    database: &Path,
    layout: &Layout,
) -> Result<(Seeded, Option<f64>)> {
    let side = sidecar(database);
    if database.is_file() {
        let known: Option<Seeded> = std::fs::read(&side)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match known {
            Some(seeded) if seeded.matches(args) => return Ok((seeded, None)),
            Some(_) => eprintln!(
                "chatgate-bench: {} was seeded with other options: seeding it again",
                database.display()
            ),
            None => eprintln!(
                "chatgate-bench: {} has no valid {}: seeding it again",
                database.display(),
                side.display()
            ),
        }
    }
    let _ = std::fs::remove_file(&side);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    let started = Instant::now();
    let first = spawn::chatgate_sqlite_at(&args.target, database).await?;
    let (admin, channel) = match first_start(&first) {
        Ok(found) => found,
        Err(err) => {
            first.shutdown().await;
            return Err(err);
        }
    };
    first.shutdown().await;
    let mut db = Db::sqlite(database).await?;
    let ids = admin_ids(&mut db, &admin.email).await?;
    let seeded = new_seeded(args, admin, channel, ids);
    seed(
        &mut db,
        layout,
        &seeded,
        chrono::Utc::now().timestamp_millis(),
    )
    .await?;
    db.close().await?;
    std::fs::write(&side, serde_json::to_vec_pretty(&seeded)?)
        .with_context(|| format!("cannot write {}", side.display()))?;
    Ok((seeded, Some(started.elapsed().as_secs_f64())))
}

/// One page the console serves.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSpec {
    pub name: String,
    pub path: String,
}

/// The pages measured: what an agent opens, and the fragments the page's
/// script fetches (`static/console.js`).
pub fn pages(layout: &Layout, seeded: &Seeded) -> Vec<PageSpec> {
    let ids = seeded.ids;
    let huge = ids.room(layout.huge);
    let huge_n = layout.rooms[layout.huge].messages;
    let typical = ids.room(layout.typical);
    let deep = layout.last_closed_page().max(1);
    let page = |name: String, path: String| PageSpec { name, path };
    let mut pages = vec![
        page("inbox".into(), "/console/inbox".into()),
        page(
            format!("inbox, closed page {deep}"),
            format!("/console/inbox?closed_page={deep}"),
        ),
        page(
            format!("conversation, {huge_n} messages"),
            format!("/console/rooms/{huge}"),
        ),
        page(
            format!(
                "conversation, {} messages",
                layout.rooms[layout.typical].messages
            ),
            format!("/console/rooms/{typical}"),
        ),
        page(
            "older messages (before_seq)".into(),
            format!(
                "/console/rooms/{huge}/messages?before_seq={}",
                (huge_n / 2).max(1)
            ),
        ),
        page(
            "new messages (after_seq)".into(),
            format!(
                "/console/rooms/{huge}/messages?after_seq={}",
                huge_n.saturating_sub(1)
            ),
        ),
        page(
            "lists fragment".into(),
            format!("/console/fragments/lists?current={huge}"),
        ),
        page(
            format!("lists fragment, closed page {deep}"),
            format!("/console/fragments/lists?current={huge}&closed_page={deep}"),
        ),
    ];
    if let Some(team) = layout.team {
        pages.push(page(
            "team room".into(),
            format!("/console/rooms/{}", ids.room(team)),
        ));
    }
    pages.extend([
        page("team (colleagues)".into(), "/console/colleagues".into()),
        page("channels".into(), "/console/admin/channels".into()),
        page(
            "channel settings".into(),
            format!("/console/admin/channels/{}", seeded.channel),
        ),
        page("agents".into(), "/console/admin/agents".into()),
    ]);
    pages
}

/// The rows a console page shows: rooms in lists, messages, people, table rows.
pub fn rows_in(html: &str) -> usize {
    let tables = html
        .matches("<tr")
        .count()
        .saturating_sub(html.matches("<thead>").count());
    ["data-room=\"", "data-seq=\"", "data-agent=\""]
        .iter()
        .map(|marker| html.matches(marker).count())
        .sum::<usize>()
        + tables
}

/// The value of the first `name="<field>" value="..."` of a form.
fn field_value(html: &str, field: &str) -> Option<String> {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// A browser's cookies, kept by hand.
#[derive(Default)]
struct Cookies(HashMap<String, String>);

impl Cookies {
    fn take(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(set) = set.to_str() else { continue };
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.0.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    fn header(&self) -> String {
        let mut pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        pairs.join("; ")
    }
}

/// Logs into the console (form with CSRF field, then 303); returns the
/// Cookie header of the session.
pub(crate) async fn console_login(
    http: &reqwest::Client,
    base: &str,
    admin: &AdminLogin,
) -> Result<String> {
    let mut cookies = Cookies::default();
    let form = http.get(format!("{base}/console/login")).send().await?;
    cookies.take(&form);
    let html = form.error_for_status()?.text().await?;
    let csrf =
        field_value(&html, "csrf").ok_or_else(|| anyhow!("no csrf field on the login form"))?;
    let reply = http
        .post(format!("{base}/console/login"))
        .header(reqwest::header::COOKIE, cookies.header())
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", admin.email.as_str()),
            ("password", admin.password.as_str()),
        ])
        .send()
        .await?;
    cookies.take(&reply);
    let location = reply
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if reply.status().as_u16() != 303 || location != "/console/inbox" {
        bail!(
            "console login as {} answered {} (location {location:?})",
            admin.email,
            reply.status()
        );
    }
    Ok(cookies.header())
}

/// One page's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PageRow {
    pub name: String,
    pub path: String,
    pub requests: u64,
    pub failed: u64,
    pub latency_ms: Percentiles,
    /// Rooms, messages, people or table rows in the page ([`rows_in`]).
    pub rows: usize,
    pub bytes: usize,
    pub over_budget: bool,
}

/// One console run.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleReport {
    pub target: String,
    pub rooms: u32,
    pub messages: u64,
    pub agents: u32,
    pub admin_closed_rooms: u64,
    /// Seconds the seeding took (first start included), `None` when reused.
    pub seed_secs: Option<f64>,
    pub requests: u32,
    pub concurrency: u32,
    pub budget_ms: f64,
    pub pages: Vec<PageRow>,
    pub error_samples: Vec<String>,
}

impl ConsoleReport {
    fn failed(&self) -> bool {
        self.pages.iter().any(|p| p.failed > 0)
    }
}

/// Requests `page` `requests` times (plus the warm-up), `concurrency` at once.
async fn measure(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    page: &PageSpec,
    args: &ConsoleArgs,
    samples: &Arc<Mutex<Vec<String>>>,
) -> Result<PageRow> {
    let url = format!("{base}{}", page.path);
    let get = |http: reqwest::Client, url: String, cookie: String| async move {
        let started = Instant::now();
        let reply = http
            .get(&url)
            .header(reqwest::header::COOKIE, cookie)
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await?;
        anyhow::Ok((started.elapsed(), status, body))
    };
    let mut shown = (0, 0);
    for _ in 0..WARMUP {
        let (_, status, body) = get(http.clone(), url.clone(), cookie.to_string()).await?;
        if status.is_success() {
            shown = (rows_in(&body), body.len());
        }
    }
    let histogram = Arc::new(Mutex::new(report::histogram()));
    let failed = Arc::new(AtomicU32::new(0));
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, url, cookie) = (http.clone(), url.clone(), cookie.to_string());
        let (histogram, failed, next, samples) = (
            histogram.clone(),
            failed.clone(),
            next.clone(),
            samples.clone(),
        );
        let requests = args.requests;
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                match get(http.clone(), url.clone(), cookie.clone()).await {
                    Ok((took, status, body)) if status.is_success() => {
                        let _ = body;
                        report::record(&histogram, took.as_micros() as i64);
                    }
                    outcome => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let what = match outcome {
                            Ok((_, status, body)) => {
                                format!("{url}: {status}: {}", crate::client::clip(&body))
                            }
                            Err(err) => format!("{url}: {err:#}"),
                        };
                        let mut samples = samples.lock().expect("samples lock");
                        if samples.len() < MAX_SAMPLES {
                            samples.push(what);
                        }
                    }
                }
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a request task panicked")?;
    }
    let latency = Percentiles::of(&histogram.lock().expect("histogram lock"));
    Ok(PageRow {
        name: page.name.clone(),
        path: page.path.clone(),
        requests: u64::from(args.requests),
        failed: u64::from(failed.load(Ordering::Relaxed)),
        over_budget: latency.p99 > args.budget_ms,
        latency_ms: latency,
        rows: shown.0,
        bytes: shown.1,
    })
}

/// Logs in and measures every page.
async fn measure_all(
    deployment: &Deployment,
    admin: &AdminLogin,
    pages: &[PageSpec],
    args: &ConsoleArgs,
) -> Result<(Vec<PageRow>, Vec<String>)> {
    let base = deployment.spec.front.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.concurrency as usize)
        .timeout(Duration::from_secs(60))
        .build()?;
    let cookie = console_login(&http, &base, admin).await?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let mut rows = Vec::new();
    for page in pages {
        rows.push(measure(&http, &base, &cookie, page, args, &samples).await?);
    }
    let samples = samples.lock().expect("samples lock").clone();
    Ok((rows, samples))
}

/// Prints the page table.
fn print(report: &ConsoleReport) {
    println!();
    println!(
        "console: {} rooms, {} messages, {} agents (admin in {} closed rooms); {} requests per page, {} at once",
        report.rooms,
        report.messages,
        report.agents,
        report.admin_closed_rooms,
        report.requests,
        report.concurrency
    );
    println!(
        "{}, database {}",
        report.target,
        report
            .seed_secs
            .map_or("reused".into(), |s| format!("seeded in {s:.1} s"))
    );
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>6}",
        "page", "p50 ms", "p95 ms", "p99 ms", "max ms", "rows", "KiB", "failed"
    );
    for page in &report.pages {
        println!(
            "{:<36} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8.1} {:>6}{}",
            page.name,
            page.latency_ms.p50,
            page.latency_ms.p95,
            page.latency_ms.p99,
            page.latency_ms.max,
            page.rows,
            page.bytes as f64 / 1024.0,
            page.failed,
            if page.over_budget {
                format!("  p99 over {} ms", report.budget_ms)
            } else {
                String::new()
            }
        );
    }
    for sample in &report.error_samples {
        println!("    {sample}");
    }
}

/// `console`: seeds (or reuses) a database, measures every page, prints,
/// writes the JSON; `Ok(false)` when a request failed.
pub async fn run(args: &ConsoleArgs) -> Result<bool> {
    if args.target.server.is_some() {
        bail!("the console scenario seeds its own database: --server is not supported");
    }
    let layout = Layout::new(args.rooms, args.messages, args.agents)?;
    // Without --reuse the SQLite file lives in a scratch directory, removed
    // at the end of the run (after the server).
    let mut scratch = None;
    let (deployment, seeded, seed_secs) = match args.target.backend {
        Backend::Sqlite => {
            let database = match &args.reuse {
                Some(path) => path.clone(),
                None => scratch
                    .insert(ScratchDir::create()?)
                    .path()
                    .join("console.db"),
            };
            let (seeded, seed_secs) = sqlite_database(args, &database, &layout).await?;
            let mut deployment = spawn::chatgate_sqlite_at(&args.target, &database).await?;
            deployment.spec.admin = Some(seeded.admin());
            deployment.spec.channel = Some(seeded.channel);
            (deployment, seeded, seed_secs)
        }
        Backend::Postgres => {
            if args.reuse.is_some() {
                bail!("--reuse is for SQLite files; a PostgreSQL run seeds a fresh schema");
            }
            let started = Instant::now();
            let deployment = spawn::chatgate(&args.target, true).await?;
            let seeded = async {
                let (admin, channel) = first_start(&deployment)?;
                let url = deployment
                    .postgres_url()
                    .ok_or_else(|| anyhow!("no PostgreSQL schema"))?;
                let mut db = Db::postgres(&url).await?;
                let ids = admin_ids(&mut db, &admin.email).await?;
                let seeded = new_seeded(args, admin, channel, ids);
                seed(
                    &mut db,
                    &layout,
                    &seeded,
                    chrono::Utc::now().timestamp_millis(),
                )
                .await?;
                db.execute("ANALYZE").await?;
                db.close().await?;
                anyhow::Ok(seeded)
            }
            .await;
            match seeded {
                Ok(seeded) => (deployment, seeded, Some(started.elapsed().as_secs_f64())),
                Err(err) => {
                    deployment.shutdown().await;
                    return Err(err);
                }
            }
        }
    };
    let pages = pages(&layout, &seeded);
    let measured = measure_all(&deployment, &seeded.admin(), &pages, args).await;
    let target = deployment.spec.label.clone();
    deployment.shutdown().await;
    drop(scratch);
    let (rows, error_samples) = measured?;
    let report = ConsoleReport {
        target,
        rooms: args.rooms,
        messages: args.messages,
        agents: args.agents,
        admin_closed_rooms: layout.admin_closed(),
        seed_secs,
        requests: args.requests,
        concurrency: args.concurrency,
        budget_ms: args.budget_ms,
        pages: rows,
        error_samples,
    };
    print(&report);
    if let Some(path) = &args.json {
        report::write_json(path, "console", args, &[&report])?;
    }
    if report.failed() {
        eprintln!("chatgate-bench: FAILED: console pages answered other than 2xx (details above)");
    }
    Ok(!report.failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_add_up_fall_with_rank_and_give_every_room_one() {
        let counts = message_counts(10_000, 1_000_000);
        assert_eq!(counts.iter().sum::<u64>(), 1_000_000);
        assert!(counts.iter().all(|&c| c >= 1));
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "falling with rank");
        assert!(counts[0] > 90_000, "{}", counts[0]);
        assert_eq!(counts.iter().filter(|&&c| c > 10_000).count(), 10);
        assert_eq!(message_counts(3, 3), [1, 1, 1]);
        assert!(message_counts(0, 5).is_empty());
    }

    #[test]
    fn the_default_layout_has_the_mix_the_console_is_measured_on() {
        let layout = Layout::new(10_000, 1_000_000, 20).unwrap();
        let count = |kind| layout.rooms.iter().filter(|r| r.kind == kind).count();
        assert_eq!(count(Kind::Team), 10);
        assert_eq!(count(Kind::Queued), 50);
        assert_eq!(count(Kind::Open), 300);
        assert_eq!(count(Kind::Closed), 9_640);
        let total: u64 = layout.rooms.iter().map(|r| r.messages).sum();
        assert_eq!(total, 1_000_000);
        let huge = &layout.rooms[layout.huge];
        assert_eq!((huge.kind, huge.owner), (Kind::Open, Some(Owner::Admin)));
        assert_eq!(
            huge.messages,
            layout.rooms.iter().map(|r| r.messages).max().unwrap()
        );
        let typical = &layout.rooms[layout.typical];
        assert_eq!(typical.owner, Some(Owner::Admin));
        assert!(typical.messages < 1_000, "{}", typical.messages);
        assert!(layout.admin_closed() > 4_000, "{}", layout.admin_closed());
        assert_eq!(layout.last_closed_page(), (layout.admin_closed() - 1) / 100);
        // Queued rooms have no owner and nothing read; closed ones are read.
        for r in &layout.rooms {
            match r.kind {
                Kind::Queued => assert_eq!((r.owner, r.last_read), (None, 0)),
                Kind::Closed => assert_eq!(r.last_read, r.messages),
                _ => assert!(r.owner.is_some() && r.last_read <= r.messages),
            }
        }
        // Rooms of both the admin and the agents.
        assert!(layout
            .rooms
            .iter()
            .any(|r| r.kind == Kind::Open && r.owner == Some(Owner::Agent(3))));
    }

    #[test]
    fn a_small_layout_still_has_every_kind_and_no_agents_means_all_the_admins() {
        let layout = Layout::new(50, 2_000, 20).unwrap();
        for kind in [Kind::Team, Kind::Queued, Kind::Open, Kind::Closed] {
            assert!(layout.rooms.iter().any(|r| r.kind == kind), "{kind:?}");
        }
        let alone = Layout::new(50, 2_000, 0).unwrap();
        assert!(alone
            .rooms
            .iter()
            .all(|r| r.owner.is_none() || r.owner == Some(Owner::Admin)));
        assert_eq!(alone.team, None);
        assert!(Layout::new(3, 100, 1).is_err());
        assert!(Layout::new(100, 99, 1).is_err());
    }

    #[test]
    fn ids_sort_in_insertion_order_and_are_uuids() {
        let ids = Ids {
            prefix: 0xdead_beef,
        };
        let rooms: Vec<String> = [0, 1, 15, 16, 65_535, 65_536, 999_999]
            .iter()
            .map(|&k| ids.room(k))
            .collect();
        assert!(rooms.windows(2).all(|w| w[0] < w[1]), "{rooms:?}");
        for id in rooms.iter().chain([&ids.agent(0), &ids.agent(19)]) {
            id.parse::<Uuid>().unwrap();
        }
        // A message id is the room's first 19 characters, "9000-" and 12 hex digits.
        let message = format!("{}9000-{:012x}", &ids.room(7)[..19], 100_000);
        message.parse::<Uuid>().unwrap();
        assert_ne!(ids.room(1), ids.room(1 << 16));
    }

    #[test]
    fn pages_cover_the_inbox_the_conversation_its_fragments_and_the_admin_pages() {
        let layout = Layout::new(10_000, 1_000_000, 20).unwrap();
        let seeded = Seeded {
            version: SEED_VERSION,
            rooms: 10_000,
            messages: 1_000_000,
            agents: 20,
            ids: Ids { prefix: 1 },
            tenant: "t".into(),
            channel: Uuid::from_u128(9),
            admin_id: "a".into(),
            admin_email: "admin@example.com".into(),
            admin_password: "secret".into(),
        };
        let paths: Vec<String> = pages(&layout, &seeded)
            .into_iter()
            .map(|p| p.path)
            .collect();
        let deep = layout.last_closed_page();
        assert!(deep > 40, "{deep}");
        let huge = seeded.ids.room(layout.huge);
        for expected in [
            "/console/inbox".to_string(),
            format!("/console/inbox?closed_page={deep}"),
            format!("/console/rooms/{huge}"),
            format!("/console/rooms/{huge}/messages?before_seq="),
            format!("/console/fragments/lists?current={huge}&closed_page={deep}"),
            "/console/colleagues".into(),
            "/console/admin/channels".into(),
            format!("/console/admin/channels/{}", Uuid::from_u128(9)),
            "/console/admin/agents".into(),
        ] {
            assert!(
                paths.iter().any(|p| p.starts_with(&expected)),
                "{expected} in {paths:?}"
            );
        }
    }

    #[test]
    fn rows_are_counted_from_the_markers_of_each_page() {
        let html = r#"<li><a data-room="1"></a></li><li><a data-room="2"></a></li>
            <article data-id="x" data-seq="4"></article>
            <table><thead><tr><th>Name</th></tr></thead><tbody><tr><td>a</td></tr></tbody></table>
            <li class="person" data-agent="z"></li>"#;
        assert_eq!(rows_in(html), 5);
        assert_eq!(rows_in("<p>nothing</p>"), 0);
    }

    #[test]
    fn the_login_forms_csrf_field_is_found() {
        let html =
            r#"<form><input type="hidden" name="csrf" value="abc123"><input name="email"></form>"#;
        assert_eq!(field_value(html, "csrf").as_deref(), Some("abc123"));
        assert_eq!(field_value(html, "other"), None);
    }

    #[test]
    fn the_sidecar_sits_next_to_the_database_and_must_match_the_options() {
        assert_eq!(
            sidecar(Path::new("/tmp/x/console.db")),
            PathBuf::from("/tmp/x/console.db.seed.json")
        );
        assert!(lit("it's").is_err());
        assert_eq!(lit("abc").unwrap(), "'abc'");
        assert_eq!(opt_lit(None).unwrap(), "NULL");
    }
}
