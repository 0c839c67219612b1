//! Group commit: for `append_message`, and the DELIVERED marks that ride
//! in the same transactions.
//!
//! A commit is the expensive part of storing a message (an fsync with
//! SQLite's `synchronous=FULL`, a WAL flush and a round trip with
//! PostgreSQL). So appends queue on a *lane*, and the lane's one task stores
//! whatever has queued while the previous batch committed, in one
//! transaction, and only then answers each caller: a reply still means the
//! message is durable, and an idle server still commits a lone message at
//! once (no timer, no added latency).
//!
//! A conversation always maps to the same lane, so its messages are stored in
//! the order they arrived. Several lanes let PostgreSQL commit in parallel;
//! SQLite, with its single writer, uses one. Each lane has a state of its
//! own, passed to every batch it stores (on PostgreSQL, the lane's own
//! connection: see `sql::Lane`).
//!
//! A DELIVERED mark ([`Write::Deliver`]) queues on the same lanes and is
//! written in the transaction of the appends queued with it: a commit is a
//! WAL flush, and with marks on a batcher of their own an agent's reply
//! cost two (its append and, once its visitor had it, its mark), each
//! waiting its turn for the disk (README, "Marks ride with appends").

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::sql::DeliveredMark;
use super::{Appended, Queued, StoreError, StoreResult};
use crate::domain::Message;

/// Most messages stored in one transaction.
pub(super) const MAX_BATCH: usize = 1024;
/// Appends waiting per lane before callers wait to enqueue.
const LANE_CAPACITY: usize = 4096;

struct Pending<I, O> {
    item: I,
    reply: oneshot::Sender<StoreResult<O>>,
}

/// What storing a batch produced: one result per item, in order, and
/// whether the batch had to be stored item by item.
pub struct Stored<O = Appended> {
    results: Vec<StoreResult<O>>,
    one_by_one: bool,
}

impl<O> Stored<O> {
    pub fn together(results: Vec<StoreResult<O>>) -> Stored<O> {
        Stored {
            results,
            one_by_one: false,
        }
    }

    pub fn one_by_one(results: Vec<StoreResult<O>>) -> Stored<O> {
        Stored {
            results,
            one_by_one: true,
        }
    }

    /// `count` items that all failed with `err` (a batch whose outcome is
    /// unknown, or that could not be written at all).
    pub fn all_failed(count: usize, err: &impl std::fmt::Display) -> Stored<O> {
        let err = err.to_string();
        Stored::together(
            (0..count)
                .map(|_| Err(StoreError::Unavailable(err.clone())))
                .collect(),
        )
    }

    /// Each result as `f` makes it.
    pub fn map<P>(self, mut f: impl FnMut(O) -> P) -> Stored<P> {
        Stored {
            results: self.results.into_iter().map(|r| r.map(&mut f)).collect(),
            one_by_one: self.one_by_one,
        }
    }

    /// The results, in order, and whether they were stored one by one.
    pub fn into_parts(self) -> (Vec<StoreResult<O>>, bool) {
        (self.results, self.one_by_one)
    }
}

/// What an append lane writes. Most writes are appends: boxing the
/// larger variant would cost every message an allocation to spare the
/// few marks some bytes of queue.
#[allow(clippy::large_enum_variant)]
pub enum Write {
    Append(Queued),
    Deliver(DeliveredMark),
}

/// What a lane wrote, one per [`Write`].
#[derive(Debug)]
pub enum Written {
    Appended(Appended),
    /// The message, when the mark changed it (it was PENDING).
    Delivered(Option<Message>),
}

/// Group commit of any write: items queue on a lane, and the lane's task
/// writes whatever queued while its previous batch ran, in one go.
pub(super) struct Batcher<I, O> {
    lanes: Vec<mpsc::Sender<Pending<I, O>>>,
    fallbacks: Arc<AtomicU64>,
}

/// Message appends (a conversation always maps to the same lane) and
/// DELIVERED marks.
pub(super) type Appender = Batcher<Write, Written>;

impl Appender {
    /// Queues a message on its conversation's lane.
    pub(super) async fn append(&self, queued: Queued) -> StoreResult<PendingAppend> {
        let pending = self
            .enqueue(queued.conversation_id, Write::Append(queued))
            .await?;
        Ok(PendingAppend(pending))
    }

