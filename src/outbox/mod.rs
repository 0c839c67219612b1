//! Durable side effects (architecture.md, "Side effects that leave the
//! process"): the outbox table's worker, and mail (SMTP) in [`mail`].
//!
//! Rows are written by services in the transaction of the change they
//! report (`MessageStore::append_message_with`: an agent's reply and its
//! offline email are one group commit; `request_transcript`), or alone
//! (`OutboxStore::enqueue_outbox`), and sent here, never while a request
//! waits. Each instance runs one [`Worker`]. On SQLite its round first
//! takes the webhook events the changes appended to the webhook log
//! (`OutboxStore::webhook_log_tail`: read by position without the writer,
//! recorded in one short transaction; an event not sent at its first try
//! moves into the outbox). Then, on every backend, it:
//! - claims due rows for a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
//!   the single writer on SQLite), so several instances never send the
//!   same row while its lease holds;
//! - hands each to the [`Handler`] of its kind (`email`, `webhook`), and
//!   records what happened: sent, failed (attempts,
//!   `last_error`, next try after an exponential backoff with jitter), not
//!   due yet (a handler may postpone), or dropped; a round's outcomes are
//!   recorded in one transaction, so the worker's writes do not grow with
//!   its rows (the chat's group commits share the database's writer);
//! - wakes every `outbox_poll_ms`, and at once when its own instance adds a
//!   row due now.
//!
//! A row survives everything but its delivery: the SMTP server down (tried
//! again until it returns, up to [`MAX_ATTEMPTS`]), or the process killed
//! mid-send (the lease lapses and the row is claimed again, so a receiver
//! may see it twice: every row carries its stable id, the email's
//! `Message-ID`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::Notify;

use crate::domain::time::now_ms;
use crate::store::{Answer, Emailed, Finished, OutboxOutcome, OutboxRow, OutboxStore};

pub mod mail;
pub mod webhook;

/// Failed attempts after which a row is dropped (with the default base of
/// 5 s and the one-hour cap, about two days of trying).
pub const MAX_ATTEMPTS: i64 = 60;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 3_600_000;
/// How long a claim holds by default (`CHATGATE_OUTBOX_LEASE_MS`): a send
/// that takes longer may be made twice.
pub const LEASE_MS: i64 = 120_000;
/// Rows claimed per round: a round costs two commits (its claim and its
/// outcomes) whatever its size, and on SQLite every commit waits its turn
/// with the chat's group commits, so rounds are few and large.
const BATCH: u32 = 256;

/// How often, while a round lasts, one more of its runs may be delivered
/// at once (up to the worker's concurrency). In `chatgate-bench webhooks`
/// at 1,000 messages/s on SQLite (a receiver answering at once), 10 ms
/// put the chat's p99 at ×1.21 of the run without webhooks, where starting
/// a round's 16 deliveries at once put it at ×1.35 (medians of 9 and 24
/// runs of 45 s; README, "A round's deliveries paced").
const RAMP: Duration = Duration::from_millis(10);

/// How many of a round's runs may be in flight: at first one, or the
/// round's share of the worker's concurrency when it is a large part of a
/// full batch (a backlog); one more every [`RAMP`] the round lasts; at most
/// the worker's concurrency.
struct Pace {
    started: tokio::time::Instant,
    first: usize,
    concurrency: usize,
}

impl Pace {
    fn new(runs: usize, concurrency: usize) -> Pace {
        let concurrency = concurrency.max(1);
        Pace {
            started: tokio::time::Instant::now(),
            first: (runs.saturating_mul(concurrency) / BATCH as usize).clamp(1, concurrency),
            concurrency,
        }
    }

    /// How many may be in flight `elapsed` into the round.
    fn allowed(&self, elapsed: Duration) -> usize {
        let steps = usize::try_from(elapsed.as_micros() / RAMP.as_micros()).unwrap_or(usize::MAX);
        steps.saturating_add(self.first).min(self.concurrency)
    }

    /// When one more than `allowed` may be in flight; `None` when no more may.
    fn widen_at(&self, allowed: usize) -> Option<tokio::time::Instant> {
        let step = u32::try_from(allowed.saturating_sub(self.first) + 1).ok()?;
        (allowed < self.concurrency).then(|| self.started + RAMP.saturating_mul(step))
    }
}

