//! The SQL of the outbox and of visitors' email state. Methods of `Sql`,
//! generic over the backend (see `super::Backend`).
//!
//! Claiming is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n)`: on
//! PostgreSQL the inner select takes the rows `FOR UPDATE SKIP LOCKED`, so
//! concurrent workers of several instances take disjoint rows without
//! waiting on each other; on SQLite the one writer runs the statement alone.
//! A claim is a lease (`claimed_until`): a worker killed mid-send leaves its
//! rows to be claimed again once it lapses, so nothing is lost (a receiver
//! may see that one again: every row has a stable id).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use std::collections::HashMap;

use crate::domain::{ConversationId, Message, TenantId};
use crate::store::batch::{insert_chunks, Params};
use crate::store::{
    Emailed, Enqueued, Finished, NewOutbox, OutboxOutcome, OutboxRow, RepliesAfter, StoreResult,
    TranscriptRequested, VisitorEmail,
};

use super::{parse_id, parse_uuid, Backend, Bind, RowsAffected, Sql, MESSAGE_COLUMNS};

const OUTBOX_COLUMNS: &str = "id, kind, tenant_id, dedupe_key, payload, created_at, due_at, \
     attempts, last_error, sent_at, dropped_at, order_key, target";

/// The condition of a row still to send.
const UNSENT: &str = "sent_at IS NULL AND dropped_at IS NULL";

/// The start of a new row's insert; its values follow.
const INSERT_OUTBOX: &str = "INSERT INTO outbox \
     (id, kind, tenant_id, dedupe_key, payload, created_at, due_at, order_key, target) VALUES";
/// How many columns `INSERT_OUTBOX` names.
const INSERT_OUTBOX_COLUMNS: usize = 9;

/// A key already pending: the row stands for both, and if a worker's claim
/// on it outlives `now` (SQL), it runs once more (`again`), since what it
/// sends may have been read before this request.
fn joined_while_claimed_after(now: &str) -> String {
    format!(
        "ON CONFLICT (dedupe_key) WHERE {UNSENT} AND dedupe_key IS NOT NULL DO UPDATE SET \
         again = CASE WHEN outbox.claimed_until IS NOT NULL AND outbox.claimed_until > {now} \
         THEN 1 ELSE outbox.again END"
    )
}

/// Rows (or keys) per statement when a round is recorded.
const FINISH_CHUNK: usize = 100;
/// Parked rows released per round (shared by the round's keys): twice a
/// claim's batch, so the claims never run dry while a backlog drains.
const UNPARK_PER_ROUND: usize = 512;
/// Parked rows released per key and round, however many keys share it.
const UNPARK_MIN_PER_KEY: usize = 4;

/// Longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> bool: Type<DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
{
    fn outbox_from_row(row: &DB::Row) -> StoreResult<OutboxRow> {
        Ok(OutboxRow {
            id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            kind: row.try_get(1)?,
            tenant_id: parse_id(&row.try_get::<String, _>(2)?)?,
            dedupe_key: row.try_get(3)?,
            payload: row.try_get(4)?,
            created_at_ms: row.try_get(5)?,
            due_at_ms: row.try_get(6)?,
            attempts: row.try_get(7)?,
            last_error: row.try_get(8)?,
            sent_at_ms: row.try_get(9)?,
            dropped_at_ms: row.try_get(10)?,
            order_key: row.try_get(11)?,
            target: row
                .try_get::<Option<String>, _>(12)?
                .as_deref()
                .map(parse_uuid)
                .transpose()?,
        })
    }

    /// Binds a new row's columns, in `INSERT_OUTBOX`'s order.
    fn bind_outbox<'q>(
        query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
        row: &'q NewOutbox,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>> {
        query
            .bind(row.id.to_string())
            .bind(row.kind.as_str())
            .bind(row.tenant_id.to_string())
            .bind(row.dedupe_key.as_deref())
            .bind(row.payload.as_str())
            .bind(row.created_at_ms)
            .bind(row.due_at_ms)
            .bind(row.order_key.as_deref())
            .bind(row.target.map(|t| t.to_string()))
    }

    async fn insert_outbox_on<'c, E>(
        executor: E,
        row: &NewOutbox,
        now_ms: i64,
    ) -> StoreResult<Enqueued>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        let sql = format!(
            "{INSERT_OUTBOX} ($1, $2, $3, $4, $5, $6, $7, $8, $9) {} RETURNING id",
            joined_while_claimed_after("$10")
        );
        let stored = Self::bind_outbox(sqlx::query(&sql), row)
            .bind(now_ms)
            .fetch_one(executor)
            .await?;
        let id: String = stored.try_get(0)?;
        Ok(if id == row.id.to_string() {
            Enqueued::Added
        } else {
            Enqueued::Joined
        })
    }

    pub(crate) async fn enqueue_outbox(
        &self,
        row: &NewOutbox,
        now_ms: i64,
    ) -> StoreResult<Enqueued> {
        Self::insert_outbox_on(&self.write, row, now_ms).await
    }

    pub(crate) async fn claim_outbox(
        &self,
        claim: Uuid,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>> {
        let lock = if DB::LOCKS {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let pos = DB::OUTBOX_POS;
        // Rows behind a row of their key that waits for a retry are parked:
        // out of the index the claim reads, so a receiver's outage costs
        // each claim nothing however long its backlog. The park starts from
        // the waiting rows (`outbox_retrying`: the failed ones) and reads,
        // per key, only its rows not parked yet (`outbox_order_ready`), so
        // it never walks a backlog either. Each row is parked once; its
        // key's parked rows come back when a row of the key is sent or
        // dropped (`finish_outbox`). (Rows behind a postponed row are not
        // parked: the claim's own condition holds them back. `CROSS JOIN`
        // keeps SQLite's outer loop on the waiting rows, read from
        // `outbox_retrying`; `h.parked + 0` keeps it off `outbox_ready`.)
        let park_lock = if DB::LOCKS {
            " FOR UPDATE OF o SKIP LOCKED"
        } else {
            ""
        };
        let park = format!(
            "UPDATE outbox SET parked = 1 WHERE id IN \
             (SELECT o.id FROM outbox h CROSS JOIN outbox o \
              WHERE o.order_key = h.order_key AND h.attempts > 0 AND h.target IS NOT NULL \
              AND h.sent_at IS NULL AND h.dropped_at IS NULL AND h.parked + 0 = 0 \
              AND h.due_at > $1 AND (h.claimed_until IS NULL OR h.claimed_until <= $1) \
              AND o.order_key IS NOT NULL AND o.sent_at IS NULL AND o.dropped_at IS NULL \
              AND o.parked = 0 AND o.{pos} > h.{pos} \
              AND (o.claimed_until IS NULL OR o.claimed_until <= $1){park_lock})"
        );
        // A row of an order key is due only when every earlier unsent row
        // of its key is due, unclaimed and not parked too (and so claimed
        // with it: the candidates are taken in insertion order); a row
        // waiting for a retry, or held by another worker, holds back the
        // rest of its key. The candidates are read from `outbox_ready`
        // (unsent, not parked), never the sent or parked rows.
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, claim_id = $2 WHERE id IN \
             (SELECT o.id FROM outbox o WHERE o.sent_at IS NULL AND o.dropped_at IS NULL \
              AND o.parked = 0 \
              AND o.due_at <= $3 AND (o.claimed_until IS NULL OR o.claimed_until <= $3) \
              AND (o.order_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox e \
                   WHERE e.order_key = o.order_key AND e.sent_at IS NULL \
                   AND e.dropped_at IS NULL AND e.{pos} < o.{pos} \
                   AND (e.parked = 1 OR e.due_at > $3 OR e.claimed_until > $3))) \
              ORDER BY o.{pos} LIMIT $4{lock}) \
             RETURNING {OUTBOX_COLUMNS}, {pos}"
        );
        let mut tx = self.write.begin().await?;
        if let Some(serialize) = DB::CLAIM_LOCK {
            sqlx::query(serialize).execute(&mut *tx).await?;
        }
        sqlx::query(&park).bind(now_ms).execute(&mut *tx).await?;
        let rows = sqlx::query(&sql)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(claim.to_string())
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut rows = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>(13)?, Self::outbox_from_row(row)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        // Insertion order: the order of each key's rows.
        rows.sort_by_key(|(pos, _)| *pos);
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }

    pub(crate) async fn prune_outbox(&self, before_ms: i64, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE (sent_at IS NOT NULL OR dropped_at IS NOT NULL) \
             AND COALESCE(sent_at, dropped_at) < $1 LIMIT $2)",
        )
        .bind(before_ms)
        .bind(i64::from(limit))
        .execute(&self.write)
        .await?;
        let mut deleted = done.rows_affected();
        if DB::WEBHOOK_LOG {
            // The log's oldest events, recorded before `before_ms` (moved
            // ones: their outbox rows stand for them). Read from its
            // start, a bounded stretch; never the one at the cursor, so a
            // position is never handed out twice.
            deleted += sqlx::query(
                "DELETE FROM webhook_log WHERE pos IN (SELECT pos FROM webhook_log \
                 WHERE pos < (SELECT pos FROM webhook_log_cursor WHERE id = 1) \
                 ORDER BY pos LIMIT $2) \
                 AND (moved = 1 OR COALESCE(sent_at, dropped_at) < $1)",
            )
            .bind(before_ms)
            .bind(i64::from(limit))
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        Ok(deleted)
    }

    pub(crate) async fn retry_targets_now(
        &self,
        targets: &[Uuid],
        now_ms: i64,
    ) -> StoreResult<u64> {
        let mut woken = 0;
        for target in targets {
            // The partial index `outbox_retrying` holds just these rows.
            woken += sqlx::query(
                "UPDATE outbox SET due_at = $1 WHERE target = $2 \
                 AND sent_at IS NULL AND dropped_at IS NULL AND attempts > 0 \
                 AND target IS NOT NULL AND due_at > $1 \
                 AND (claimed_until IS NULL OR claimed_until <= $1) \
                 AND (last_status IS NULL OR last_status >= 500 OR last_status = 429)",
            )
            .bind(now_ms)
            .bind(target.to_string())
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        Ok(woken)
    }

    /// Every outcome of a round in one transaction: one commit per round.
    /// The rows simply sent (webhook deliveries: no email state to mark)
    /// are recorded a chunk per statement; the rest one by one.
    pub(crate) async fn finish_outbox(
        &self,
        claim: Uuid,
        finished: &[Finished],
        now_ms: i64,
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.write.begin().await?;
        // Per row: recorded, and its order key.
        let mut outcome: HashMap<Uuid, Option<String>> = HashMap::with_capacity(finished.len());
        let simply_sent: Vec<&Finished> = finished
            .iter()
            .filter(|r| matches!(r.outcome, OutboxOutcome::Sent { emailed: None, .. }))
            .collect();
        for chunk in simply_sent.chunks(FINISH_CHUNK) {
            outcome.extend(Self::finish_sent(&mut tx, claim, chunk, now_ms).await?);
        }
        for row in finished {
            // A sent row the chunk did not record (it must run again: see
            // `again`) goes one by one too.
            if outcome.contains_key(&row.id) {
                continue;
            }
            if let Some(key) = Self::finish_one(&mut tx, claim, row, now_ms).await? {
                outcome.insert(row.id, key);
            }
            if let OutboxOutcome::Sent {
                emailed: Some(emailed),
                ..
            } = &row.outcome
            {
                // Sent is sent, whoever's claim it now is.
                Self::mark_emailed(&mut tx, emailed).await?;
            }
        }
        // Keys with a row sent or dropped: their earliest parked rows (if
        // any: each part reads the small `outbox_parked` index from the
        // key's first entry) are claimable again, a bounded number per
        // round: the rest come back as the ones released are sent, so a
        // long outage's backlog never holds the writer for one statement
        // that releases it all.
        let mut unpark: Vec<&str> = Vec::new();
        for row in finished {
            if let (OutboxOutcome::Sent { .. } | OutboxOutcome::Dropped { .. }, Some(Some(key))) =
                (&row.outcome, outcome.get(&row.id))
            {
                if !unpark.contains(&key.as_str()) {
                    unpark.push(key);
                }
            }
        }
        let per_key = (UNPARK_PER_ROUND / unpark.len().max(1)).max(UNPARK_MIN_PER_KEY);
        let pos = DB::OUTBOX_POS;
        for keys in unpark.chunks(FINISH_CHUNK) {
            let parts = (1..=keys.len())
                .map(|i| {
                    format!(
                        "SELECT id FROM (SELECT id FROM outbox WHERE order_key = ${i} \
                         AND {UNSENT} AND parked = 1 ORDER BY {pos} LIMIT {per_key}) AS k{i}"
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let sql = format!("UPDATE outbox SET parked = 0 WHERE id IN ({parts})");
            let mut query = sqlx::query(&sql);
            for key in keys {
                query = query.bind(*key);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(finished
            .iter()
            .map(|r| outcome.contains_key(&r.id))
            .collect())
    }

    /// Records a chunk of rows sent (their receivers' answers too) in one
    /// statement, if the claim is still theirs and they need not run
    /// again; the rows it recorded, with their order keys.
    async fn finish_sent(
        conn: &mut DB::Connection,
        claim: Uuid,
        rows: &[&Finished],
        now_ms: i64,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        // $1 now, $2 the claim, then (id, status, duration) per row for the
        // answers, then the ids.
        let mut binds = vec![Bind::I(now_ms), Bind::S(claim.to_string())];
        let mut status = String::new();
        let mut duration = String::new();
        for row in rows {
            if let Some(answer) = &row.answer {
                let n = binds.len();
                binds.push(Bind::S(row.id.to_string()));
                binds.push(Bind::I(answer.status.map_or(-1, i64::from)));
                binds.push(Bind::I(answer.duration_ms));
                status.push_str(&format!(
                    " WHEN ${} THEN NULLIF(CAST(${} AS BIGINT), -1)",
                    n + 1,
                    n + 2
                ));
                duration.push_str(&format!(" WHEN ${} THEN CAST(${} AS BIGINT)", n + 1, n + 3));
            }
        }
        let answers = if status.is_empty() {
            String::new()
        } else {
            format!(
                ", last_status = CASE id{status} ELSE last_status END, \
                 last_duration_ms = CASE id{duration} ELSE last_duration_ms END"
            )
        };
        let first_id = binds.len() + 1;
        let ids = (first_id..first_id + rows.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        binds.extend(rows.iter().map(|r| Bind::S(r.id.to_string())));
        let sql = format!(
            "UPDATE outbox SET claimed_until = NULL, claim_id = NULL, attempts = attempts + 1, \
             last_error = NULL, sent_at = $1{answers} \
             WHERE claim_id = $2 AND again = 0 AND {UNSENT} AND id IN ({ids}) \
             RETURNING id, order_key"
        );
        let recorded = Self::bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&mut *conn)
            .await?;
        recorded
            .iter()
            .map(|r| {
                Ok((
                    parse_uuid(&r.try_get::<String, _>(0)?)?,
                    r.try_get::<Option<String>, _>(1)?,
                ))
            })
            .collect()
    }

    /// Records one row's outcome if the claim is still its own: then its
    /// order key.
    async fn finish_one(
        conn: &mut DB::Connection,
        claim: Uuid,
        row: &Finished,
        now_ms: i64,
    ) -> StoreResult<Option<Option<String>>> {
        let mine = "WHERE id = $1 AND claim_id = $2";
        let release = "claimed_until = NULL, claim_id = NULL";
        let (set, a, b): (String, Bind, Option<Bind>) = match &row.outcome {
            OutboxOutcome::Sent { again_at_ms, .. } => (
                "attempts = attempts + 1, last_error = NULL, \
                 sent_at = CASE WHEN again = 1 THEN NULL ELSE $3 END, \
                 due_at = CASE WHEN again = 1 THEN $4 ELSE due_at END, again = 0"
                    .into(),
                Bind::I(now_ms),
                Some(Bind::I(*again_at_ms)),
            ),
            OutboxOutcome::Retry { at_ms, error } => (
                "attempts = attempts + 1, last_error = $3, due_at = $4".into(),
                Bind::S(truncate(error)),
                Some(Bind::I(*at_ms)),
            ),
            OutboxOutcome::Later { at_ms } => {
                ("again = 0, due_at = $3".into(), Bind::I(*at_ms), None)
            }
            OutboxOutcome::Dropped { error } => (
                "last_error = $3, dropped_at = $4".into(),
                Bind::S(truncate(error)),
                Some(Bind::I(now_ms)),
            ),
        };
        let mut binds = vec![Bind::S(row.id.to_string()), Bind::S(claim.to_string()), a];
        binds.extend(b);
        // What the receiver answered (the delivery log), in the same
        // statement; no status (no answer came) is -1, stored as NULL.
        let answered = match &row.answer {
            Some(answer) => {
                let n = binds.len();
                binds.push(Bind::I(answer.status.map_or(-1, i64::from)));
                binds.push(Bind::I(answer.duration_ms));
                format!(
                    ", last_status = NULLIF(CAST(${} AS BIGINT), -1), last_duration_ms = ${}",
                    n + 1,
                    n + 2
                )
            }
            None => String::new(),
        };
        let sql = format!(
            "UPDATE outbox SET {release}, {set}{answered} {mine} AND {UNSENT} RETURNING order_key"
        );
        let updated = Self::bind_all(sqlx::query(&sql), &binds)
            .fetch_optional(&mut *conn)
            .await?;
        updated
            .map(|r| Ok(r.try_get::<Option<String>, _>(0)?))
            .transpose()
    }

    /// The outbox rows of a group commit's new messages, on its
    /// transaction: a few multi-row statements (webhook events to the log
    /// where there is one: `webhook_log`). Rows sharing a
    /// `dedupe_key` within the batch are one row (the first); a key
    /// already pending is joined as `insert_outbox_on` joins it.
    pub(crate) async fn insert_outbox_rows(
        conn: &mut DB::Connection,
        rows: &[&NewOutbox],
    ) -> StoreResult<()> {
        // Webhook events go to the log where there is one.
        let (logged, rows): (Vec<&NewOutbox>, Vec<&NewOutbox>) = rows
            .iter()
            .copied()
            .partition(|r| super::webhook_log::logged::<DB>(r));
        if !logged.is_empty() {
            Self::insert_log_rows(conn, &logged).await?;
        }
        let mut keys = std::collections::HashSet::new();
        let rows: Vec<&NewOutbox> = rows
            .into_iter()
            .filter(|r| r.dedupe_key.as_ref().is_none_or(|k| keys.insert(k)))
            .collect();
        let mut at = 0;
        for n in insert_chunks(rows.len()) {
            let sql = format!(
                "{INSERT_OUTBOX} {} {}",
                DB::PARAMS.rows(n, INSERT_OUTBOX_COLUMNS),
                joined_while_claimed_after("excluded.created_at")
            );
            let mut query = sqlx::query(&sql);
            for row in &rows[at..at + n] {
                query = Self::bind_outbox(query, row);
            }
            at += n;
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn outbox_row(&self, id: Uuid) -> StoreResult<Option<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::outbox_from_row).transpose()
    }

    pub(crate) async fn pending_outbox(&self, key: &str) -> StoreResult<Option<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE dedupe_key = $1 AND {UNSENT}");
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::outbox_from_row).transpose()
    }

    pub(crate) async fn visitor_emails(
        &self,
        conversations: &[(TenantId, ConversationId)],
    ) -> StoreResult<HashMap<ConversationId, VisitorEmail>> {
        let mut found = HashMap::with_capacity(conversations.len());
        if conversations.is_empty() {
            return Ok(found);
        }
        let tenants: HashMap<ConversationId, TenantId> =
            conversations.iter().map(|&(t, c)| (c, t)).collect();
        let sql = format!(
            "SELECT conversation_id, tenant_id, email, url, emailed_seq, emailed_at, \
             email_unsubscribed, transcript_at FROM visitor_contexts WHERE conversation_id IN ({})",
            Params::Numbered.list(1, conversations.len())
        );
        let mut query = sqlx::query(&sql);
        for (_, c) in conversations {
            query = query.bind(c.to_string());
        }
        for row in query.fetch_all(&self.read).await? {
            let conversation: ConversationId = parse_id(&row.try_get::<String, _>(0)?)?;
            let tenant: TenantId = parse_id(&row.try_get::<String, _>(1)?)?;
            if tenants.get(&conversation) != Some(&tenant) {
                continue;
            }
            found.insert(
                conversation,
                VisitorEmail {
                    email: row.try_get(2)?,
                    url: row.try_get(3)?,
                    emailed_seq: row.try_get(4)?,
                    emailed_at_ms: row.try_get(5)?,
                    unsubscribed: row.try_get::<i64, _>(6)? != 0,
                    transcript_at_ms: row.try_get(7)?,
                },
            );
        }
        Ok(found)
    }

    pub(crate) async fn pending_replies(
        &self,
        wanted: &[RepliesAfter],
        limit_each: u32,
    ) -> StoreResult<HashMap<ConversationId, Vec<Message>>> {
        let mut found: HashMap<ConversationId, Vec<Message>> = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        // One condition per conversation (its tenant and channel too, as
        // `messages_after` keeps them), numbered by the window per
        // conversation so one long run of replies crowds out no other.
        let each: Vec<String> = (0..wanted.len())
            .map(|i| {
                let n = i * 4 + 1;
                format!(
                    "(conversation_id = ${n} AND seq > ${} AND tenant_id = ${} AND channel_id = ${})",
                    n + 1,
                    n + 2,
                    n + 3
                )
            })
            .collect();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM (SELECT m.*, ROW_NUMBER() OVER \
             (PARTITION BY conversation_id ORDER BY seq) AS nth FROM messages m \
             WHERE ({}) AND sender_kind = 'agent' AND state = 'PENDING' AND deleted = 0) x \
             WHERE nth <= {limit_each} ORDER BY conversation_id, seq",
            each.join(" OR ")
        );
        let mut query = sqlx::query(&sql);
        for w in wanted {
            query = query
                .bind(w.conversation.to_string())
                .bind(w.after_seq)
                .bind(w.scope.tenant.to_string())
                .bind(w.scope.channel.to_string());
        }
        for row in query.fetch_all(&self.read).await? {
            let message = Self::message_from_row(&row)?;
            found
                .entry(message.conversation_id)
                .or_default()
                .push(message);
        }
        Ok(found)
    }

    async fn mark_emailed(conn: &mut DB::Connection, emailed: &Emailed) -> StoreResult<()> {
        sqlx::query(
            "UPDATE visitor_contexts SET emailed_at = $1, \
             emailed_seq = CASE WHEN emailed_seq > $2 THEN emailed_seq ELSE $2 END \
             WHERE conversation_id = $3 AND tenant_id = $4",
        )
        .bind(emailed.at_ms)
        .bind(emailed.seq)
        .bind(emailed.conversation.to_string())
        .bind(emailed.tenant.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub(crate) async fn unsubscribe_email(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE visitor_contexts SET email_unsubscribed = 1 \
             WHERE conversation_id = $1 AND tenant_id = $2",
        )
        .bind(conversation.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn request_transcript(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        now_ms: i64,
        min_interval_ms: i64,
        row: &NewOutbox,
    ) -> StoreResult<TranscriptRequested> {
        let mut tx = self.write.begin().await?;
        let state = sqlx::query(
            "SELECT email, transcript_at FROM visitor_contexts \
             WHERE conversation_id = $1 AND tenant_id = $2",
        )
        .bind(conversation.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let email: Option<String> = match &state {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        if email.is_none() {
            return Ok(TranscriptRequested::NoEmail);
        }
        // The conditional update decides between concurrent requests (the
        // row lock on PostgreSQL, the one writer on SQLite): one wins.
        let done = sqlx::query(
            "UPDATE visitor_contexts SET transcript_at = $1 \
             WHERE conversation_id = $2 AND tenant_id = $3 \
             AND (transcript_at IS NULL OR transcript_at <= $4)",
        )
        .bind(now_ms)
        .bind(conversation.to_string())
        .bind(tenant.to_string())
        .bind(now_ms.saturating_sub(min_interval_ms))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(TranscriptRequested::TooSoon);
        }
        Self::insert_outbox_on(&mut *tx, row, now_ms).await?;
        tx.commit().await?;
        Ok(TranscriptRequested::Queued)
    }
}

pub(super) fn truncate(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}
