//! The SQL of the webhook log (migration 0026, SQLite): the webhook events
//! of a change appended, in the change's transaction, to an index-less
//! table; read by position on a reader connection; a round's outcomes
//! recorded in one small transaction. Methods of `Sql`, generic over the
//! backend (see `super::Backend`); on a backend without the log
//! (`Backend::WEBHOOK_LOG` false) the events are outbox rows and the tail
//! is always empty.
//!
//! Why (issue 19): with every event an outbox row, a chat message's commit
//! wrote the row and five index entries, and the worker's claim and
//! outcome transactions took SQLite's one writer ~70 times a second; the
//! chat's p99 at 1,000 messages a second rose by half. Here a message's
//! commit appends one row at the end of one b-tree, the worker reads
//! without the writer, and a round takes the writer once, briefly.
//!
//! The outbox stays what it was for everything else: an event not sent at
//! its first try (or behind an event of its conversation still in the
//! outbox) moves there with what was tried, and the outbox's retries,
//! per-key order and parking take it from there.

use std::collections::{HashMap, HashSet};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use crate::domain::TenantId;
use crate::store::batch::insert_chunks;
use crate::store::{
    Answer, Finished, LogTail, Logged, NewOutbox, OutboxOutcome, OutboxRow, StoreResult,
};

use super::{parse_id, parse_uuid, Backend, Sql};

/// The start of a new event's insert; its values follow.
const INSERT_LOG: &str = "INSERT INTO webhook_log \
     (id, kind, tenant_id, target, order_key, payload, created_at) VALUES";
const INSERT_LOG_COLUMNS: usize = 7;

/// The start of a moved event's outbox row; its values follow.
const INSERT_MOVED: &str = "INSERT INTO outbox (id, kind, tenant_id, payload, created_at, \
     due_at, order_key, target, attempts, last_error, last_status, last_duration_ms) VALUES";
const INSERT_MOVED_COLUMNS: usize = 12;

/// Keys per statement when the tail asks which are held in the outbox.
const KEYS_CHUNK: usize = 100;

