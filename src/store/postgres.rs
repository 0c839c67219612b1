//! PostgreSQL: the store for several instances sharing one database. The SQL
//! is the shared set in [`super::sql`]; only connecting and migrating live here.
//!
//! Concurrency relies on PostgreSQL's defaults (READ COMMITTED, row locks):
//! - migrations: sqlx's migrator holds `pg_advisory_lock` (keyed on the
//!   database name) around the whole run, so instances starting at once apply
//!   each migration exactly once; the others wait, then find nothing to do;
//! - `append_message`: the `UPDATE ... last_seq + k` row lock queues writers of
//!   one conversation across all instances, and batches lock conversations
//!   in id order, so they cannot deadlock (see `sql/append.rs`);
//! - `bootstrap` / `jwt_secret`: `INSERT ... ON CONFLICT DO NOTHING` on a
//!   unique key waits for a concurrent inserter's commit, so exactly one wins.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::batch::Appender;
use super::sql::lane::Lane;
use super::sql::{sql_store, Sql};
use super::StoreResult;

/// Pooled connections per instance, for everything but the group-commit
/// lanes (which keep one each: `APPEND_LANES` per instance). Each
/// request holds one only for its few statements; a busy instance queues on
/// the pool rather than exhausting the server's `max_connections` (100 by
/// default: five instances fit) when several instances run. A bigger pool
/// costs the database CPU even when idle connections are plenty: the pool
/// hands them out in turn, so every one of its server processes is woken
/// and cold in turn (with the lanes in a pool of 20, STOMP chat at 5,000/s
/// took 15% more database CPU than with 10).
const POOL_SIZE: u32 = 12;

/// Appending lanes (group commit, see [`super::batch`]), each with a
/// connection of its own; DELIVERED marks ride with the appends. Fewer
/// lanes make larger batches: fewer transactions for the database to run
/// and commit, and fewer of them waiting on each other's conversation
/// rows (a visitor writes through one instance while the agent answers
/// through another). Two against four, PostgreSQL + Redis with two
/// instances (README, "Two append lanes"): STOMP chat p50 ×0.78 at
/// 2,500/s and ×0.82 at 5,000/s, server CPU ×0.93–0.95; the agents'
/// reply → DELIVERED p99 69–113 → 62–82 ms. One lane was better still for
/// the agents but cost the chat at 2,500/s 14% of its p50.
const APPEND_LANES: usize = 2;

/// How long a caller waits for a connection unless configured
/// (`CHATGATE_DATABASE_ACQUIRE_TIMEOUT_MS`).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct PgStore {
    /// `read` and `write` are the same pool: PostgreSQL has no single-writer
    /// limit, so the split that SQLite needs buys nothing here.
    sql: Sql<sqlx::Postgres>,
    appender: Appender,
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`; libpq-style query
    /// parameters such as `sslmode` and `options` apply) and migrates it.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        PgStore::open_with(url, DEFAULT_ACQUIRE_TIMEOUT).await
    }

    /// `open`, with how long a caller waits for a pooled connection. While
    /// the database is down no connection can be opened, and sqlx keeps
    /// retrying until this timeout: it is how long a request waits before
    /// it is answered 503 `store-unavailable`.
    pub async fn open_with(url: &str, acquire_timeout: Duration) -> StoreResult<PgStore> {
        let options = PgConnectOptions::from_str(url)?;
        // No ping before each use: a round trip per query, on the hot path.
        // A connection broken meanwhile (a database restart) fails its query
        // and is replaced; an append that fails is answered with an error,
        // so nothing acknowledged is lost.
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(acquire_timeout)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        // Each lane writes on a connection of its own (see `Lane`).
        let own = || Lane::own(pool.clone());
        let appender = Appender::start(
            APPEND_LANES,
            own,
            |mut lane, batch: Vec<crate::store::batch::Write>| async move {
                let stored = Sql::write_batch(&mut lane, batch).await;
                (lane, stored)
            },
        );
        Ok(PgStore {
            sql: Sql {
                write: pool.clone(),
                read: pool,
            },
            appender,
        })
    }
}

sql_store!(PgStore);