    /// Marks a message DELIVERED with whatever its lane stores next.
    pub(super) async fn deliver(&self, mark: DeliveredMark) -> StoreResult<Option<Message>> {
        match self.enqueue(mark.0, Write::Deliver(mark)).await?.await? {
            Written::Delivered(message) => Ok(message),
            Written::Appended(_) => Err(mismatched()),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `lanes` tasks, each with a state from `lane` and storing its
    /// batches with `store_batch`, which gets the lane's state and gives it
    /// back with one result per item, in order.
    pub(super) fn start<S, F, Fut>(
        lanes: usize,
        mut lane: impl FnMut() -> S,
        store_batch: F,
    ) -> Batcher<I, O>
    where
        S: Send + 'static,
        F: Fn(S, Vec<I>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = (S, Stored<O>)> + Send + 'static,
    {
        let fallbacks = Arc::new(AtomicU64::new(0));
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(LANE_CAPACITY);
                tokio::spawn(run_lane(rx, lane(), store_batch.clone(), fallbacks.clone()));
                tx
            })
            .collect();
        Batcher { lanes, fallbacks }
    }

    /// Batches that failed as a whole and were stored item by item.
    pub(super) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Queues `item` on the lane of `key` and returns the future of its
    /// result: items of one key queued in call order are stored in that
    /// order, however their futures are then polled.
    pub(super) async fn enqueue(&self, key: impl Hash, item: I) -> StoreResult<PendingResult<O>> {
        let lane = if self.lanes.len() == 1 {
            0
        } else {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key.hash(&mut hasher);
            (hasher.finish() % self.lanes.len() as u64) as usize
        };
        let (reply, answer) = oneshot::channel();
        self.lanes[lane]
            .send(Pending { item, reply })
            .await
            .map_err(|_| stopped())?;
        Ok(PendingResult(answer))
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".into())
}

/// A lane answered a write with the other kind's result (a bug).
fn mismatched() -> StoreError {
    StoreError::Unavailable("the store's writer answered out of kind".into())
}

/// A queued write: resolves once its batch has committed (or failed).
pub struct PendingResult<O>(oneshot::Receiver<StoreResult<O>>);

/// A queued message append: resolves once its batch has committed.
pub struct PendingAppend(PendingResult<Written>);

impl Future for PendingAppend {
    type Output = StoreResult<Appended>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|written| match written? {
                Written::Appended(appended) => Ok(appended),
                Written::Delivered(_) => Err(mismatched()),
            })
    }
}

impl<O> Future for PendingResult<O> {
    type Output = StoreResult<O>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or_else(|_| Err(stopped())))
    }
}

async fn run_lane<I, O, S, F, Fut>(
    mut rx: mpsc::Receiver<Pending<I, O>>,
    mut lane: S,
    store_batch: F,
    fallbacks: Arc<AtomicU64>,
) where
    F: Fn(S, Vec<I>) -> Fut,
    Fut: Future<Output = (S, Stored<O>)>,
{
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        let (items, replies): (Vec<_>, Vec<_>) =
            pending.drain(..).map(|p| (p.item, p.reply)).unzip();
        let stored;
        (lane, stored) = store_batch(lane, items).await;
        if stored.one_by_one {
            fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        debug_assert_eq!(stored.results.len(), replies.len());
        for (reply, result) in replies.into_iter().zip(stored.results) {
            // A caller that gave up still had its item stored; nobody to tell.
            let _ = reply.send(result);
        }
    }
}

/// Splits `n` rows into multi-row INSERT sizes from a few fixed ones, so the
/// database prepares a handful of statements rather than one per batch size.
pub(super) fn insert_chunks(mut n: usize) -> Vec<usize> {
    const SIZES: [usize; 4] = [64, 16, 4, 1];
    let mut chunks = Vec::new();
    for size in SIZES {
        while n >= size {
            chunks.push(size);
            n -= size;
        }
    }
    chunks
}

/// How a backend writes bind parameters in the generated batch statements.
/// SQLite gets anonymous `?`: with numbered ones, binding each parameter
/// looks its name up in a list as long as the statement's parameters, which
/// made binding a 768-parameter INSERT the writer's biggest cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?, ?, ...` (SQLite), bound in textual order.
    Anonymous,
}

impl Params {
    /// `count` parameters, the first being the statement's `first`-th.
    pub(super) fn list(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|i| self.one(i))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(p, ..., p), (p, ...)`: `rows` rows of `cols` parameters, from the first.
    pub(super) fn rows(self, rows: usize, cols: usize) -> String {
        (0..rows)
            .map(|row| format!("({})", self.list(row * cols + 1, cols)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The statement's `n`-th parameter (1-based).
    pub(super) fn one(self, n: usize) -> String {
        match self {
            Params::Numbered => format!("${n}"),
            Params::Anonymous => "?".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_with_few_distinct_sizes() {
        for n in 0..=MAX_BATCH {
            let chunks = insert_chunks(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            assert!(chunks.iter().all(|c| [64, 16, 4, 1].contains(c)));
        }
        assert_eq!(insert_chunks(86), [64, 16, 4, 1, 1]);
    }

    #[test]
    fn parameters_number_rows_then_columns() {
        assert_eq!(Params::Numbered.rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(Params::Anonymous.rows(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Params::Numbered.list(3, 2), "$3, $4");
    }
}