/// Whether a change's row goes to the log rather than the outbox: a
/// delivery to a target, with no key to join (see `NewOutbox::target`).
pub(super) fn logged<DB: Backend>(row: &NewOutbox) -> bool {
    DB::WEBHOOK_LOG && row.target.is_some() && row.dedupe_key.is_none()
}

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
{
    /// A change's events, on its transaction: a few multi-row statements.
    pub(super) async fn insert_log_rows(
        conn: &mut DB::Connection,
        rows: &[&NewOutbox],
    ) -> StoreResult<()> {
        let mut at = 0;
        for n in insert_chunks(rows.len()) {
            let sql = format!("{INSERT_LOG} {}", DB::PARAMS.rows(n, INSERT_LOG_COLUMNS));
            let mut query = sqlx::query(&sql);
            for row in &rows[at..at + n] {
                query = query
                    .bind(row.id.to_string())
                    .bind(row.kind.as_str())
                    .bind(row.tenant_id.to_string())
                    .bind(row.target.map(|t| t.to_string()))
                    .bind(row.order_key.as_deref())
                    .bind(row.payload.as_str())
                    .bind(row.created_at_ms);
            }
            at += n;
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn webhook_log_tail(&self, limit: u32) -> StoreResult<LogTail> {
        if !DB::WEBHOOK_LOG {
            return Ok(LogTail::default());
        }
        // One statement, one snapshot: the cursor and what follows it.
        let rows = sqlx::query(
            "SELECT pos, id, kind, tenant_id, target, order_key, payload, created_at, \
             dropped_at FROM webhook_log \
             WHERE pos > (SELECT pos FROM webhook_log_cursor WHERE id = 1) \
             ORDER BY pos LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        let mut tail = LogTail::default();
        for row in &rows {
            let pos: i64 = row.try_get(0)?;
            tail.upto = Some(pos);
            if row.try_get::<Option<i64>, _>(8)?.is_some() {
                continue;
            }
            let created_at_ms: i64 = row.try_get(7)?;
            tail.logged.push(Logged {
                pos,
                row: OutboxRow {
                    id: parse_uuid(&row.try_get::<String, _>(1)?)?,
                    kind: row.try_get(2)?,
                    tenant_id: parse_id::<TenantId>(&row.try_get::<String, _>(3)?)?,
                    dedupe_key: None,
                    payload: row.try_get(6)?,
                    created_at_ms,
                    due_at_ms: created_at_ms,
                    attempts: 0,
                    last_error: None,
                    sent_at_ms: None,
                    dropped_at_ms: None,
                    order_key: row.try_get(5)?,
                    target: Some(parse_uuid(&row.try_get::<String, _>(4)?)?),
                },
            });
        }
        let keys: Vec<&str> = tail
            .logged
            .iter()
            .filter_map(|l| l.row.order_key.as_deref())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for keys in keys.chunks(KEYS_CHUNK) {
            let sql = format!(
                "SELECT DISTINCT order_key FROM outbox WHERE order_key IN ({}) \
                 AND sent_at IS NULL AND dropped_at IS NULL",
                DB::PARAMS.list(1, keys.len())
            );
            let mut query = sqlx::query(&sql);
            for key in keys {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&self.read).await? {
                tail.held.insert(row.try_get(0)?);
            }
        }
        Ok(tail)
    }

    pub(crate) async fn finish_webhook_log(
        &self,
        upto: i64,
        logged: &[Logged],
        finished: &[Finished],
        now_ms: i64,
    ) -> StoreResult<()> {
        if !DB::WEBHOOK_LOG {
            return Ok(());
        }
        let outcomes: HashMap<Uuid, &Finished> = finished.iter().map(|f| (f.id, f)).collect();
        let mut sent = Vec::new();
        let mut dropped = Vec::new();
        let mut moved = Vec::new();
        for l in logged {
            match outcomes.get(&l.row.id) {
                Some(f) if matches!(f.outcome, OutboxOutcome::Sent { .. }) => sent.push((l, *f)),
                Some(f) if matches!(f.outcome, OutboxOutcome::Dropped { .. }) => {
                    dropped.push((l, *f))
                }
                other => moved.push((l, other.copied())),
            }
        }
        let mut tx = self.write.begin().await?;
        // The sent: their answers, a chunk per statement.
        let mut at = 0;
        for n in insert_chunks(sent.len()) {
            let sql = format!(
                "WITH v (pos, status, duration) AS (VALUES {}) \
                 UPDATE webhook_log SET sent_at = {}, last_status = v.status, \
                 last_duration_ms = v.duration FROM v WHERE webhook_log.pos = v.pos",
                DB::PARAMS.rows(n, 3),
                DB::PARAMS.one(n * 3 + 1)
            );
            let mut query = sqlx::query(&sql);
            for (l, f) in &sent[at..at + n] {
                query = query
                    .bind(l.pos)
                    .bind(status_of(f.answer))
                    .bind(f.answer.map(|a| a.duration_ms));
            }
            at += n;
            query.bind(now_ms).execute(&mut *tx).await?;
        }
        for (l, f) in &dropped {
            let OutboxOutcome::Dropped { error } = &f.outcome else {
                continue;
            };
            sqlx::query(
                "UPDATE webhook_log SET dropped_at = $1, last_error = $2, last_status = $3, \
                 last_duration_ms = $4 WHERE pos = $5",
            )
            .bind(now_ms)
            .bind(super::outbox::truncate(error))
            .bind(status_of(f.answer))
            .bind(f.answer.map(|a| a.duration_ms))
            .bind(l.pos)
            .execute(&mut *tx)
            .await?;
        }
        // The rest move to the outbox, in log order (behind any row of
        // their key already there), with what was tried.
        let mut at = 0;
        for n in insert_chunks(moved.len()) {
            let sql = format!(
                "{INSERT_MOVED} {} ON CONFLICT (id) DO NOTHING",
                DB::PARAMS.rows(n, INSERT_MOVED_COLUMNS)
            );
            let mut query = sqlx::query(&sql);
            for (l, f) in &moved[at..at + n] {
                let (due_at, attempts, error) = match f.map(|f| &f.outcome) {
                    Some(OutboxOutcome::Retry { at_ms, error }) => {
                        (*at_ms, 1, Some(super::outbox::truncate(error)))
                    }
                    Some(OutboxOutcome::Later { at_ms }) => (*at_ms, 0, None),
                    _ => (now_ms, 0, None),
                };
                let answer = f.and_then(|f| f.answer);
                let row = &l.row;
                query = query
                    .bind(row.id.to_string())
                    .bind(row.kind.as_str())
                    .bind(row.tenant_id.to_string())
                    .bind(row.payload.as_str())
                    .bind(row.created_at_ms)
                    .bind(due_at)
                    .bind(row.order_key.as_deref())
                    .bind(row.target.map(|t| t.to_string()))
                    .bind(attempts)
                    .bind(error)
                    .bind(status_of(answer))
                    .bind(answer.map(|a| a.duration_ms));
            }
            let sql = format!(
                "UPDATE webhook_log SET moved = 1 WHERE pos IN ({})",
                DB::PARAMS.list(1, n)
            );
            let mut mark = sqlx::query(&sql);
            for (l, _) in &moved[at..at + n] {
                mark = mark.bind(l.pos);
            }
            at += n;
            query.execute(&mut *tx).await?;
            mark.execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE webhook_log_cursor SET pos = $1 WHERE id = 1 AND pos < $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The HTTP status an attempt got, if an answer came.
fn status_of(answer: Option<Answer>) -> Option<i64> {
    answer.and_then(|a| a.status).map(i64::from)
}
