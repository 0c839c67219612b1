//! The group commit of message appends: one transaction stores every message
//! queued meanwhile (see `store::batch`). Its steps, in order, each one
//! method below and each a few statements for the whole batch (chunked by
//! `insert_chunks`), never one per message (but one per idempotency key):
//!
//! 1. [`lock_rooms`](Sql::lock_rooms): take the conversations' rows in id
//!    order (PostgreSQL), so batches of several instances queue rather than
//!    deadlock;
//! 2. [`reserve_rooms`](Sql::reserve_rooms): one statement per chunk of
//!    rooms adds each room's count of messages to its `last_seq`, sets its
//!    newest message time, and returns with the reservation what the rest
//!    needs: each room's kind, tenant and channel, and each staffed room's
//!    agents (who must be told), so no other read is needed; first messages
//!    create their conversations;
//! 3. [`assign_seqs`](Sql::assign_seqs), per room: the room check
//!    ([`Reserved::admits`]), the messages whose `client_message_id` was seen
//!    before, a seq for each new one, and the seqs (and newest time)
//!    duplicates give back;
//! 4. [`insert_rows`](Sql::insert_rows): the new rows;
//! 5. [`insert_outbox_rows`](Sql::insert_outbox_rows): the outbox rows the
//!    new messages carry (an offline email's) and those their `then` makes
//!    of them as stored (webhook events), when any do;
//!
//! then one commit. Every statement runs while the rooms' rows are locked,
//! so each one more lengthens the wait of the next batch writing the same
//! rooms (on PostgreSQL, another lane or instance): the transaction is
//! BEGIN, the lock (PostgreSQL), the reservation, the insert, COMMIT. A
//! read that the callers of an append need is best a column of the
//! reservation's `RETURNING`.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{AgentId, Message, MessageId, RoomState, SenderKind};
use crate::store::batch::{insert_chunks, Stored, Write, Written};
use crate::store::{Appended, NewMessage, Queued, StoreError, StoreResult};

use super::lane::Lane;
use super::{
    parse_id, parse_room_state, Backend, Sql, INSERT_COLUMNS, INSERT_COLUMN_COUNT, MESSAGE_COLUMNS,
};

/// How a group commit failed.
#[derive(Debug)]
pub(crate) enum Failed {
    /// Before the commit: nothing was stored, so each message may be
    /// stored again on its own.
    BeforeCommit(StoreError),
    /// At the commit: its outcome is unknown (a full disk, a lost
    /// connection), so no message may be stored again by the store.
    AtCommit(StoreError),
}

/// A conversation's row as a batch append reserved its seqs.
pub(crate) struct Reserved {
    pub last_seq: i64,
    pub state: String,
    pub tenant: String,
    /// `None` for agent rooms.
    pub channel: Option<String>,
    /// The agents of a staffed room (comma-separated ids, in joining
    /// order); `None` for a queued room (nobody answered yet) or no members.
    pub members: Option<String>,
    /// The room's visitor data was erased (data rights): it is a shell
    /// that takes no more messages.
    pub erased: bool,
}

impl Reserved {
    /// The agents who must hear of the room's new messages.
    fn agents(&self) -> StoreResult<Vec<AgentId>> {
        // The visitor of a visitor room is not a row; every row is an agent.
        self.members
            .as_deref()
            .map(|list| list.split(',').map(parse_id).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Whether `message` belongs in this room: same tenant, and the same
    /// channel (so a visitor room's message never lands in an agent room,
    /// nor an agent room's in a visitor room).
    /// Compared as text, formatted on the stack: this runs for every
    /// message of every batch.
    pub fn admits(&self, message: &NewMessage) -> bool {
        if self.erased {
            return false;
        }
        let mut buf = uuid::Uuid::encode_buffer();
        if self.tenant.as_str() != message.tenant_id.0.hyphenated().encode_lower(&mut buf) {
            return false;
        }
        match (&self.channel, message.channel_id) {
            (Some(stored), Some(channel)) => {
                stored.as_str() == channel.0.hyphenated().encode_lower(&mut buf)
            }
            (None, None) => true,
            _ => false,
        }
    }
}

/// A batch grouped by conversation, in id order: what every step works on.
struct Rooms<'b> {
    batch: &'b [Queued],
    /// Indexes into `batch`, sorted by conversation; stable, so messages
    /// keep their arrival order within a conversation.
    order: Vec<usize>,
    /// `order[groups[g]]` are the messages of conversation `ids[g]`.
    groups: Vec<Range<usize>>,
    ids: Vec<String>,
    /// How many messages each conversation has in the batch.
    sizes: Vec<i64>,
}

impl<'b> Rooms<'b> {
    fn of(batch: &'b [Queued]) -> Rooms<'b> {
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| batch[i].conversation_id);
        let mut groups = Vec::new();
        let mut at = 0;
        for chunk in order.chunk_by(|&a, &b| batch[a].conversation_id == batch[b].conversation_id) {
            groups.push(at..at + chunk.len());
            at += chunk.len();
        }
        let ids = groups
            .iter()
            .map(|g| batch[order[g.start]].conversation_id.to_string())
            .collect();
        let sizes = groups.iter().map(|g| g.len() as i64).collect();
        Rooms {
            batch,
            order,
            groups,
            ids,
            sizes,
        }
    }

