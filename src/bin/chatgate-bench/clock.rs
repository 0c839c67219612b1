//! Time shared by every bench process.
//!
//! Latency is measured across processes (a message planned by one worker is
//! received by another), so every timestamp is Unix time in microseconds.
//! Each process reads the wall clock once and advances it with the monotonic
//! clock, so an NTP step during a run cannot produce negative or inflated
//! latencies inside one process.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

static ANCHOR: OnceLock<(Instant, i64)> = OnceLock::new();

fn anchor() -> (Instant, i64) {
    *ANCHOR.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        (Instant::now(), unix)
    })
}

/// Now, as Unix microseconds.
pub fn now_micros() -> i64 {
    let (instant, unix) = anchor();
    unix + instant.elapsed().as_micros() as i64
}

/// The local instant at which [`now_micros`] reads `unix_micros`.
pub fn instant_at(unix_micros: i64) -> Instant {
    let (instant, unix) = anchor();
    let offset = unix_micros - unix;
    if offset >= 0 {
        instant + Duration::from_micros(offset as u64)
    } else {
        instant
            .checked_sub(Duration::from_micros(offset.unsigned_abs()))
            .unwrap_or(instant)
    }
}