/// How long a woken worker gathers rows before its round.
const GATHER: Duration = Duration::from_millis(25);

/// What a handler did with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Done (sent, or nothing needed sending any more); what the email
    /// covered is recorded with the outcome, in the round's transaction.
    Sent(Option<Emailed>),
    /// Not yet: try again at this time (no attempt counted).
    Later(i64),
    /// The attempt failed and may succeed later (the server is down).
    Failed(String),
    /// It can never succeed (a malformed row): keep it, but stop trying.
    Dropped(String),
}

/// Sends the rows of one kind.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn deliver(&self, row: &OutboxRow) -> Delivery;
    /// Called with a round's rows of this kind before any is delivered:
    /// what they all need can be read at once.
    async fn prepare(&self, _rows: &[&OutboxRow]) {}
    /// `deliver`, with what the receiver answered when that is worth
    /// recording (a webhook's status and response time).
    async fn attempt(&self, row: &OutboxRow) -> (Delivery, Option<Answer>) {
        (self.deliver(row).await, None)
    }
    /// When a row that a request joined while it was being sent runs again.
    fn again_at(&self, now_ms: i64) -> i64 {
        now_ms
    }
    /// When a row whose attempt just failed (its `attempts` not counting
    /// that one) is tried again, or `None` to give up: by default
    /// [`backoff_ms`] from `retry_base_ms`, up to [`MAX_ATTEMPTS`].
    fn retry_at(
        &self,
        row: &OutboxRow,
        now_ms: i64,
        retry_base_ms: i64,
        jitter: f64,
    ) -> Option<i64> {
        (row.attempts + 1 < MAX_ATTEMPTS)
            .then(|| now_ms + backoff_ms(retry_base_ms, row.attempts + 1, jitter))
    }
}

/// The wait before attempt `attempts + 1`: `base * 2^(attempts - 1)`, capped
/// at an hour, between half and all of it (jitter, so rows that failed
/// together do not all come back together).
pub fn backoff_ms(base_ms: i64, attempts: i64, jitter: f64) -> i64 {
    let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let full = base_ms.saturating_mul(1i64 << exp).min(MAX_BACKOFF_MS);
    let jitter = jitter.clamp(0.0, 1.0);
    (full as f64 * (0.5 + jitter / 2.0)) as i64
}

/// One instance's outbox worker.
pub struct Worker {
    store: Arc<dyn OutboxStore>,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    poll: Duration,
    retry_base_ms: i64,
    /// Most rows of a round delivered at once (`CHATGATE_OUTBOX_CONCURRENCY`;
    /// SMTP connections are pooled), reached as a round lasts (see
    /// [`RAMP`]): a round's work is spread out rather than landing on the
    /// CPU and the database at once.
    concurrency: usize,
    /// How long a claim holds.
    lease_ms: i64,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn OutboxStore>,
        handlers: HashMap<&'static str, Arc<dyn Handler>>,
        poll: Duration,
        retry_base_ms: i64,
        concurrency: usize,
        lease_ms: i64,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            store,
            handlers,
            poll,
            retry_base_ms,
            concurrency: concurrency.max(1),
            lease_ms: lease_ms.max(1),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Runs until the worker is dropped.
    pub fn start(self: &Arc<Worker>) {
        tokio::spawn(run(Arc::downgrade(self), self.wake.clone(), self.poll));
    }

    /// Deletes the rows sent or dropped before `before_ms`, a few thousand
    /// per transaction (each a short hold of SQLite's writer); how many.
    pub async fn prune(&self, before_ms: i64) -> u64 {
        const CHUNK: u32 = 5_000;
        let mut deleted = 0;
        loop {
            match self.store.prune_outbox(before_ms, CHUNK).await {
                Ok(n) => {
                    deleted += n;
                    if n < u64::from(CHUNK) {
                        return deleted;
                    }
                    tokio::task::yield_now().await;
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot delete old outbox rows");
                    return deleted;
                }
            }
        }
    }