    /// The indexes into `batch` of conversation `g`'s messages, in arrival order.
    fn group(&self, g: usize) -> &[usize] {
        &self.order[self.groups[g].clone()]
    }

    /// The first message of conversation `g`.
    fn first(&self, g: usize) -> &'b Queued {
        &self.batch[self.group(g)[0]]
    }

    /// When the first reply of conversation `g` in the batch was sent: its
    /// first message from an agent (or application), not the visitor's nor
    /// a system notice's.
    fn first_reply_at(&self, g: usize) -> Option<i64> {
        self.group(g)
            .iter()
            .map(|&i| &self.batch[i])
            .find(|q| !matches!(q.sender_kind, SenderKind::Visitor | SenderKind::System))
            .map(|q| q.sent_at_ms)
    }

    /// The last message of conversation `g` (its newest once stored).
    fn last(&self, g: usize) -> &'b Queued {
        let group = self.group(g);
        &self.batch[group[group.len() - 1]]
    }
}

/// What the steps build: one `Appended` per message of the batch, and which
/// of them are new rows to insert.
struct Outcomes {
    results: Vec<Option<Appended>>,
    /// Indexes into the batch of the messages stored now, in seq order per room.
    created: Vec<usize>,
}

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> bool: Type<DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
{
    /// Stores what a lane gathered: its messages and its DELIVERED marks in
    /// one transaction when it has both (see `store::batch`), one result
    /// per write, in order. If that transaction fails before its commit,
    /// each part is stored on its own (the appends as `append_batch` does,
    /// one by one if need be); if its commit fails, the appends' outcome is
    /// unknown and each caller gets the error, while the marks (idempotent)
    /// are tried once more.
    pub(crate) async fn write_batch(lane: &mut Lane<DB>, batch: Vec<Write>) -> Stored<Written> {
        let mut appends = Vec::with_capacity(batch.len());
        let mut marks = Vec::new();
        // Per write, in order: whether it is an append.
        let appended_at: Vec<bool> = batch
            .into_iter()
            .map(|write| match write {
                Write::Append(queued) => {
                    appends.push(queued);
                    true
                }
                Write::Deliver(mark) => {
                    marks.push(mark);
                    false
                }
            })
            .collect();
        if marks.is_empty() {
            return Self::append_batch(lane, appends)
                .await
                .map(Written::Appended);
        }
        if appends.is_empty() {
            return Self::deliver_batch(lane, marks)
                .await
                .map(Written::Delivered);
        }
        let (appended, delivered, one_by_one) = match Self::write_together(lane, &appends, &marks)
            .await
        {
            Ok((appended, mut changed)) => (
                appended.into_iter().map(Ok).collect(),
                marks
                    .iter()
                    .map(|(id, _, _)| Ok(changed.remove(id)))
                    .collect(),
                false,
            ),
            Err(failed) => {
                lane.failed();
                let appended = match failed {
                    Failed::BeforeCommit(err) => {
                        tracing::warn!(error = %err, appends = appends.len(), marks = marks.len(), "batch write failed; storing its parts on their own");
                        Self::append_batch(lane, appends).await
                    }
                    Failed::AtCommit(err) => Stored::all_failed(appends.len(), &err),
                };
                let (appended, _) = appended.into_parts();
                let (delivered, _) = Self::deliver_batch(lane, marks).await.into_parts();
                (appended, delivered, true)
            }
        };
        let mut appended = appended.into_iter();
        let mut delivered = delivered.into_iter();
        let results = appended_at
            .into_iter()
            .map(|is_append| {
                if is_append {
                    appended
                        .next()
                        .expect("one result per append")
                        .map(Written::Appended)
                } else {
                    delivered
                        .next()
                        .expect("one result per mark")
                        .map(Written::Delivered)
                }
            })
            .collect();
        if one_by_one {
            Stored::one_by_one(results)
        } else {
            Stored::together(results)
        }
    }

    /// Appends and marks in one transaction: the appends' steps, then the
    /// marks, then the commit.
    async fn write_together(
        lane: &mut Lane<DB>,
        appends: &[Queued],
        marks: &[super::DeliveredMark],
    ) -> Result<(Vec<Appended>, HashMap<MessageId, Message>), Failed> {
        let rooms = Rooms::of(appends);
        let mut tx = lane
            .begin()
            .await
            .map_err(|e| Failed::BeforeCommit(e.into()))?;
        let outcomes = Self::append_steps(&mut tx, &rooms)
            .await
            .map_err(Failed::BeforeCommit)?;
        let changed = Self::deliver_in(&mut tx, marks)
            .await
            .map_err(Failed::BeforeCommit)?;
        tx.commit().await.map_err(|e| Failed::AtCommit(e.into()))?;
        let appended = outcomes
            .results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect();
        Ok((appended, changed))
    }

    /// Stores a batch of messages in one transaction (group commit) and
    /// returns one result per message, in order. See `store::batch`.
    /// After a failure the lane opens a fresh connection for what follows.
    pub(crate) async fn append_batch(lane: &mut Lane<DB>, batch: Vec<Queued>) -> Stored {
        let first = Self::append_together(lane, &batch).await;
        if first.is_err() {
            lane.failed();
        }
        match first {
            Ok(appended) => Stored::together(appended.into_iter().map(Ok).collect()),
            Err(Failed::BeforeCommit(err)) if batch.len() > 1 => {
                // Nothing was committed: store each on its own, so one
                // bad message fails alone.
                tracing::warn!(error = %err, size = batch.len(), "batch append failed; storing one by one");
                let mut results = Vec::with_capacity(batch.len());
                for new in &batch {
                    let alone = Self::append_together(lane, std::slice::from_ref(new)).await;
                    if alone.is_err() {
                        lane.failed();
                    }
                    results.push(match alone {
                        Ok(mut appended) => Ok(appended.remove(0)),
                        Err(Failed::BeforeCommit(err) | Failed::AtCommit(err)) => Err(err),
                    });
                }
                Stored::one_by_one(results)
            }
            Err(Failed::BeforeCommit(_)) => {
                // Nothing was stored, and the lane's connection may have been
                // stale (the database restarted since its last batch, which
                // only a lane that saw no traffic meanwhile still holds): once
                // more, on a fresh one (`failed` above dropped it).
                let again = Self::append_together(lane, &batch).await;
                if again.is_err() {
                    lane.failed();
                }
                Stored::together(vec![match again {
                    Ok(mut appended) => Ok(appended.remove(0)),
                    Err(Failed::BeforeCommit(err) | Failed::AtCommit(err)) => Err(err),
                }])
            }
            Err(Failed::AtCommit(err)) => {
                // The commit's outcome is unknown: retrying could store
                // twice, so every caller gets the error (a retry with its
                // client_message_id is then safe).
                Stored::all_failed(batch.len(), &err)
            }
        }
    }

    /// The batch in one transaction: the steps of the module doc, then the
    /// commit. Within a conversation, messages keep their arrival order.
    pub(crate) async fn append_together(
        lane: &mut Lane<DB>,
        batch: &[Queued],
    ) -> Result<Vec<Appended>, Failed> {
        // No marks: no statement of theirs runs.
        Ok(Self::write_together(lane, batch, &[]).await?.0)
    }

    /// Everything before the commit, on the batch's transaction.
    async fn append_steps(conn: &mut DB::Connection, rooms: &Rooms<'_>) -> StoreResult<Outcomes> {
        Self::lock_rooms(conn, &rooms.ids).await?;
        let reserved = Self::reserve_rooms(conn, rooms).await?;
        let mut outcomes = Outcomes {
            results: vec![None; rooms.batch.len()],
            created: Vec::with_capacity(rooms.batch.len()),
        };
        for g in 0..rooms.groups.len() {
            Self::assign_seqs(conn, rooms, g, &reserved, &mut outcomes).await?;
        }
        Self::insert_rows(conn, rooms.batch, &outcomes).await?;
        // The rows each new message's `then` makes of it as stored (its
        // seq known), in seq order per room.
        let made: Vec<_> = outcomes
            .created
            .iter()
            .filter_map(|&i| {
                let then = rooms.batch[i].then.as_ref()?;
                let appended = outcomes.results[i].as_ref()?;
                Some(then.rows(&appended.message))
            })
            .flatten()
            .collect();
        let outbox: Vec<_> = outcomes
            .created
            .iter()
            .flat_map(|&i| &rooms.batch[i].outbox)
            .chain(&made)
            .collect();
        if !outbox.is_empty() {
            Self::insert_outbox_rows(conn, &outbox).await?;
        }
        Ok(outcomes)
    }

    /// Locks every conversation row in id order first, where the backend
    /// needs it (`Backend::LOCK_ROWS`), so concurrent batches queue instead
    /// of deadlocking. A batch of one conversation needs no order: the
    /// reservation's `UPDATE`, its next statement, takes the same one row
    /// lock at the same point of the transaction. Under agents' traffic on
    /// PostgreSQL most batches are one conversation: a round trip less for
    /// each (README, "Where PostgreSQL's time goes on the agent path").
    async fn lock_rooms(conn: &mut DB::Connection, ids: &[String]) -> StoreResult<()> {
        let Some(lock) = DB::LOCK_ROWS else {
            return Ok(());
        };
        if ids.len() < 2 {
            return Ok(());
        }
        let mut at = 0;
        for n in insert_chunks(ids.len()) {
            let sql = format!(
                "{lock} IN ({}) ORDER BY id FOR UPDATE",
                DB::PARAMS.list(1, n)
            );
            let mut query = sqlx::query(&sql);
            for id in &ids[at..at + n] {
                query = query.bind(id.as_str());
            }
            at += n;
            query.fetch_all(&mut *conn).await?;
        }
        Ok(())
    }

    /// Reserves each room's seqs (its `last_seq` grows by its count of
    /// messages), creating first the conversations that do not exist yet;
    /// every room of the batch is in the map returned.
    async fn reserve_rooms(
        conn: &mut DB::Connection,
        rooms: &Rooms<'_>,
    ) -> StoreResult<HashMap<String, Reserved>> {
        let newest: Vec<i64> = (0..rooms.groups.len())
            .map(|g| rooms.last(g).sent_at_ms)
            .collect();
        let answered: Vec<Option<i64>> = (0..rooms.groups.len())
            .map(|g| rooms.first_reply_at(g))
            .collect();
        let mut reserved =
            Self::reserve(conn, &rooms.ids, &rooms.sizes, &newest, &answered).await?;
        let missing: Vec<usize> = (0..rooms.groups.len())
            .filter(|&g| !reserved.contains_key(&rooms.ids[g]))
            .collect();
        if !missing.is_empty() {
            Self::create_conversations(conn, rooms, &missing).await?;
            let new_ids: Vec<String> = missing.iter().map(|&g| rooms.ids[g].clone()).collect();
            let new_sizes: Vec<i64> = missing.iter().map(|&g| rooms.sizes[g]).collect();
            let new_newest: Vec<i64> = missing.iter().map(|&g| newest[g]).collect();
            let new_answered: Vec<Option<i64>> = missing.iter().map(|&g| answered[g]).collect();
            reserved.extend(
                Self::reserve(conn, &new_ids, &new_sizes, &new_newest, &new_answered).await?,
            );
        }
        Ok(reserved)
    }

    /// Adds `sizes[i]` to the `last_seq` of conversation `ids[i]`, sets
    /// its newest message time to `newest[i]` and, when `answered[i]` is
    /// the time of a reply in the batch, its first response time unless it
    /// has one (reports): in the same statement, so a batch of visitor
    /// messages runs exactly what it ran before. Returns
    /// the reservation of each conversation that exists (a missing one is
    /// absent from the map), with its staffed agents (`Backend::MEMBERS`).
    async fn reserve(
        conn: &mut DB::Connection,
        ids: &[String],
        sizes: &[i64],
        newest: &[i64],
        answered: &[Option<i64>],
    ) -> Result<HashMap<String, Reserved>, sqlx::Error> {
        let params = DB::PARAMS;
        let mut last = HashMap::with_capacity(ids.len());
        let mut at = 0;
        for n in insert_chunks(ids.len()) {
            // Parameters in textual order: (id, size) per WHEN of the seqs,
            // (id, time) per WHEN of the times, then the ids.
            let cases = |from: usize| -> String {
                (0..n)
                    .map(|i| {
                        format!(
                            " WHEN {} THEN CAST({} AS BIGINT)",
                            params.one(from + 2 * i),
                            params.one(from + 2 * i + 1)
                        )
                    })
                    .collect()
            };
            let chunk = at..at + n;
            // The rooms of the chunk with a reply: (id, time) per WHEN,
            // after those of the times. None: the clause is left out.
            let replies: Vec<(&str, i64)> = ids[chunk.clone()]
                .iter()
                .zip(&answered[chunk.clone()])
                .filter_map(|(id, at)| at.map(|at| (id.as_str(), at)))
                .collect();
            let first_response = if replies.is_empty() {
                String::new()
            } else {
                let from = 4 * n + 1;
                let whens: String = (0..replies.len())
                    .map(|i| {
                        format!(
                            " WHEN {} THEN CAST({} AS BIGINT)",
                            params.one(from + 2 * i),
                            params.one(from + 2 * i + 1)
                        )
                    })
                    .collect();
                format!(
                    ", first_response_at = CASE WHEN kind = 'visitor' \
                     THEN COALESCE(first_response_at, CASE id{whens} END) \
                     ELSE first_response_at END"
                )
            };
            let sql = format!(
                "UPDATE conversations SET last_seq = last_seq + CASE id{} END, \
                 last_message_at = CASE id{} END{first_response} \
                 WHERE id IN ({}) RETURNING id, last_seq, state, tenant_id, channel_id, \
                 CASE WHEN state = 'queued' THEN NULL ELSE {} END, \
                 CAST(CASE WHEN erased_at IS NULL THEN 0 ELSE 1 END AS BIGINT)",
                cases(1),
                cases(2 * n + 1),
                params.list(4 * n + 2 * replies.len() + 1, n),
                DB::MEMBER_IDS,
            );
            let mut query = sqlx::query(&sql);
            for (id, size) in ids[chunk.clone()].iter().zip(&sizes[chunk.clone()]) {
                query = query.bind(id.as_str()).bind(*size);
            }
            for (id, time) in ids[chunk.clone()].iter().zip(&newest[chunk.clone()]) {
                query = query.bind(id.as_str()).bind(*time);
            }
            for (id, time) in &replies {
                query = query.bind(*id).bind(*time);
            }
            for id in &ids[chunk] {
                query = query.bind(id.as_str());
            }
            at += n;
            for row in query.fetch_all(&mut *conn).await? {
                last.insert(
                    row.try_get::<String, _>(0)?,
                    Reserved {
                        last_seq: row.try_get(1)?,
                        state: row.try_get(2)?,
                        tenant: row.try_get(3)?,
                        channel: row.try_get(4)?,
                        members: row.try_get(5)?,
                        erased: row.try_get::<i64, _>(6)? != 0,
                    },
                );
            }
        }
        Ok(last)
    }

    /// First messages create their conversations (the `missing` groups),
    /// queued, with no seq reserved yet, and with what the first message's
    /// `opening` stores with them (whose conversation it is, the pre-chat
    /// answers, the page's context): in this transaction, so nobody sees
    /// the conversation without them and no write to its row follows.
    /// Two first messages at once are safe on PostgreSQL too: the second
    /// insert waits for the first transaction on the primary key, then does
    /// nothing (no unique violation surfaces, and its opening is not
    /// written: only the conversations this insert created are returned),
    /// and its reservation queues on the row.
    async fn create_conversations(
        conn: &mut DB::Connection,
        rooms: &Rooms<'_>,
        missing: &[usize],
    ) -> StoreResult<()> {
        let mut created: HashSet<String> = HashSet::new();
        let mut at = 0;
        for n in insert_chunks(missing.len()) {
            let sql = format!(
                "INSERT INTO conversations (id, channel_id, tenant_id, created_at, last_seq, kind, \
                 state, queued_at, visitor_key, verified, prechat) \
                 VALUES {} ON CONFLICT (id) DO NOTHING RETURNING id",
                DB::PARAMS.rows(n, 11)
            );
            let mut query = sqlx::query(&sql);
            for &g in &missing[at..at + n] {
                let first = rooms.first(g);
                let opening = first.opening.as_deref();
                let owner = opening.and_then(|o| o.owner.as_ref());
                let prechat = opening
                    .and_then(|o| o.prechat.as_ref())
                    .map(|answers| serde_json::to_string(answers).unwrap_or_default());
                query = query
                    .bind(rooms.ids[g].clone())
                    .bind(first.channel_id.map(|c| c.to_string()))
                    .bind(first.tenant_id.to_string())
                    .bind(first.sent_at_ms)
                    .bind(0_i64)
                    .bind("visitor")
                    .bind("queued")
                    .bind(first.sent_at_ms)
                    .bind(owner.map(|(key, _)| key.as_str().to_string()))
                    .bind(owner.map_or(0, |&(_, verified)| i64::from(verified)))
                    .bind(prechat);
            }
            at += n;
            for row in query.fetch_all(&mut *conn).await? {
                created.insert(row.try_get(0)?);
            }
        }
        // The page contexts of the conversations created now, a statement
        // per chunk (never one per conversation: a burst of visitors
        // opening at once is one batch).
        let contexts: Vec<(&Queued, &crate::domain::VisitorContext)> = missing
            .iter()
            .filter(|&&g| created.contains(&rooms.ids[g]))
            .filter_map(|&g| {
                let first = rooms.first(g);
                let context = first.opening.as_deref()?.context.as_deref()?;
                Some((first, context))
            })
            .collect();
        let mut at = 0;
        for n in insert_chunks(contexts.len()) {
            let sql = Self::visitor_contexts_upsert(n);
            let mut query = sqlx::query(&sql);
            for &(first, context) in &contexts[at..at + n] {
                query = Self::bind_visitor_context(
                    query,
                    first.tenant_id,
                    first.conversation_id,
                    context,
                    first.sent_at_ms,
                );
            }
            at += n;
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Room `g`'s messages: checks they belong in it, answers repeated
    /// `client_message_id`s with the first message, numbers the new ones
    /// from the reservation, and gives back the seqs duplicates reserved.
    async fn assign_seqs(
        conn: &mut DB::Connection,
        rooms: &Rooms<'_>,
        g: usize,
        reserved: &HashMap<String, Reserved>,
        outcomes: &mut Outcomes,
    ) -> StoreResult<()> {
        let conversation = &rooms.ids[g];
        let group = rooms.group(g);
        let Some(reserved) = reserved.get(conversation) else {
            return Err(StoreError::Corrupt(format!(
                "conversation {conversation} vanished while storing"
            )));
        };
        // A message lands only in a room of its own kind, tenant and
        // channel (agent rooms have no channel): whatever the caller
        // checked, the store checks again.
        if group.iter().any(|&i| !reserved.admits(&rooms.batch[i])) {
            return Err(StoreError::WrongRoom);
        }
        let mut seen = Self::earlier_messages(conn, conversation, rooms.batch, group).await?;
        let room = Snapshot {
            state: parse_room_state(&reserved.state)?,
            agents: reserved.agents()?,
        };
        let last = reserved.last_seq;
        let mut seq = last - rooms.sizes[g];
        for &i in group {
            let new = &rooms.batch[i];
            let earlier = new.client_message_id.as_ref().and_then(|key| seen.get(key));
            if let Some(earlier) = earlier {
                outcomes.results[i] = Some(room.appended(earlier.clone(), false));
                continue;
            }
            seq += 1;
            let message = stored(new, seq);
            if let Some(key) = &new.client_message_id {
                seen.insert(key.clone(), message.clone());
            }
            outcomes.results[i] = Some(room.appended(message, true));
            outcomes.created.push(i);
        }
        if seq != last {
            // Duplicates took no seq: give back what they reserved, and the
            // newest time the reservation set: the newest new message's, or
            // (none new) the room's newest stored one's.
            let newest = group
                .iter()
                .rev()
                .find_map(|&i| outcomes.results[i].as_ref().filter(|a| a.created))
                .map(|a| a.message.sent_at_ms);
            sqlx::query(
                "UPDATE conversations SET last_seq = $2, last_message_at = COALESCE($3, \
                 (SELECT m.sent_at FROM messages m WHERE m.conversation_id = $1 AND m.seq = $2)) \
                 WHERE id = $1",
            )
            .bind(conversation.as_str())
            .bind(seq)
            .bind(newest)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The stored messages of `conversation` whose `client_message_id` one
    /// of `group` repeats, by key: one look-up per key (a key found is not looked up again). The
    /// reservation holds the row lock until commit, so concurrent writers
    /// of this conversation (any instance) queue, and under READ COMMITTED
    /// this check's fresh snapshot sees every earlier committed attempt.
    async fn earlier_messages(
        conn: &mut DB::Connection,
        conversation: &str,
        batch: &[Queued],
        group: &[usize],
    ) -> StoreResult<HashMap<String, Message>> {
        let mut seen: HashMap<String, Message> = HashMap::new();
        let sql = format!(
            "SELECT {} FROM messages WHERE conversation_id = $1 AND client_message_id = $2",
            MESSAGE_COLUMNS
        );
        for &i in group {
            let Some(key) = &batch[i].client_message_id else {
                continue;
            };
            if seen.contains_key(key) {
                continue;
            }
            let earlier = sqlx::query(&sql)
                .bind(conversation)
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = earlier {
                seen.insert(key.clone(), Self::message_from_row(&row)?);
            }
        }
        Ok(seen)
    }

    /// Inserts the new messages' rows, many per statement.
    async fn insert_rows(
        conn: &mut DB::Connection,
        batch: &[Queued],
        outcomes: &Outcomes,
    ) -> StoreResult<()> {
        let mut rows = outcomes.created.iter().map(|&i| {
            (
                outcomes.results[i].as_ref().expect("created above"),
                &batch[i].search_text,
            )
        });
        for size in insert_chunks(outcomes.created.len()) {
            let sql = format!(
                "INSERT INTO messages ({}) VALUES {}",
                INSERT_COLUMNS,
                DB::PARAMS.rows(size, INSERT_COLUMN_COUNT)
            );
            let mut query = sqlx::query(&sql);
            for (appended, search_text) in rows.by_ref().take(size) {
                let m = &appended.message;
                query = query
                    .bind(m.id.to_string())
                    .bind(m.conversation_id.to_string())
                    .bind(m.channel_id.map(|c| c.to_string()))
                    .bind(m.seq)
                    .bind(m.sender_kind.as_str())
                    .bind(m.sender_id.to_string())
                    .bind(m.sender_name.clone())
                    .bind(m.sender_avatar.clone())
                    .bind(m.content.clone())
                    .bind(m.state.as_str())
                    .bind(m.sent_at_ms)
                    .bind(m.client_message_id.clone())
                    .bind(m.tenant_id.to_string())
                    .bind(search_text.as_str())
                    .bind(m.notice.as_ref().map(crate::domain::Notice::encode))
                    .bind(crate::domain::QuickReply::encode_list(&m.quick_replies))
                    .bind(m.postback.clone())
                    .bind(super::encode_mentions(&m.mentions))
                    .bind(crate::domain::Attachment::encode_list(&m.attachments))
                    .bind(i64::from(m.bot));
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// The room as the append found it: what every outcome of its group shares.
struct Snapshot {
    state: RoomState,
    agents: Vec<AgentId>,
}

impl Snapshot {
    fn appended(&self, message: Message, created: bool) -> Appended {
        Appended {
            message,
            created,
            agents: self.agents.clone(),
            room_state: self.state,
        }
    }
}

/// The message `new` becomes when stored with `seq`.
fn stored(new: &NewMessage, seq: i64) -> Message {
    Message {
        id: new.id,
        conversation_id: new.conversation_id,
        channel_id: new.channel_id,
        seq,
        sender_kind: new.sender_kind,
        sender_id: new.sender_id,
        sender_name: new.sender_name.clone(),
        sender_avatar: new.sender_avatar.clone(),
        content: new.content.clone(),
        state: new.state,
        sent_at_ms: new.sent_at_ms,
        client_message_id: new.client_message_id.clone(),
        tenant_id: new.tenant_id,
        read_at_ms: None,
        edited_at_ms: None,
        deleted: false,
        reactions: Vec::new(),
        notice: new.notice.clone(),
        quick_replies: new.quick_replies.clone(),
        postback: new.postback.clone(),
        mentions: new.mentions.clone(),
        attachments: new.attachments.clone(),
        private: false,
        bot: new.bot,
    }
}
