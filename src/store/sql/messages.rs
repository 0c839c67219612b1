//! The SQL of messages: group-committed appends (seq reservation, idempotency
//! keys, the audience read in the same transaction), pages and searches, edits,
//! DELIVERED and FAILED marks, visitor read marks. Methods of `Sql`, generic
//! over the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{
    AgentId, ChannelId, Conversation, ConversationId, Message, MessageId, Reaction, RoomId,
    TenantId,
};
use crate::store::batch::insert_chunks;
use crate::store::{
    Appended, ConversationLookup, MessageQuery, Page, Queued, StoreError, StoreResult, VisitorScope,
};

use super::{
    parse_id, parse_kind, parse_room_state, parse_state, parse_uuid, seqs_between, Backend, Bind,
    Filter, Reserved, RowsAffected, Sql, INSERT_COLUMNS, MESSAGE_COLUMNS, M_COLUMNS,
};

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
    pub(crate) fn message_from_row(row: &<DB as sqlx::Database>::Row) -> StoreResult<Message> {
        Ok(Message {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            conversation_id: parse_id(&row.try_get::<String, _>(1)?)?,
            channel_id: row
                .try_get::<Option<String>, _>(2)?
                .as_deref()
                .map(parse_id)
                .transpose()?,
            seq: row.try_get(3)?,
            sender_kind: parse_kind(&row.try_get::<String, _>(4)?)?,
            sender_id: parse_uuid(&row.try_get::<String, _>(5)?)?,
            sender_name: row.try_get(6)?,
            sender_avatar: row.try_get(7)?,
            content: row.try_get(8)?,
            state: parse_state(&row.try_get::<String, _>(9)?)?,
            sent_at_ms: row.try_get(10)?,
            client_message_id: row.try_get(11)?,
            tenant_id: parse_id(&row.try_get::<String, _>(12)?)?,
            read_at_ms: row.try_get(13)?,
            edited_at_ms: row.try_get(14)?,
            deleted: row.try_get::<i64, _>(15)? != 0,
            reactions: Vec::new(),
        })
    }

    /// The messages a query selects (`M_COLUMNS`), with their reactions.
    pub(crate) async fn messages_with_reactions(
        &self,
        sql: &str,
        binds: &[Bind],
    ) -> StoreResult<Vec<Message>> {
        let rows = Self::bind_all(sqlx::query(sql), binds)
            .fetch_all(&self.read)
            .await?;
        let mut messages = rows
            .iter()
            .map(Self::message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if messages.is_empty() {
            return Ok(messages);
        }
        let params: crate::store::batch::Params = crate::store::batch::Params::Numbered;
        let sql = format!(
                    "SELECT message_id, user_id, emoji FROM reactions WHERE message_id IN ({}) ORDER BY created_at, emoji",
                    params.list(1, messages.len())
                );
        let mut query = sqlx::query(&sql);
        for m in &messages {
            query = query.bind(m.id.to_string());
        }
        let mut by_message: std::collections::HashMap<String, Vec<Reaction>> =
            std::collections::HashMap::new();
        for row in query.fetch_all(&self.read).await? {
            by_message
                .entry(row.try_get::<String, _>(0)?)
                .or_default()
                .push(Reaction {
                    user_id: parse_uuid(&row.try_get::<String, _>(1)?)?,
                    emoji: row.try_get(2)?,
                });
        }
        for m in &mut messages {
            if let Some(reactions) = by_message.remove(&m.id.to_string()) {
                m.reactions = reactions;
            }
        }
        Ok(messages)
    }

    /// Marks a batch of messages DELIVERED; `Some` for those that were PENDING.
    pub(crate) async fn deliver_batch(
        pool: &sqlx::Pool<DB>,
        ids: Vec<(MessageId, TenantId)>,
    ) -> crate::store::batch::Stored<Option<Message>> {
        let params: crate::store::batch::Params = DB::PARAMS;
        let mut changed: std::collections::HashMap<MessageId, Message> =
            std::collections::HashMap::new();
        let mut at = 0;
        for n in crate::store::batch::insert_chunks(ids.len()) {
            let sql = format!(
                "UPDATE messages SET state = 'DELIVERED' WHERE state = 'PENDING' \
                         AND (id, tenant_id) IN (VALUES {}) RETURNING {}",
                params.rows(n, 2),
                MESSAGE_COLUMNS
            );
            let mut query = sqlx::query(&sql);
            for (id, tenant) in &ids[at..at + n] {
                query = query.bind(id.to_string()).bind(tenant.to_string());
            }
            at += n;
            match query.fetch_all(pool).await {
                Ok(rows) => {
                    for row in &rows {
                        match Self::message_from_row(row) {
                            Ok(m) => {
                                changed.insert(m.id, m);
                            }
                            Err(e) => tracing::warn!(error = %e, "delivered mark: bad row"),
                        }
                    }
                }
                Err(e) => {
                    let err = e.to_string();
                    return crate::store::batch::Stored::together(
                        ids.iter()
                            .map(|_| Err(StoreError::Unavailable(err.clone())))
                            .collect(),
                    );
                }
            }
        }
        crate::store::batch::Stored::together(
            ids.iter().map(|(id, _)| Ok(changed.remove(id))).collect(),
        )
    }

    /// Stores a batch of messages in one transaction (group commit) and
    /// returns one result per message, in order. See `store::batch`.
    pub(crate) async fn append_batch(
        pool: &sqlx::Pool<DB>,
        batch: Vec<Queued>,
    ) -> crate::store::batch::Stored {
        match Self::append_together(pool, &batch).await {
            Ok(appended) => {
                crate::store::batch::Stored::together(appended.into_iter().map(Ok).collect())
            }
            Err((false, err)) if batch.len() > 1 => {
                // Nothing was committed: store each on its own, so one
                // bad message fails alone.
                tracing::warn!(error = %err, size = batch.len(), "batch append failed; storing one by one");
                let mut results = Vec::with_capacity(batch.len());
                for new in &batch {
                    let alone = Self::append_together(pool, std::slice::from_ref(new)).await;
                    results.push(match alone {
                        Ok(mut appended) => Ok(appended.remove(0)),
                        Err((_, err)) => Err(err),
                    });
                }
                crate::store::batch::Stored::one_by_one(results)
            }
            Err((false, err)) => crate::store::batch::Stored::together(vec![Err(err)]),
            Err((true, err)) => {
                // The commit's outcome is unknown: retrying could store
                // twice, so every caller gets the error (a retry with its
                // client_message_id is then safe).
                let err = err.to_string();
                crate::store::batch::Stored::together(
                    batch
                        .iter()
                        .map(|_| Err(StoreError::Unavailable(err.clone())))
                        .collect(),
                )
            }
        }
    }

    /// Adds `sizes[i]` to the `last_seq` of conversation `ids[i]`, in a
    /// few statements; returns the new `last_seq` of each conversation
    /// that exists (a missing one is absent from the map).
    pub(crate) async fn reserve(
        conn: &mut <DB as sqlx::Database>::Connection,
        ids: &[String],
        sizes: &[i64],
    ) -> Result<std::collections::HashMap<String, Reserved>, sqlx::Error> {
        let params: crate::store::batch::Params = DB::PARAMS;
        let mut last = std::collections::HashMap::with_capacity(ids.len());
        let mut at = 0;
        for n in insert_chunks(ids.len()) {
            // Parameters in textual order: (id, size) per WHEN, then the ids.
            let cases: String = (0..n)
                .map(|i| {
                    format!(
                        " WHEN {} THEN CAST({} AS BIGINT)",
                        params.one(2 * i + 1),
                        params.one(2 * i + 2)
                    )
                })
                .collect();
            let sql = format!(
                "UPDATE conversations SET last_seq = last_seq + CASE id{cases} END \
                         WHERE id IN ({}) RETURNING id, last_seq, state, tenant_id, channel_id",
                params.list(2 * n + 1, n)
            );
            let mut query = sqlx::query(&sql);
            for (id, size) in ids[at..at + n].iter().zip(&sizes[at..at + n]) {
                query = query.bind(id.as_str()).bind(*size);
            }
            for id in &ids[at..at + n] {
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
                    },
                );
            }
        }
        Ok(last)
    }

    /// The batch in one transaction. Conversations are locked in id
    /// order, so batches of several instances never deadlock; within a
    /// conversation, messages keep their arrival order. On error, the
    /// flag tells whether the commit itself failed.
    pub(crate) async fn append_together(
        pool: &sqlx::Pool<DB>,
        batch: &[Queued],
    ) -> Result<Vec<Appended>, (bool, StoreError)> {
        let params: crate::store::batch::Params = DB::PARAMS;
        let before = |e: sqlx::Error| (false, StoreError::from(e));
        let mut order: Vec<usize> = (0..batch.len()).collect();
        // Stable: arrival order is kept within a conversation.
        order.sort_by_key(|&i| batch[i].conversation_id);
        let mut tx = pool.begin().await.map_err(before)?;
        let mut results: Vec<Option<Appended>> = vec![None; batch.len()];
        let mut created: Vec<usize> = Vec::with_capacity(batch.len());
        let groups: Vec<&[usize]> = order
            .chunk_by(|&a, &b| batch[a].conversation_id == batch[b].conversation_id)
            .collect();
        let ids: Vec<String> = groups
            .iter()
            .map(|g| batch[g[0]].conversation_id.to_string())
            .collect();
        // Lock every conversation row in id order first (where the
        // backend needs it), so concurrent batches queue instead of
        // deadlocking; then reserve each group's seqs in a few statements.
        if let Some(lock) = DB::LOCK_ROWS {
            let mut at = 0;
            for n in insert_chunks(ids.len()) {
                let sql = format!("{lock} IN ({}) ORDER BY id FOR UPDATE", params.list(1, n));
                let mut query = sqlx::query(&sql);
                for id in &ids[at..at + n] {
                    query = query.bind(id.as_str());
                }
                at += n;
                query.fetch_all(&mut *tx).await.map_err(before)?;
            }
        }
        let sizes: Vec<i64> = groups.iter().map(|g| g.len() as i64).collect();
        let mut last = Self::reserve(&mut *tx, &ids, &sizes)
            .await
            .map_err(before)?;
        let missing: Vec<usize> = (0..groups.len())
            .filter(|&g| !last.contains_key(&ids[g]))
            .collect();
        if !missing.is_empty() {
            // First messages create their conversations. Two first
            // messages at once are safe on PostgreSQL too: the second
            // insert waits for the first transaction on the primary
            // key, then does nothing (no unique violation surfaces),
            // and its reservation below queues on the row.
            for chunk in insert_chunks(missing.len()).into_iter().scan(0, |at, n| {
                let range = *at..*at + n;
                *at += n;
                Some(range)
            }) {
                let sql = format!(
                            "INSERT INTO conversations (id, channel_id, tenant_id, created_at, last_seq, kind, state, queued_at) \
                             VALUES {} ON CONFLICT (id) DO NOTHING",
                            params.rows(chunk.len(), 8)
                        );
                let mut query = sqlx::query(&sql);
                for &g in &missing[chunk] {
                    let first = &batch[groups[g][0]];
                    query = query
                        .bind(ids[g].clone())
                        .bind(first.channel_id.map(|c| c.to_string()))
                        .bind(first.tenant_id.to_string())
                        .bind(first.sent_at_ms)
                        .bind(0_i64)
                        .bind("visitor")
                        .bind("queued")
                        .bind(first.sent_at_ms);
                }
                query.execute(&mut *tx).await.map_err(before)?;
            }
            let new_ids: Vec<String> = missing.iter().map(|&g| ids[g].clone()).collect();
            let new_sizes: Vec<i64> = missing.iter().map(|&g| sizes[g]).collect();
            last.extend(
                Self::reserve(&mut *tx, &new_ids, &new_sizes)
                    .await
                    .map_err(before)?,
            );
        }
        // Who must hear of these messages: each room's agents, read
        // in the same transaction as the reservation. A queued room
        // has none (nobody answered yet): no read for those.
        let mut members: std::collections::HashMap<String, Vec<AgentId>> =
            std::collections::HashMap::new();
        let staffed: Vec<&String> = ids
            .iter()
            .filter(|id| last.get(*id).is_some_and(|r| r.state != "queued"))
            .collect();
        {
            let mut at = 0;
            for n in insert_chunks(staffed.len()) {
                let sql = format!(
                            "SELECT room_id, member_id FROM room_members WHERE room_id IN ({}) ORDER BY joined_at",
                            params.list(1, n)
                        );
                let mut query = sqlx::query(&sql);
                for id in &staffed[at..at + n] {
                    query = query.bind(id.as_str());
                }
                at += n;
                for row in query.fetch_all(&mut *tx).await.map_err(before)? {
                    let room: String = row.try_get(0).map_err(before)?;
                    let member: String = row.try_get(1).map_err(before)?;
                    // The visitor of a visitor room is not a row; every row is an agent.
                    let agent = parse_id(&member).map_err(|e| (false, e))?;
                    members.entry(room).or_default().push(agent);
                }
            }
        }
        for (g, group) in groups.iter().enumerate() {
            let conversation = &ids[g];
            let k = sizes[g];
            let Some(reserved) = last.get(conversation) else {
                return Err((
                    false,
                    StoreError::Corrupt(format!(
                        "conversation {conversation} vanished while storing"
                    )),
                ));
            };
            // A message lands only in a room of its own kind, tenant
            // and channel (agent rooms have no channel): whatever the
            // caller checked, the store checks again.
            if group.iter().any(|&i| !reserved.admits(&batch[i])) {
                return Err((false, StoreError::WrongRoom));
            }
            let (last, state) = (&reserved.last_seq, &reserved.state);
            // Keys seen before (committed by anyone, or earlier in this
            // batch) return the first message. The reservation holds the
            // row lock until commit, so concurrent writers of this
            // conversation (any instance) queue, and under READ
            // COMMITTED this check's fresh snapshot sees every earlier
            // committed attempt.
            let mut seen: std::collections::HashMap<String, Message> =
                std::collections::HashMap::new();
            let sql = format!(
                "SELECT {} FROM messages WHERE conversation_id = $1 AND client_message_id = $2",
                MESSAGE_COLUMNS
            );
            for &i in group.iter() {
                if let Some(key) = &batch[i].client_message_id {
                    if seen.contains_key(key) {
                        continue;
                    }
                    let earlier = sqlx::query(&sql)
                        .bind(conversation.as_str())
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(before)?;
                    if let Some(row) = earlier {
                        let message = Self::message_from_row(&row).map_err(|e| (false, e))?;
                        seen.insert(key.clone(), message);
                    }
                }
            }
            let last = *last;
            let room_state = parse_room_state(state).map_err(|e| (false, e))?;
            let agents = members.get(conversation).cloned().unwrap_or_default();
            let mut seq = last - k;
            for &i in group.iter() {
                let new = &batch[i];
                if let Some(earlier) = new.client_message_id.as_ref().and_then(|key| seen.get(key))
                {
                    results[i] = Some(Appended {
                        message: earlier.clone(),
                        created: false,
                        agents: agents.clone(),
                        room_state,
                    });
                    continue;
                }
                seq += 1;
                let message = Message {
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
                };
                if let Some(key) = &new.client_message_id {
                    seen.insert(key.clone(), message.clone());
                }
                results[i] = Some(Appended {
                    message,
                    created: true,
                    agents: agents.clone(),
                    room_state,
                });
                created.push(i);
            }
            if seq != last {
                // Duplicates took no seq: give back what they reserved.
                sqlx::query("UPDATE conversations SET last_seq = $2 WHERE id = $1")
                    .bind(conversation.as_str())
                    .bind(seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(before)?;
            }
        }
        let mut rows = created.iter().map(|&i| {
            (
                results[i].as_ref().expect("created above"),
                &batch[i].search_text,
            )
        });
        for size in insert_chunks(created.len()) {
            let sql = format!(
                "INSERT INTO messages ({}) VALUES {}",
                INSERT_COLUMNS,
                params.rows(size, 14)
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
                    .bind(search_text.as_str());
            }
            query.execute(&mut *tx).await.map_err(before)?;
        }
        // Each room's newest message time, which room lists are
        // ordered by, read back from its newest message (so a group of
        // duplicates that gave its seqs back leaves it as it was).
        let mut at = 0;
        for n in insert_chunks(ids.len()) {
            let sql = format!(
                        "UPDATE conversations SET last_message_at = (SELECT m.sent_at FROM messages m \
                         WHERE m.conversation_id = conversations.id AND m.seq = conversations.last_seq) \
                         WHERE id IN ({})",
                        params.list(1, n)
                    );
            let mut query = sqlx::query(&sql);
            for id in &ids[at..at + n] {
                query = query.bind(id.as_str());
            }
            at += n;
            query.execute(&mut *tx).await.map_err(before)?;
        }
        tx.commit().await.map_err(|e| (true, e.into()))?;
        Ok(results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect())
    }

    pub(crate) async fn conversation(
        &self,
        scope: VisitorScope,
        id: ConversationId,
    ) -> StoreResult<ConversationLookup> {
        // Looked up by id alone on purpose: an id some other room
        // holds must be told apart from a free one.
        let row = sqlx::query(
                    "SELECT id, channel_id, tenant_id, created_at, last_seq, kind FROM conversations WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await?;
        let Some(row) = row else {
            return Ok(ConversationLookup::Free);
        };
        let kind: String = row.try_get(5)?;
        let channel: Option<String> = row.try_get(1)?;
        let tenant: String = row.try_get(2)?;
        if kind != "visitor"
            || channel.as_deref() != Some(scope.channel.to_string().as_str())
            || tenant != scope.tenant.to_string()
        {
            return Ok(ConversationLookup::Elsewhere);
        }
        Ok(ConversationLookup::Found(Conversation {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            channel_id: scope.channel,
            tenant_id: scope.tenant,
            created_at_ms: row.try_get(3)?,
            last_seq: row.try_get(4)?,
        }))
    }

    pub(crate) async fn messages_after(
        &self,
        scope: VisitorScope,
        conversation: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        // Only visitor rooms' messages carry a channel: the filter
        // keeps the kind, the tenant and the channel.
        let sql = format!(
            "SELECT {} FROM messages WHERE conversation_id = $1 AND seq > $2 \
                     AND tenant_id = $3 AND channel_id = $4 ORDER BY seq LIMIT $5",
            MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(conversation.to_string())
            .bind(after_seq)
            .bind(scope.tenant.to_string())
            .bind(scope.channel.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::message_from_row).collect()
    }

    pub(crate) async fn history(
        &self,
        scope: VisitorScope,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {} FROM messages WHERE conversation_id = $1 \
                     AND tenant_id = $2 AND channel_id = $3 ORDER BY seq DESC LIMIT $4",
            MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(conversation.to_string())
            .bind(scope.tenant.to_string())
            .bind(scope.channel.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        let mut messages = rows
            .iter()
            .map(Self::message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    pub(crate) async fn room_messages(
        &self,
        tenant: TenantId,
        room: RoomId,
        q: &MessageQuery,
    ) -> StoreResult<Page<Message>> {
        let mut f = Filter::new(vec![Bind::S(room.to_string()), Bind::S(tenant.to_string())]);
        // The tenant is checked once, on the room, not on every
        // message row of a long history.
        f.push_where(
            "m.conversation_id = $1 AND EXISTS \
                     (SELECT 1 FROM conversations c WHERE c.id = $1 AND c.tenant_id = $2)",
        );
        // A room's seqs run 1..=last_seq without gaps (reserved in the
        // appending transaction, duplicates give theirs back) and
        // messages are never removed (deleting one marks it): the
        // total is last_seq and a count between seqs is arithmetic.
        // Only a time or text filter needs counting rows.
        let last_seq: i64 = sqlx::query_scalar(
            "SELECT last_seq FROM conversations WHERE id = $1 AND tenant_id = $2",
        )
        .bind(room.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.read)
        .await?
        .unwrap_or(0);
        let total = last_seq;
        if let Some(from) = q.from_ms {
            f.add("m.sent_at >= ", Bind::I(from));
        }
        if let Some(before) = q.before_seq {
            f.add("m.seq < ", Bind::I(before));
        }
        if let Some(after) = q.after_seq {
            f.add("m.seq > ", Bind::I(after));
        }
        if let Some(pattern) = &q.search {
            f.add_like("m.search_text", pattern);
            f.push_where("m.deleted = 0");
        }
        let filtered = if q.from_ms.is_some() || q.search.is_some() {
            let filtered_sql = format!("SELECT COUNT(*) FROM messages m WHERE {}", f.clause());
            Self::count(&self.read, &filtered_sql, &f.binds).await?
        } else {
            seqs_between(last_seq, q.after_seq, q.before_seq)
        };
        let sql = format!(
            "SELECT {} FROM messages m WHERE {} ORDER BY m.seq {} LIMIT {} OFFSET {}",
            M_COLUMNS,
            f.clause(),
            if q.ascending { "ASC" } else { "DESC" },
            q.limit,
            q.offset
        );
        let items = self.messages_with_reactions(&sql, &f.binds).await?;
        Ok(Page {
            items,
            filtered,
            total,
        })
    }

    pub(crate) async fn search_messages(
        &self,
        tenant: TenantId,
        member: uuid::Uuid,
        q: &MessageQuery,
        distinct_rooms: bool,
    ) -> StoreResult<Page<Message>> {
        let mut f = Filter::new(vec![
            Bind::S(tenant.to_string()),
            Bind::S(member.to_string()),
        ]);
        f.push_where(
            "m.tenant_id = $1 AND m.deleted = 0 AND m.conversation_id IN \
                     (SELECT room_id FROM room_members WHERE member_id = $2)",
        );
        let total_sql = format!("SELECT COUNT(*) FROM messages m WHERE {}", f.clause());
        let total = Self::count(&self.read, &total_sql, &f.binds).await?;
        if let Some(pattern) = &q.search {
            f.add_like("m.search_text", pattern);
        }
        if distinct_rooms {
            // The newest match of each room.
            let mut inner = "SELECT MAX(x.seq) FROM messages x WHERE x.conversation_id = m.conversation_id AND x.deleted = 0".to_string();
            if let Some(pattern) = &q.search {
                f.binds.push(Bind::S(pattern.clone()));
                inner.push_str(&format!(
                    " AND x.search_text LIKE ${} ESCAPE '\\'",
                    f.binds.len()
                ));
            }
            f.push_where(&format!("m.seq = ({inner})"));
        }
        let filtered_sql = format!("SELECT COUNT(*) FROM messages m WHERE {}", f.clause());
        let filtered = Self::count(&self.read, &filtered_sql, &f.binds).await?;
        let sql = format!(
            "SELECT {} FROM messages m WHERE {} ORDER BY m.sent_at {}, m.id {} LIMIT {} OFFSET {}",
            M_COLUMNS,
            f.clause(),
            if q.ascending { "ASC" } else { "DESC" },
            if q.ascending { "ASC" } else { "DESC" },
            q.limit,
            q.offset
        );
        let items = self.messages_with_reactions(&sql, &f.binds).await?;
        Ok(Page {
            items,
            filtered,
            total,
        })
    }

    pub(crate) async fn message(
        &self,
        tenant: TenantId,
        room: RoomId,
        id: MessageId,
    ) -> StoreResult<Option<Message>> {
        let sql = format!(
                    "SELECT {} FROM messages m WHERE m.id = $1 AND m.conversation_id = $2 AND m.tenant_id = $3",
                    M_COLUMNS
                );
        let binds = [
            Bind::S(id.to_string()),
            Bind::S(room.to_string()),
            Bind::S(tenant.to_string()),
        ];
        Ok(self.messages_with_reactions(&sql, &binds).await?.pop())
    }

    pub(crate) async fn edit_message(
        &self,
        tenant: TenantId,
        room: RoomId,
        id: MessageId,
        content: Option<&str>,
        at_ms: i64,
    ) -> StoreResult<Option<Message>> {
        let done = sqlx::query(
            "UPDATE messages SET content = $1, search_text = $2, edited_at = $3, deleted = $4 \
                     WHERE id = $5 AND conversation_id = $6 AND tenant_id = $7 AND deleted = 0",
        )
        .bind(content.unwrap_or(""))
        .bind(content.map(crate::domain::search::fold).unwrap_or_default())
        .bind(at_ms)
        .bind(i64::from(content.is_none()))
        .bind(id.to_string())
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.message(tenant, room, id).await
    }

    pub(crate) async fn fail_pending(
        &self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "UPDATE messages SET state = 'FAILED' \
                     WHERE channel_id = $1 AND tenant_id = $2 AND state = 'PENDING' RETURNING {}",
            MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(channel.to_string())
            .bind(tenant.to_string())
            .fetch_all(&self.write)
            .await?;
        rows.iter().map(Self::message_from_row).collect()
    }

    pub(crate) async fn visitor_read(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        up_to_seq: i64,
        at_ms: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
                    "UPDATE messages SET read_at = $1 WHERE conversation_id = $2 AND seq <= $3 \
                     AND tenant_id = $4 AND channel_id IS NOT NULL AND sender_kind = 'agent' AND read_at IS NULL",
                )
                .bind(at_ms)
                .bind(conversation.to_string())
                .bind(up_to_seq)
                .bind(tenant.to_string())
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected())
    }
}