    /// A row due now was added: look at once.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// One round: the webhook log's new events, then the outbox's due
    /// rows; the most either had (a full batch: go on at once).
    pub async fn round(&self) -> usize {
        let logged = self.log_round().await;
        let claimed = self.claim_round().await;
        logged.max(claimed)
    }

    /// Delivers the events the changes appended to the webhook log since
    /// the last round (SQLite; see `OutboxStore::webhook_log_tail`) and
    /// records them in one transaction; how many it read. An event whose
    /// conversation has rows in the outbox goes behind them untried; one
    /// not sent moves to the outbox with its outcome. Killed before the
    /// record, the round is read and sent again after the restart (the
    /// same `webhook-id`s).
    async fn log_round(&self) -> usize {
        let tail = match self.store.webhook_log_tail(BATCH).await {
            Ok(tail) => tail,
            Err(err) => {
                tracing::warn!(%err, "cannot read the webhook log");
                return 0;
            }
        };
        let Some(upto) = tail.upto else {
            return 0;
        };
        let now = now_ms();
        let mut finished = Vec::with_capacity(tail.logged.len());
        let mut free = Vec::with_capacity(tail.logged.len());
        for logged in &tail.logged {
            let held = (logged.row.order_key.as_ref()).is_some_and(|k| tail.held.contains(k));
            if held {
                finished.push(Finished {
                    id: logged.row.id,
                    outcome: OutboxOutcome::Later { at_ms: now },
                    answer: None,
                });
            } else {
                free.push(logged.row.clone());
            }
        }
        // No retry among them: nothing to learn of a receiver's return.
        let (sent, _) = self.deliver(free).await;
        finished.extend(sent);
        if let Err(err) = self
            .store
            .finish_webhook_log(upto, &tail.logged, &finished, now_ms())
            .await
        {
            tracing::warn!(%err, events = tail.logged.len(), "cannot record a round of the webhook log; it runs again");
        }
        tail.logged.len().max(1)
    }

    /// Claims the outbox's due rows and handles them; how many it claimed.
    async fn claim_round(&self) -> usize {
        let claim = uuid::Uuid::new_v4();
        let rows = match self
            .store
            .claim_outbox(claim, now_ms(), self.lease_ms, BATCH)
            .await
        {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(%err, "cannot claim outbox rows");
                return 0;
            }
        };
        let claimed = rows.len();
        let (finished, recovered) = self.deliver(rows).await;
        // One transaction records the whole round.
        match self.store.finish_outbox(claim, &finished, now_ms()).await {
            Ok(done) => {
                for (row, done) in finished.iter().zip(done) {
                    if !done {
                        tracing::warn!(id = %row.id, "outbox row's lease lapsed before it was recorded");
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, rows = finished.len(), "cannot record outbox attempts; their leases will lapse")
            }
        }
        // A receiver that is back gets its other waiting rows now, not at
        // the end of their backoff (up to a minute, or ten, after it came
        // back): an outage's backlog starts to drain at once.
        if !recovered.is_empty() {
            match self.store.retry_targets_now(&recovered, now_ms()).await {
                Ok(0) => {}
                Ok(woken) => {
                    tracing::info!(woken, "a receiver is back; its waiting rows are due now");
                    self.wake();
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot bring a recovered receiver's rows forward")
                }
            }
        }
        claimed
    }

