//! The embedded default: one SQLite file, WAL, `synchronous=FULL` so a commit
//! survives power loss. One writer connection (SQLite has one writer anyway;
//! a pool of writers would only trade queueing for SQLITE_BUSY) and a few
//! reader connections that WAL lets run beside it. Appends are group
//! committed (see [`super::batch`]), so one fsync covers every message that
//! arrived while the previous one ran.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::batch::Appender;
use super::sql::lane::Lane;
use super::sql::{sql_store, Sql};
use super::{StoreError, StoreResult};

/// Page cache of each reader connection, in KiB (negative: SQLite's unit for KiB).
const READ_CACHE_KIB: i64 = -32 * 1024;

pub struct SqliteStore {
    /// The one writer connection and the readers.
    sql: Sql<sqlx::Sqlite>,
    /// Group commit on the one writer connection: a single lane.
    appender: Appender,
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
        let options = SqliteConnectOptions::from_str(&url)?;
        if !in_memory(&url) {
            keep_private(options.get_filename()).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot make the database file {} private: {e}",
                    options.get_filename().display()
                ))
            })?;
        }
        let options = options
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
        // Both lanes borrow the one write connection per batch (see `Lane`).
        let shared = || Lane::Shared(write.clone());
        let appender = Appender::start(
            1,
            shared,
            |mut lane, batch: Vec<crate::store::batch::Write>| async move {
                let stored = Sql::write_batch(&mut lane, batch).await;
                (lane, stored)
            },
        );
        Ok(SqliteStore {
            sql: Sql { read, write },
            appender,
        })
    }
}

/// Whether a `sqlite:` URL names a database that lives in memory only.
fn in_memory(url: &str) -> bool {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    path.ends_with(":memory:") || query.split('&').any(|p| p == "mode=memory")
}

/// The files SQLite keeps beside a database: the write-ahead log, its
/// shared-memory index, and the rollback journal of other journal modes.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The database holds every conversation and the JWT secret (anyone who
/// reads it can forge an admin token), so it is readable by its owner
/// only. A missing file is created empty with mode 0600 before SQLite opens
/// it (SQLite makes an empty file a database, and creates its `-wal` and
/// `-shm` with the database's mode); an existing database, or a side file
/// of it, that others may read or write is tightened, and the log says so.
#[cfg(unix)]
fn keep_private(db: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let side = SIDE_FILES.map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    });
    for path in std::iter::once(db).chain(side.iter().map(|p| p.as_path())) {
        let mode = match std::fs::metadata(path) {
            Ok(meta) => meta.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            let private = mode & 0o700;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
            tracing::warn!(
                file = %path.display(),
                was = format!("{mode:o}"),
                now = format!("{private:o}"),
                "the database file was readable by other users; made it private to its owner"
            );
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_private(_db: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

sql_store!(SqliteStore);
