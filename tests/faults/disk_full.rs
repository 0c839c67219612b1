//! The embedded default (SQLite) on a disk that fills up under load.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clients::{http, Agent};
use crate::load::{answered_visitors, unthrottled, Door, Load, Targets};
use crate::process::{Chatgate, Tmpfs};

/// The filesystem holding the database: room for the schema and a few
/// thousand messages, small enough to fill in a moment.
const DISK_BYTES: u64 = 24 * 1024 * 1024;

/// Keeps the filesystem of `path` full until `stop`: writes zeros into
/// `path` until the filesystem refuses, and takes any space freed meanwhile
/// (SQLite gives some back when a failed write rolls back). Returns how many
/// bytes it took.
fn keep_full(path: &Path, stop: &AtomicBool) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler file");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    while !stop.load(Ordering::SeqCst) {
        match file.write(&chunk) {
            Ok(n) if n > 0 => written += n as u64,
            _ => {
                // Full: take the last bytes one at a time, then look again soon.
                while let Ok(1) = file.write(&[0]) {
                    written += 1;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    written
}

/// The thread running `keep_full`; stopped when dropped (a failing test included).
struct Filler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Filler {
    fn start(path: std::path::PathBuf) -> Filler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || keep_full(&path, &flag));
        Filler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops filling; returns how many bytes the filler held.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map(|t| t.join().expect("filler"))
            .unwrap_or(0)
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_with_503_and_service_resumes_by_itself_losing_nothing() {
    let disk = Tmpfs::mount(DISK_BYTES);
    let db = disk.path().join("chatgate.db");
    let mut env = unthrottled();
    env.push(("CHATGATE_DATABASE_URL", db.display().to_string()));
    let (mut server, first) = Chatgate::start("sqlite", &env);
    let first = first.expect("a first start prints the admin");
    let base = server.base.clone();
    let http = http();
    let admin = Agent::login(&http, &base, &first.admin_email, &first.admin_password).await;
    let visitors = answered_visitors(&base, &first.channel_id, &admin, 4).await;
    let (over_http, over_stomp) = visitors.split_at(2);

    let load = Load::start(
        Targets::new(vec![base.clone()]),
        over_http,
        over_stomp,
        &admin,
    );
    load.wait_all_acked(10, Duration::from_secs(30), "acks before the disk fills")
        .await;

    let filler = disk.path().join("filler");
    let filling = Filler::start(filler.clone());
    // Every door refuses with the contract's error while the disk is full.
    let within = Duration::from_secs(60);
    for door in [Door::HttpVisitor, Door::StompVisitor, Door::AgentReply] {
        load.wait_for(door, |c| c.refused, 3, within, "store-unavailable refusals")
            .await;
    }
    let taken = filling.stop();
    println!("disk full: the filler took {taken} bytes");
    std::fs::remove_file(&filler).expect("filler removed");

    // No restart: the same process takes writes again.
    load.wait_all_acked(10, Duration::from_secs(30), "acks once space is back")
        .await;
    let ledger = load.stop().await;
    ledger.assert_no_unexpected();
    ledger
        .verify(
            "disk full (SQLite)",
            std::slice::from_ref(&base),
            &visitors,
            &admin,
        )
        .await;

    server.terminate().await;
    let integrity = integrity_check(&db).await;
    assert_eq!(
        integrity,
        ["ok"],
        "PRAGMA integrity_check after the disk was full"
    );
    drop(disk);
}

/// `PRAGMA integrity_check` of the database file, opened by a client of its own.
async fn integrity_check(db: &Path) -> Vec<String> {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("the database opens");
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check runs");
    let answer = rows
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>();
    let _ = conn.close().await;
    answer
}
