//! The embedded default: one SQLite file, WAL, `synchronous=FULL` so a commit
//! survives power loss. One writer connection (SQLite has one writer anyway;
//! a pool of writers would only trade queueing for SQLITE_BUSY) and a few
//! reader connections that WAL lets run beside it. Appends are group
//! committed (see [`super::batch`]), so one fsync covers every message that
//! arrived while the previous one ran.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::batch::{Appender, Batcher};
use super::sql::sql_store;
use super::StoreResult;

/// Page cache of each reader connection, in KiB (negative: SQLite's unit for KiB).
const READ_CACHE_KIB: i64 = -32 * 1024;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Group commit on the one writer connection: a single lane.
    appender: Appender,
    /// DELIVERED marks, group committed.
    delivered: Batcher<
        (crate::domain::MessageId, crate::domain::TenantId),
        Option<crate::domain::Message>,
    >,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`, a file
    /// path or a `sqlite://` URL.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No ping before each use: the connection is a file handle in this
        // process, and the ping was a thread round trip per query.
        //
        // A writer that comes back from a failed transaction is closed, and
        // the next write opens a fresh one. On SQLITE_FULL or SQLITE_IOERR
        // SQLite may roll the transaction back by itself; sqlx's ROLLBACK
        // then fails and its transaction depth stays one too high, so the
        // next "transaction" became a SAVEPOINT that a later failure left
        // open for good: every write after it was acknowledged but never
        // committed (found by the disk-full fault test: 200s with seqs that
        // no reader saw and a restart lost). Closing the connection rolls
        // back whatever it held; a committed or rolled-back transaction
        // leaves depth 0 and keeps the connection.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&write).await?;
        // Readers get a bigger page cache than SQLite's 2 MiB: listing an
        // agent's rooms walks its memberships and their rooms (about 6 MiB of
        // pages for 10,000 rooms), and with the default every list re-read
        // them from the OS. The cache grows only as pages are read.
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(
                options
                    .read_only(true)
                    .pragma("cache_size", READ_CACHE_KIB.to_string()),
            )
            .await?;
        let pool = write.clone();
        let appender = Appender::start(1, move |batch: Vec<crate::store::Queued>| {
            let pool = pool.clone();
            async move { SqliteStore::append_batch(&pool, batch).await }
        });
        let pool = write.clone();
        let delivered = Batcher::start(1, move |ids| {
            let pool = pool.clone();
            async move { SqliteStore::deliver_batch(&pool, ids).await }
        });
        Ok(SqliteStore {
            write,
            read,
            appender,
            delivered,
        })
    }
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    lock_rows: None::<&str>,
    params: super::batch::Params::Anonymous
);
