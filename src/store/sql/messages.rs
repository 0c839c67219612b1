//! The SQL of messages: visitor lookups, pages and searches, edits,
//! DELIVERED (group committed) and FAILED marks, visitor read marks. Appends
//! are group committed in `append.rs`. Methods of `Sql`, generic over the
//! backend (see `super::Backend`).

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{
    Attachment, ChannelId, Conversation, ConversationId, DeliveryState, Message, MessageId, Notice,
    QuickReply, Reaction, RoomId, SenderKind, TenantId,
};
use crate::store::batch::{insert_chunks, Params, Stored};
use crate::store::{
    ConversationLookup, MessageQuery, NewNote, Page, StoreError, StoreResult, VisitorScope,
};

use super::lane::Lane;
use super::{
    parse_id, parse_kind, parse_state, parse_uuid, seqs_between, Backend, Bind, Filter,
    RowsAffected, Sql, MESSAGE_COLUMNS, M_COLUMNS,
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
    pub(crate) fn message_from_row(row: &DB::Row) -> StoreResult<Message> {
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
            notice: row
                .try_get::<Option<String>, _>(16)?
                .as_deref()
                .map(|raw| {
                    Notice::decode(raw)
                        .map_err(|e| StoreError::Corrupt(format!("bad notice {raw:?}: {e}")))
                })
                .transpose()?,
            quick_replies: match row.try_get::<Option<String>, _>(17)? {
                Some(raw) => QuickReply::decode_list(&raw)
                    .map_err(|e| StoreError::Corrupt(format!("bad quick replies {raw:?}: {e}")))?,
                None => Vec::new(),
            },
            postback: row.try_get(18)?,
            mentions: super::parse_mentions(row.try_get::<Option<String>, _>(19)?.as_deref())?,
            attachments: match row.try_get::<Option<String>, _>(20)? {
                Some(raw) => Attachment::decode_list(&raw)
                    .map_err(|e| StoreError::Corrupt(format!("bad attachments {raw:?}: {e}")))?,
                None => Vec::new(),
            },
            private: false,
            bot: row.try_get::<i64, _>(21)? != 0,
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
        let params = Params::Numbered;
        let sql = format!(
            "SELECT message_id, user_id, emoji FROM reactions WHERE message_id IN ({}) ORDER BY created_at, emoji",
            params.list(1, messages.len())
        );
        let mut query = sqlx::query(&sql);
        for m in &messages {
            query = query.bind(m.id.to_string());
        }
        let mut by_message: HashMap<String, Vec<Reaction>> = HashMap::new();
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

    /// Marks a batch of messages DELIVERED; `Some` for those that were
    /// PENDING. A batch of several statements (see `insert_chunks`) is one
    /// transaction, so one commit (one fsync on SQLite) however it is cut.
    pub(crate) async fn deliver_batch(
        lane: &mut Lane<DB>,
        marks: Vec<super::DeliveredMark>,
    ) -> Stored<Option<Message>> {
        let chunks = insert_chunks(marks.len());
        let marked = Self::deliver_once(lane, &marks, &chunks).await;
        if marked.is_err() {
            lane.failed();
        }
        // As for appends: the lane's connection may have been stale; once
        // more on a fresh one (a mark is idempotent: the second finds the
        // rows DELIVERED already, and reports none).
        let marked = match marked {
            Err(_) => {
                let again = Self::deliver_once(lane, &marks, &chunks).await;
                if again.is_err() {
                    lane.failed();
                }
                again
            }
            ok => ok,
        };
        match marked {
            Ok(mut changed) => Stored::together(
                marks
                    .iter()
                    .map(|(id, _, _)| Ok(changed.remove(id)))
                    .collect(),
            ),
            Err(e) => Stored::all_failed(marks.len(), &e),
        }
    }

    /// One try of `deliver_batch`: a transaction when it takes several
    /// statements (or writes outbox rows too).
    async fn deliver_once(
        lane: &mut Lane<DB>,
        marks: &[super::DeliveredMark],
        chunks: &[usize],
    ) -> StoreResult<HashMap<MessageId, Message>> {
        let rows_too = marks.iter().any(|(_, _, then)| then.is_some());
        if chunks.len() > 1 || rows_too {
            let mut tx = lane.begin().await?;
            let changed = Self::deliver_in(&mut tx, marks).await?;
            tx.commit().await?;
            Ok(changed)
        } else {
            let mut conn = lane.connection().await?;
            Ok(Self::deliver_chunks(&mut conn, marks, chunks).await?)
        }
    }

    /// The marks on a transaction: their statements, then the outbox rows
    /// their changes make (webhook events); the messages they changed.
    pub(crate) async fn deliver_in(
        conn: &mut DB::Connection,
        marks: &[super::DeliveredMark],
    ) -> StoreResult<HashMap<MessageId, Message>> {
        let changed = Self::deliver_chunks(conn, marks, &insert_chunks(marks.len())).await?;
        let rows: Vec<crate::store::NewOutbox> = marks
            .iter()
            .filter_map(|(id, _, then)| Some(then.as_ref()?.rows(changed.get(id)?)))
            .flatten()
            .collect();
        if !rows.is_empty() {
            Self::insert_outbox_rows(conn, &rows.iter().collect::<Vec<_>>()).await?;
        }
        Ok(changed)
    }

    /// The statements of `deliver_batch`, one per chunk.
    async fn deliver_chunks(
        conn: &mut DB::Connection,
        marks: &[super::DeliveredMark],
        chunks: &[usize],
    ) -> Result<HashMap<MessageId, Message>, sqlx::Error> {
        let params = DB::PARAMS;
        let mut changed: HashMap<MessageId, Message> = HashMap::new();
        let mut at = 0;
        for &n in chunks {
            let sql = format!(
                "UPDATE messages SET state = 'DELIVERED' WHERE state = 'PENDING' \
                 AND (id, tenant_id) IN (VALUES {}) RETURNING {}",
                params.rows(n, 2),
                MESSAGE_COLUMNS
            );
            // Its plan depends on the messages table's size: see
            // `Backend::PLAN_EACH_RUN`.
            let mut query = sqlx::query(&sql).persistent(!DB::PLAN_EACH_RUN);
            for (id, tenant, _) in &marks[at..at + n] {
                query = query.bind(id.to_string()).bind(tenant.to_string());
            }
            at += n;
            for row in &query.fetch_all(&mut *conn).await? {
                match Self::message_from_row(row) {
                    Ok(m) => {
                        changed.insert(m.id, m);
                    }
                    Err(e) => tracing::warn!(error = %e, "delivered mark: bad row"),
                }
            }
        }
        Ok(changed)
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
        let mut items = self.messages_with_reactions(&sql, &f.binds).await?;
        if q.search.is_none() {
            items = self.with_notes(room, items).await?;
        }
        Ok(Page {
            items,
            filtered,
            total,
        })
    }

    /// Stores a private note after the conversation's newest message: one
    /// statement, so the seq it takes is that of a committed message.
    pub(crate) async fn add_note(
        &self,
        note: NewNote,
        then: Option<crate::store::MessageRows>,
    ) -> StoreResult<Option<Message>> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "INSERT INTO notes (id, conversation_id, tenant_id, channel_id, after_seq, author_id, \
             author_name, author_avatar, content, created_at) \
             SELECT $1, c.id, c.tenant_id, c.channel_id, c.last_seq, $2, $3, $4, $5, $6 \
             FROM conversations c WHERE c.id = $7 AND c.tenant_id = $8 AND c.kind = 'visitor' \
             RETURNING channel_id, after_seq",
        )
        .bind(note.id.to_string())
        .bind(note.author_id.to_string())
        .bind(note.author_name.clone())
        .bind(note.author_avatar.clone())
        .bind(note.content.clone())
        .bind(note.at_ms)
        .bind(note.room.to_string())
        .bind(note.tenant_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored = Message {
            id: note.id,
            conversation_id: note.room,
            tenant_id: note.tenant_id,
            channel_id: row
                .try_get::<Option<String>, _>(0)?
                .as_deref()
                .map(parse_id)
                .transpose()?,
            seq: row.try_get(1)?,
            sender_kind: SenderKind::Agent,
            sender_id: note.author_id,
            sender_name: note.author_name,
            sender_avatar: note.author_avatar,
            content: note.content,
            state: DeliveryState::Delivered,
            sent_at_ms: note.at_ms,
            client_message_id: None,
            read_at_ms: None,
            edited_at_ms: None,
            deleted: false,
            reactions: Vec::new(),
            notice: None,
            quick_replies: Vec::new(),
            postback: None,
            mentions: Vec::new(),
            attachments: Vec::new(),
            private: true,
            bot: false,
        };
        if let Some(then) = &then {
            let rows = then.rows(&stored);
            if !rows.is_empty() {
                Self::insert_outbox_rows(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// `page` (one room's messages, in seq order either way) with the
    /// notes that follow its messages, each after the message it follows.
    async fn with_notes(&self, room: RoomId, page: Vec<Message>) -> StoreResult<Vec<Message>> {
        let (Some(first), Some(last)) = (page.first(), page.last()) else {
            return Ok(page);
        };
        let descending = first.seq > last.seq;
        let (low, high) = (first.seq.min(last.seq), first.seq.max(last.seq));
        let rows = sqlx::query(
            "SELECT id, tenant_id, channel_id, after_seq, author_id, author_name, author_avatar, \
             content, created_at FROM notes WHERE conversation_id = $1 AND after_seq >= $2 \
             AND after_seq <= $3 ORDER BY after_seq, created_at, id",
        )
        .bind(room.to_string())
        .bind(low)
        .bind(high)
        .fetch_all(&self.read)
        .await?;
        if rows.is_empty() {
            return Ok(page);
        }
        let mut notes = Vec::with_capacity(rows.len());
        for row in &rows {
            notes.push(Message {
                id: parse_id(&row.try_get::<String, _>(0)?)?,
                conversation_id: room,
                tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
                channel_id: row
                    .try_get::<Option<String>, _>(2)?
                    .as_deref()
                    .map(parse_id)
                    .transpose()?,
                seq: row.try_get(3)?,
                sender_kind: SenderKind::Agent,
                sender_id: parse_uuid(&row.try_get::<String, _>(4)?)?,
                sender_name: row.try_get(5)?,
                sender_avatar: row.try_get(6)?,
                content: row.try_get(7)?,
                state: DeliveryState::Delivered,
                sent_at_ms: row.try_get(8)?,
                client_message_id: None,
                read_at_ms: None,
                edited_at_ms: None,
                deleted: false,
                reactions: Vec::new(),
                notice: None,
                quick_replies: Vec::new(),
                postback: None,
                mentions: Vec::new(),
                attachments: Vec::new(),
                private: true,
                bot: false,
            });
        }
        let mut ascending = page;
        if descending {
            ascending.reverse();
        }
        let mut merged = Vec::with_capacity(ascending.len() + notes.len());
        let mut notes = notes.into_iter().peekable();
        for message in ascending {
            let seq = message.seq;
            merged.push(message);
            while let Some(note) = notes.next_if(|n| n.seq == seq) {
                merged.push(note);
            }
        }
        if descending {
            merged.reverse();
        }
        Ok(merged)
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
        then: Option<crate::store::MessageRows>,
    ) -> StoreResult<Option<Message>> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE messages SET content = $1, search_text = $2, edited_at = $3, deleted = $4, \
                     quick_replies = CASE WHEN $4 = 0 THEN quick_replies END, \
                     attachments = CASE WHEN $4 = 0 THEN attachments END \
                     WHERE id = $5 AND conversation_id = $6 AND tenant_id = $7 AND deleted = 0 \
                     RETURNING {MESSAGE_COLUMNS}"
        );
        let changed = sqlx::query(&sql)
            .bind(content.unwrap_or(""))
            .bind(
                content
                    .map(crate::domain::search::message_text)
                    .unwrap_or_default(),
            )
            .bind(at_ms)
            .bind(i64::from(content.is_none()))
            .bind(id.to_string())
            .bind(room.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(changed) = changed else {
            return Ok(None);
        };
        if let Some(then) = &then {
            let rows = then.rows(&Self::message_from_row(&changed)?);
            if !rows.is_empty() {
                Self::insert_outbox_rows(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
            }
        }
        tx.commit().await?;
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
        then: Option<crate::store::MessageRows>,
    ) -> StoreResult<u64> {
        let mark = "UPDATE messages SET read_at = $1 WHERE conversation_id = $2 AND seq <= $3 \
             AND tenant_id = $4 AND channel_id IS NOT NULL AND sender_kind = 'agent' \
             AND read_at IS NULL";
        let Some(then) = then else {
            let done = sqlx::query(mark)
                .bind(at_ms)
                .bind(conversation.to_string())
                .bind(up_to_seq)
                .bind(tenant.to_string())
                .execute(&self.write)
                .await?;
            return Ok(done.rows_affected());
        };
        // With rows to write: the marked messages, in seq order, in one transaction.
        let mut tx = self.write.begin().await?;
        let sql = format!("{mark} RETURNING {MESSAGE_COLUMNS}");
        let marked = sqlx::query(&sql)
            .bind(at_ms)
            .bind(conversation.to_string())
            .bind(up_to_seq)
            .bind(tenant.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let mut messages = marked
            .iter()
            .map(Self::message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.sort_by_key(|m| m.seq);
        let rows: Vec<crate::store::NewOutbox> =
            messages.iter().flat_map(|m| then.rows(m)).collect();
        if !rows.is_empty() {
            Self::insert_outbox_rows(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
        }
        tx.commit().await?;
        Ok(messages.len() as u64)
    }
}
