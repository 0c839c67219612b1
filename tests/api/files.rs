//! Files that hold secrets: the SQLite database (every conversation, and the
//! JWT secret that signs admin tokens) and its `-wal`/`-shm` are readable by
//! their owner only, whatever the backend under test (the embedded store is
//! what these tests open).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chatgate::Config;

use crate::helpers::{TestApp, TestDatabase};

/// The database file and the two SQLite keeps beside it in WAL mode.
fn database_files(db: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A server on an SQLite file at `db`, in `dir`.
async fn start_on(
    db: &Path,
    dir: tempfile::TempDir,
    first: Option<chatgate::app::FirstStart>,
) -> TestApp {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.display().to_string(),
        ..Config::default()
    };
    TestApp::start(config, TestDatabase { dir, schema: None }, first).await
}

/// The umask most hosts have (022: what is created is world-readable unless
/// the creator says otherwise), so these tests see what an operator would.
fn usual_umask() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: umask only swaps the process's file mode mask.
    unsafe {
        libc::umask(0o022);
    }
}

/// Writes through the server, so the write-ahead log is in use.
async fn write_something(app: &TestApp) {
    let visitor = app.visitor().await;
    let reply = app.send(&visitor.token, "a secret conversation").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn a_fresh_database_and_its_wal_and_shm_are_readable_by_their_owner_only() {
    usual_umask();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fresh.db");
    assert!(!db.exists());
    let app = start_on(&db, dir, None).await;
    write_something(&app).await;
    for file in database_files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn an_existing_database_that_others_could_read_is_made_private_at_start() {
    let dir = tempfile::tempdir().unwrap();
    usual_umask();
    let db = dir.path().join("old.db");
    let app = start_on(&db, dir, None).await;
    write_something(&app).await;
    let (_, database, first) = app.stop().await;
    // As an older version (or a copy with `cp`) left them: world-readable.
    let mut loosened = 0;
    for file in database_files(&db) {
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            loosened += 1;
        }
    }
    assert!(loosened >= 1);

    let app = start_on(&db, database.dir, Some(first)).await;
    write_something(&app).await;
    for file in database_files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