    /// Hands rows (in insertion order) to their handlers: what became of
    /// each (a row whose task panicked has none), and the receivers a
    /// retry got through to.
    async fn deliver(&self, rows: Vec<OutboxRow>) -> (Vec<Finished>, Vec<uuid::Uuid>) {
        let count = rows.len();
        for (kind, handler) in &self.handlers {
            let mine: Vec<&OutboxRow> = rows.iter().filter(|r| r.kind == *kind).collect();
            if !mine.is_empty() {
                handler.prepare(&mine).await;
            }
        }
        // Rows with an order key go in runs, one run per key in the order
        // they were claimed (their insertion order), each run on one task:
        // a run stops at its first row not sent, and its later rows are
        // given back untried (the claim holds them back until that row
        // is due again). Every other row is a run of its own.
        let mut runs: Vec<Vec<OutboxRow>> = Vec::new();
        let mut run_of_key: HashMap<String, usize> = HashMap::new();
        for row in rows {
            match row.order_key.clone() {
                Some(key) => match run_of_key.get(&key) {
                    Some(&i) => runs[i].push(row),
                    None => {
                        run_of_key.insert(key, runs.len());
                        runs.push(vec![row]);
                    }
                },
                None => runs.push(vec![row]),
            }
        }
        // Each run on its own task, at most `concurrency` at a time, so one
        // slow exchange holds no other. A round's runs start one at a time
        // and one more may join them every `RAMP` the round lasts: a
        // receiver that answers at once gets its events one after another
        // (a burst of exchanges lands on the cores together, and the
        // chat's requests wait behind it), one that answers slowly gets the
        // full `concurrency` within `RAMP * concurrency`. A round that is a
        // backlog (a full batch: a receiver back after an outage) starts
        // with as many at once as its share of a full batch.
        // A row whose turn comes after half the lease (slow receivers: each
        // exchange may take its whole timeout) is given back untried rather
        // than sent after its lease may have lapsed.
        let mut tasks = tokio::task::JoinSet::new();
        let pace = Pace::new(runs.len(), self.concurrency);
        let give_back_after = now_ms() + self.lease_ms / 2;
        let mut finished = Vec::with_capacity(count);
        // Receivers a retry got through to this round: back after a failure.
        let mut recovered: Vec<uuid::Uuid> = Vec::new();
        let mut collect =
            |done: Result<(Vec<Finished>, Option<uuid::Uuid>), tokio::task::JoinError>| {
                match done {
                    Ok((done, back)) => {
                        finished.extend(done);
                        if let Some(target) = back.filter(|t| !recovered.contains(t)) {
                            recovered.push(target);
                        }
                    }
                    // A handler panicked: its row's lease lapses and it is tried again.
                    Err(err) => tracing::error!(%err, "an outbox handler failed"),
                }
            };
        for run in runs {
            loop {
                let allowed = pace.allowed(pace.started.elapsed());
                if tasks.len() < allowed {
                    break;
                }
                match pace.widen_at(allowed) {
                    None => {
                        if let Some(done) = tasks.join_next().await {
                            collect(done);
                        }
                    }
                    Some(at) => tokio::select! {
                        Some(done) = tasks.join_next() => collect(done),
                        _ = tokio::time::sleep_until(at) => {}
                    },
                }
            }
            let handlers = run
                .iter()
                .map(|row| self.handlers.get(row.kind.as_str()).cloned())
                .collect::<Vec<_>>();
            let base = self.retry_base_ms;
            tasks.spawn(async move {
                let mut done = Vec::with_capacity(run.len());
                let mut recovered = None;
                let mut held = false;
                for (row, handler) in run.into_iter().zip(handlers) {
                    if held || now_ms() > give_back_after {
                        done.push(Finished {
                            id: row.id,
                            outcome: OutboxOutcome::Later { at_ms: now_ms() },
                            answer: None,
                        });
                        continue;
                    }
                    let retried = (row.attempts > 0).then_some(row.target).flatten();
                    let finished = outcome(handler, row, base).await;
                    held = !matches!(finished.outcome, OutboxOutcome::Sent { .. });
                    if !held && retried.is_some() {
                        recovered = retried;
                    }
                    done.push(finished);
                }
                (done, recovered)
            });
        }
        while let Some(done) = tasks.join_next().await {
            collect(done);
        }
        (finished, recovered)
    }
}

/// Delivers one row and says what to record of it.
async fn outcome(
    handler: Option<Arc<dyn Handler>>,
    row: OutboxRow,
    retry_base_ms: i64,
) -> Finished {
    let (delivery, answer) = match &handler {
        Some(handler) => handler.attempt(&row).await,
        None => (
            Delivery::Dropped(format!("no handler for kind `{}`", row.kind)),
            None,
        ),
    };
    let now = now_ms();
    let retry_at = |row: &OutboxRow| match &handler {
        Some(handler) => handler.retry_at(row, now, retry_base_ms, rand::rng().random()),
        None => None,
    };
    let outcome = match delivery {
        Delivery::Sent(emailed) => OutboxOutcome::Sent {
            again_at_ms: handler.map_or(now, |h| h.again_at(now)),
            emailed,
        },
        Delivery::Later(at_ms) => OutboxOutcome::Later { at_ms },
        Delivery::Failed(error) => match retry_at(&row) {
            None => {
                tracing::warn!(id = %row.id, kind = %row.kind, %error, "outbox row dropped after its last attempt");
                OutboxOutcome::Dropped { error }
            }
            Some(at_ms) => {
                tracing::info!(id = %row.id, kind = %row.kind, %error, wait_ms = at_ms - now, "outbox send failed; will retry");
                OutboxOutcome::Retry { at_ms, error }
            }
        },
        Delivery::Dropped(error) => {
            tracing::warn!(id = %row.id, kind = %row.kind, %error, "outbox row dropped");
            OutboxOutcome::Dropped { error }
        }
    };
    Finished {
        id: row.id,
        outcome,
        answer,
    }
}

/// The worker's loop; it ends once the worker (held by the services) is
/// dropped, within one `poll`.
async fn run(worker: Weak<Worker>, wake: Arc<Notify>, poll: Duration) {
    loop {
        let claimed = {
            let Some(strong) = worker.upgrade() else {
                return;
            };
            strong.round().await
        };
        if claimed as u32 >= BATCH {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {
                // Rows come with commits, often many a second: gather them
                // a moment, so that a round (a claim and a finish, each a
                // transaction on the database's writer) takes many rather
                // than a few. (In `chatgate-bench webhooks` at 1,000
                // messages/s on SQLite, 25 ms: the chat's p99 ×1.32 of the
                // run without webhooks; at once: ×1.90; 100 ms: ×1.76.)
                tokio::time::sleep(poll.min(GATHER)).await;
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{backoff_ms, Pace, RAMP};
    use std::time::Duration;

    #[test]
    fn a_round_starts_with_its_share_and_adds_one_delivery_per_ramp() {
        let ms = Duration::from_millis;
        let pace = Pace::new(20, 16);
        assert_eq!(pace.allowed(ms(0)), 1);
        assert_eq!(pace.allowed(RAMP - ms(1)), 1);
        assert_eq!(pace.allowed(RAMP), 2);
        assert_eq!(pace.allowed(RAMP * 5), 6);
        assert_eq!(pace.allowed(RAMP * 100), 16);
        assert_eq!(pace.allowed(Duration::MAX), 16);
        assert_eq!(pace.widen_at(1), Some(pace.started + RAMP));
        assert_eq!(pace.widen_at(6), Some(pace.started + RAMP * 6));
        assert_eq!(pace.widen_at(16), None, "at the worker's concurrency");
        // A backlog's round starts with its share of the concurrency.
        let backlog = Pace::new(128, 16);
        assert_eq!(backlog.allowed(ms(0)), 8);
        assert_eq!(backlog.allowed(RAMP * 3), 11);
        assert_eq!(backlog.widen_at(8), Some(backlog.started + RAMP));
        assert_eq!(Pace::new(256, 16).allowed(ms(0)), 16);
        assert_eq!(Pace::new(256, 4).allowed(ms(0)), 4);
        assert_eq!(Pace::new(1, 0).allowed(ms(0)), 1, "never none");
    }

    #[test]
    fn backoff_doubles_per_attempt_within_its_jitter_and_stops_at_an_hour() {
        assert_eq!(backoff_ms(1000, 1, 1.0), 1000);
        assert_eq!(backoff_ms(1000, 1, 0.0), 500);
        assert_eq!(backoff_ms(1000, 2, 1.0), 2000);
        assert_eq!(backoff_ms(1000, 4, 1.0), 8000);
        assert_eq!(backoff_ms(1000, 40, 1.0), super::MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(1000, 40, 0.0), super::MAX_BACKOFF_MS / 2);
        for n in 1..20 {
            let b = backoff_ms(5000, n, 0.5);
            assert!(b > 0 && b <= super::MAX_BACKOFF_MS);
        }
    }
}
