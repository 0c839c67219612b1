//! The SQL of rooms: creation, membership, listing with unread counts, the
//! queue and its answer, read positions. Methods of `Sql`, generic over the
//! backend (see `super::Backend`).

use std::collections::{HashMap, HashSet};

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{
    AgentId, ChannelId, Member, Message, Rating, Room, RoomId, RoomKind, RoomState, RoomSummary,
    TenantId,
};
use crate::store::batch::Params;
use crate::store::{
    Added, AgentLoad, Answered, Assigned, MemberAdded, Page, Pick, Rated, RoomFilter, RoomRows,
    StoreError, StoreResult,
};

use super::{
    member_key, parse_id, parse_room_kind, parse_room_state, parse_uuid, Backend, Bind, Filter,
    RowsAffected, Sql, M_COLUMNS, ROOM_COLUMNS, ROOM_COLUMNS_OF_R, ROOM_COLUMN_COUNT,
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
    /// Adds `member` to a visitor room (joining twice is a no-op).
    pub(crate) async fn join_room_on<'c, E>(
        executor: E,
        tenant: TenantId,
        room: RoomId,
        member: &str,
        at_ms: i64,
    ) -> StoreResult<()>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO room_members (room_id, member_id, tenant_id, joined_at, last_read_seq) \
                     VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING",
        )
        .bind(room.to_string())
        .bind(member)
        .bind(tenant.to_string())
        .bind(at_ms)
        .execute(executor)
        .await?;
        Ok(())
    }

    pub(crate) fn room_from_row(row: &DB::Row) -> StoreResult<Room> {
        Self::room_from_row_at(row, 0)
    }

    /// A room from `ROOM_COLUMNS` read from column `at` on.
    pub(crate) fn room_from_row_at(row: &DB::Row, at: usize) -> StoreResult<Room> {
        let id: RoomId = parse_id(&row.try_get::<String, _>(at)?)?;
        let kind = parse_room_kind(&row.try_get::<String, _>(at + 2)?)?;
        let members = if kind == RoomKind::Visitor {
            vec![Member { id: id.0, kind }]
        } else {
            Vec::new()
        };
        Ok(Room {
            id,
            tenant_id: parse_id(&row.try_get::<String, _>(at + 1)?)?,
            kind,
            channel_id: row
                .try_get::<Option<String>, _>(at + 3)?
                .as_deref()
                .map(parse_id)
                .transpose()?,
            name: row.try_get(at + 4)?,
            state: parse_room_state(&row.try_get::<String, _>(at + 5)?)?,
            assignee: row
                .try_get::<Option<String>, _>(at + 6)?
                .as_deref()
                .map(parse_id)
                .transpose()?,
            created_at_ms: row.try_get(at + 7)?,
            queued_at_ms: row.try_get(at + 8)?,
            last_seq: row.try_get(at + 9)?,
            members,
            labels: Vec::new(),
            rating: match row.try_get::<Option<i64>, _>(at + 10)? {
                Some(rating) => Some(Rating {
                    rating: u8::try_from(rating)
                        .map_err(|_| StoreError::Corrupt(format!("bad rating {rating}")))?,
                    comment: row.try_get(at + 11)?,
                    created_at_ms: row.try_get::<Option<i64>, _>(at + 12)?.unwrap_or_default(),
                }),
                None => None,
            },
            prechat: row
                .try_get::<Option<String>, _>(at + 13)?
                .map(|raw| {
                    serde_json::from_str(&raw)
                        .map_err(|e| StoreError::Corrupt(format!("bad prechat: {e}")))
                })
                .transpose()?,
            verified: row.try_get::<i64, _>(at + 14)? != 0,
            blocked: row.try_get::<i64, _>(at + 15)? != 0,
        })
    }

    /// Adds the agents of `Backend::MEMBERS`, read at column `at`, to `room`.
    pub(crate) fn members_from_row(row: &DB::Row, at: usize, room: &mut Room) -> StoreResult<()> {
        if let Some(list) = row.try_get::<Option<String>, _>(at)? {
            for member in list.split(',') {
                // `app:` marks an application (see `Backend::MEMBERS`).
                let (id, kind) = match member.strip_prefix("app:") {
                    Some(id) => (id, RoomKind::Application),
                    None => (member, RoomKind::Agent),
                };
                room.members.push(Member {
                    id: parse_uuid(id)?,
                    kind,
                });
            }
        }
        Ok(())
    }

    /// Adds the agent members (joining order) to each room.
    pub(crate) async fn with_members<'e, E>(executor: E, rooms: &mut [Room]) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = DB>,
    {
        if rooms.is_empty() {
            return Ok(());
        }
        let params = Params::Numbered;
        let sql = format!(
            "SELECT rm.room_id, rm.member_id, ma.role FROM room_members rm \
             LEFT JOIN agents ma ON ma.id = rm.member_id \
             WHERE rm.room_id IN ({}) ORDER BY rm.joined_at, rm.member_id",
            params.list(1, rooms.len())
        );
        let mut query = sqlx::query(&sql);
        for r in rooms.iter() {
            query = query.bind(r.id.to_string());
        }
        let rows = query.fetch_all(executor).await?;
        let at: HashMap<uuid::Uuid, usize> =
            rooms.iter().enumerate().map(|(i, r)| (r.id.0, i)).collect();
        for row in rows {
            let room = parse_uuid(&row.try_get::<String, _>(0)?)?;
            let member = parse_uuid(&row.try_get::<String, _>(1)?)?;
            let role = row.try_get::<Option<String>, _>(2)?;
            if let Some(&i) = at.get(&room) {
                rooms[i].members.push(Member {
                    id: member,
                    kind: if role.as_deref() == Some("application") {
                        RoomKind::Application
                    } else {
                        RoomKind::Agent
                    },
                });
            }
        }
        Ok(())
    }

    pub(crate) async fn create_agent_room(&self, room: &Room) -> StoreResult<Added<Room>> {
        let key = member_key(&room.members);
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO conversations (id, tenant_id, kind, channel_id, name, state, assignee_id, \
             member_key, created_at, queued_at, last_seq) \
             VALUES ($1, $2, 'agent', NULL, $3, 'open', NULL, $4, $5, NULL, 0) ON CONFLICT DO NOTHING",
        )
        .bind(room.id.to_string())
        .bind(room.tenant_id.to_string())
        .bind(room.name.clone())
        .bind(&key)
        .bind(room.created_at_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let sql = format!(
                "SELECT {} FROM conversations WHERE tenant_id = $1 AND member_key = $2",
                ROOM_COLUMNS
            );
            let row = sqlx::query(&sql)
                .bind(room.tenant_id.to_string())
                .bind(&key)
                .fetch_optional(&self.write)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::Corrupt(
                    "room insert conflicted but no room has these members".into(),
                ));
            };
            let existing = Self::room_from_row(&row)?;
            return match self.room(room.tenant_id, existing.id).await? {
                Some(r) => Ok(Added::AlreadyExists(r)),
                None => Err(StoreError::Corrupt("room vanished".into())),
            };
        }
        for (i, member) in room.members.iter().enumerate() {
            sqlx::query(
                "INSERT INTO room_members (room_id, member_id, tenant_id, joined_at, last_read_seq) \
                 VALUES ($1, $2, $3, $4, 0)",
            )
            .bind(room.id.to_string())
            .bind(member.id.to_string())
            .bind(room.tenant_id.to_string())
            // Joining order is listing order.
            .bind(room.created_at_ms + i as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Added::Added(room.clone()))
    }

    /// One room with its members, in one statement: every agent call on
    /// a room (posting a reply included) reads it first.
    pub(crate) async fn room(&self, tenant: TenantId, id: RoomId) -> StoreResult<Option<Room>> {
        Self::room_on(&self.read, tenant, id).await
    }

    /// `room`, on `executor` (a change's transaction reads the room it made).
    pub(crate) async fn room_on<'c, E>(
        executor: E,
        tenant: TenantId,
        id: RoomId,
    ) -> StoreResult<Option<Room>>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        let sql = format!(
            "SELECT {}, {}, {} FROM conversations WHERE id = $1 AND tenant_id = $2",
            ROOM_COLUMNS,
            DB::MEMBERS,
            DB::LABELS
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(executor)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut room = Self::room_from_row(&row)?;
        Self::members_from_row(&row, ROOM_COLUMN_COUNT, &mut room)?;
        room.labels = super::labels::parse_room_labels(
            row.try_get::<Option<String>, _>(ROOM_COLUMN_COUNT + 1)?
                .as_deref(),
        )?;
        Ok(Some(room))
    }

    /// Writes the rows `then` makes of the room as changed, on the
    /// change's transaction (no read at all without `then`).
    pub(crate) async fn room_rows_on(
        conn: &mut DB::Connection,
        tenant: TenantId,
        id: RoomId,
        then: Option<&RoomRows>,
    ) -> StoreResult<()> {
        let Some(then) = then else { return Ok(()) };
        let Some(room) = Self::room_on(&mut *conn, tenant, id).await? else {
            return Ok(());
        };
        let rows = then.rows(&room);
        if !rows.is_empty() {
            Self::insert_outbox_rows(conn, &rows.iter().collect::<Vec<_>>()).await?;
        }
        Ok(())
    }

    pub(crate) async fn member_rooms(
        &self,
        tenant: TenantId,
        member: uuid::Uuid,
        with: &[uuid::Uuid],
        filter: &RoomFilter,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<RoomSummary>> {
        let f = member_rooms_filter(tenant, member, with, filter);
        let sql = member_rooms_page_sql(&f.clause(), limit, offset);
        let rows = Self::bind_all(sqlx::query(&sql), &f.binds)
            .fetch_all(&self.read)
            .await?;
        let (total, filtered) = match rows.first() {
            Some(row) => (
                row.try_get::<i64, _>(ROOM_COLUMN_COUNT + 3)?,
                row.try_get::<i64, _>(ROOM_COLUMN_COUNT + 4)?,
            ),
            // A page past the end: count on their own.
            None => self.count_member_rooms(&f).await?,
        };
        let items = self.summaries(&rows).await?;
        Ok(Page {
            items,
            filtered,
            total,
        })
    }

    pub(crate) async fn visitor_rooms(
        &self,
        tenant: TenantId,
        reader: uuid::Uuid,
        filter: &RoomFilter,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<RoomSummary>> {
        let f = visitor_rooms_filter(tenant, Some(reader), filter);
        let sql = format!(
            "SELECT {ROOM_COLUMNS_OF_R}, \
             (SELECT COUNT(*) FROM messages u JOIN room_members rm \
              ON rm.room_id = u.conversation_id AND rm.member_id = $2 \
              WHERE u.conversation_id = r.id AND u.seq > rm.last_read_seq AND u.sender_id <> $2 \
              AND u.sender_kind <> 'system' AND u.deleted = 0), \
             (SELECT lm.id FROM messages lm WHERE lm.conversation_id = r.id AND lm.seq = r.last_seq), \
             CAST(0 AS BIGINT) \
             FROM conversations r WHERE {} \
             ORDER BY COALESCE(r.last_message_at, r.created_at) DESC, r.id DESC \
             LIMIT {limit} OFFSET {offset}",
            f.clause()
        );
        let rows = Self::bind_all(sqlx::query(&sql), &f.binds)
            .fetch_all(&self.read)
            .await?;
        let counted = visitor_rooms_filter(tenant, None, filter);
        let count = format!(
            "SELECT COUNT(*) FROM conversations r WHERE {}",
            counted.clause()
        );
        let row = Self::bind_all(sqlx::query(&count), &counted.binds)
            .fetch_one(&self.read)
            .await?;
        let matching = row.try_get::<i64, _>(0)?;
        let items = self.summaries(&rows).await?;
        Ok(Page {
            items,
            filtered: matching,
            total: matching,
        })
    }

    /// Room summaries from rows of `ROOM_COLUMNS_OF_R`, the reader's unread
    /// count (the column after them), the id of the room's newest message
    /// (the next) and how many of the unread mention the reader (the next).
    async fn summaries(&self, rows: &[DB::Row]) -> StoreResult<Vec<RoomSummary>> {
        let mut rooms = Vec::with_capacity(rows.len());
        let mut unread = Vec::with_capacity(rows.len());
        let mut last_ids = Vec::new();
        for row in rows {
            rooms.push(Self::room_from_row(row)?);
            unread.push((
                row.try_get::<i64, _>(ROOM_COLUMN_COUNT)?,
                row.try_get::<i64, _>(ROOM_COLUMN_COUNT + 2)?,
            ));
            if let Some(id) = row.try_get::<Option<String>, _>(ROOM_COLUMN_COUNT + 1)? {
                last_ids.push(id);
            }
        }
        Self::with_members(&self.read, &mut rooms).await?;
        Self::with_labels(&self.read, &mut rooms).await?;
        let mut last = self.messages_by_room(last_ids).await?;
        Ok(rooms
            .into_iter()
            .zip(unread)
            .map(|(room, (unread_count, unread_mentions))| RoomSummary {
                last_message: last.remove(&room.id),
                room,
                unread_count,
                unread_mentions,
            })
            .collect())
    }

    /// How many rooms the member is in, and how many of them match `f`.
    async fn count_member_rooms(&self, f: &Filter) -> StoreResult<(i64, i64)> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) \
             FROM room_members rm CROSS JOIN conversations r WHERE {MEMBER_ROOMS}",
            f.clause()
        );
        let row = Self::bind_all(sqlx::query(&sql), &f.binds)
            .fetch_one(&self.read)
            .await?;
        Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))
    }

    /// These messages (reactions filled in), by their room.
    async fn messages_by_room(&self, ids: Vec<String>) -> StoreResult<HashMap<RoomId, Message>> {
        let mut by_room = HashMap::new();
        if ids.is_empty() {
            return Ok(by_room);
        }
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.id IN ({})",
            M_COLUMNS,
            Params::Numbered.list(1, ids.len())
        );
        let binds: Vec<Bind> = ids.into_iter().map(Bind::S).collect();
        for m in self.messages_with_reactions(&sql, &binds).await? {
            by_room.insert(m.conversation_id, m);
        }
        Ok(by_room)
    }

    pub(crate) async fn queued_rooms(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<(RoomId, ChannelId)>> {
        let rows = sqlx::query(
            "SELECT id, channel_id FROM conversations \
                     WHERE tenant_id = $1 AND state = 'queued' AND kind = 'visitor' \
                     ORDER BY queued_at, id LIMIT $2",
        )
        .bind(tenant.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>(0)?)?,
                    parse_id(&row.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }

    pub(crate) async fn queue(
        &self,
        tenant: TenantId,
        channel: Option<ChannelId>,
    ) -> StoreResult<Vec<RoomSummary>> {
        let sql = format!(
            "SELECT {} FROM conversations WHERE tenant_id = $1 AND state = 'queued' AND kind = 'visitor' \
             AND ($2 = '' OR channel_id = $3) ORDER BY queued_at, id LIMIT 1000",
            ROOM_COLUMNS
        );
        let channel = channel.map(|c| c.to_string()).unwrap_or_default();
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(&channel)
            .bind(&channel)
            .fetch_all(&self.read)
            .await?;
        let mut rooms = rows
            .iter()
            .map(Self::room_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Self::with_members(&self.read, &mut rooms).await?;
        Self::with_labels(&self.read, &mut rooms).await?;
        // Each room's newest message: what the visitor is waiting about.
        let mut last: HashMap<RoomId, Message> = HashMap::new();
        if !rooms.is_empty() {
            let sql = format!(
                "SELECT {} FROM messages m JOIN conversations r \
                         ON r.id = m.conversation_id AND m.seq = r.last_seq \
                         WHERE r.tenant_id = $1 AND r.id IN ({})",
                M_COLUMNS,
                Params::Numbered.list(2, rooms.len())
            );
            let mut binds = vec![Bind::S(tenant.to_string())];
            binds.extend(rooms.iter().map(|r| Bind::S(r.id.to_string())));
            for m in self.messages_with_reactions(&sql, &binds).await? {
                last.insert(m.conversation_id, m);
            }
        }
        Ok(rooms
            .into_iter()
            .map(|room| RoomSummary {
                last_message: last.remove(&room.id),
                // Nobody has read a queued room yet.
                unread_count: room.last_seq,
                unread_mentions: 0,
                room,
            })
            .collect())
    }

    pub(crate) async fn answer(
        &self,
        tenant: TenantId,
        room: RoomId,
        agent: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Answered> {
        let mut tx = self.write.begin().await?;
        // The conditional update is the race's referee: on PostgreSQL
        // a concurrent answer waits on the row lock, then re-checks
        // `state = 'queued'` and updates nothing.
        let won = sqlx::query(
            "UPDATE conversations SET state = 'open', assignee_id = $1 \
                     WHERE id = $2 AND tenant_id = $3 AND state = 'queued' AND kind = 'visitor'",
        )
        .bind(agent.to_string())
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 0 {
            tx.rollback().await?;
            return Ok(Answered::AlreadyAnswered);
        }
        Self::join_room_on(&mut *tx, tenant, room, &agent.to_string(), at_ms).await?;
        Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        tx.commit().await?;
        match self.room(tenant, room).await? {
            Some(r) => Ok(Answered::Won(r)),
            None => Err(StoreError::Corrupt("answered room vanished".into())),
        }
    }

    pub(crate) async fn assign_many(
        &self,
        tenant: TenantId,
        picks: &[Pick],
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Vec<Assigned>> {
        if picks.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write.begin().await?;
        let (enabled, mut open) = Self::lock_agents(&mut tx, tenant, picks).await?;
        // Then the rooms, in id order.
        let mut order: Vec<usize> = (0..picks.len()).collect();
        order.sort_by_key(|&i| picks[i].room.0);
        let mut outcomes = vec![Assigned::Taken; picks.len()];
        let mut won = Vec::new();
        for i in order {
            let pick = picks[i];
            let agent = pick.agent.to_string();
            let count = open.get(&agent).copied().unwrap_or(0);
            if !enabled.contains(&agent) || count >= i64::from(pick.max_open) {
                outcomes[i] = Assigned::Full;
                continue;
            }
            if !Self::assign_room(&mut tx, tenant, pick.room, &agent, at_ms).await? {
                continue; // Taken
            }
            Self::room_rows_on(&mut tx, tenant, pick.room, then.as_ref()).await?;
            *open.entry(agent).or_insert(0) += 1;
            won.push(i);
        }
        tx.commit().await?;
        for i in won {
            outcomes[i] = match self.room(tenant, picks[i].room).await? {
                Some(room) => Assigned::Won(room),
                None => return Err(StoreError::Corrupt("assigned room vanished".into())),
            };
        }
        Ok(outcomes)
    }

    /// Takes the picked agents' rows, in id order (PostgreSQL: row locks
    /// held to commit; SQLite: the single writer serialises); returns the
    /// enabled ones of `tenant`, and how many open visitor rooms each has.
    async fn lock_agents(
        conn: &mut DB::Connection,
        tenant: TenantId,
        picks: &[Pick],
    ) -> StoreResult<(HashSet<String>, HashMap<String, i64>)> {
        let mut agents: Vec<String> = picks.iter().map(|p| p.agent.to_string()).collect();
        agents.sort();
        agents.dedup();
        let list = Params::Numbered.list(2, agents.len());
        let mut binds = vec![Bind::S(tenant.to_string())];
        binds.extend(agents.iter().map(|a| Bind::S(a.clone())));
        let lock = if DB::LOCKS {
            " ORDER BY id FOR UPDATE"
        } else {
            ""
        };
        let enabled_sql = format!(
            "SELECT id FROM agents WHERE tenant_id = $1 AND disabled = 0 AND role <> 'application' \
             AND id IN ({list}){lock}"
        );
        let enabled: HashSet<String> = Self::bind_all(sqlx::query(&enabled_sql), &binds)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        let open_sql = format!(
            "SELECT assignee_id, COUNT(*) FROM conversations WHERE tenant_id = $1 \
             AND state = 'open' AND kind = 'visitor' AND assignee_id IN ({list}) GROUP BY assignee_id"
        );
        let open: HashMap<String, i64> = Self::bind_all(sqlx::query(&open_sql), &binds)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((enabled, open))
    }

    /// Gives a queued visitor room to `agent`, who joins it; false when the
    /// room is not queued any more.
    async fn assign_room(
        conn: &mut DB::Connection,
        tenant: TenantId,
        room: RoomId,
        agent: &str,
        at_ms: i64,
    ) -> StoreResult<bool> {
        let moved = sqlx::query(
            "UPDATE conversations SET state = 'open', assignee_id = $1 \
             WHERE id = $2 AND tenant_id = $3 AND state = 'queued' AND kind = 'visitor'",
        )
        .bind(agent)
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        Self::join_room_on(&mut *conn, tenant, room, agent, at_ms).await?;
        sqlx::query("UPDATE agents SET last_assigned_at = $1 WHERE id = $2 AND tenant_id = $3")
            .bind(at_ms)
            .bind(agent)
            .bind(tenant.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(true)
    }

    pub(crate) async fn agent_loads(&self, tenant: TenantId) -> StoreResult<Vec<AgentLoad>> {
        let rows = sqlx::query(
            "SELECT a.id, a.last_assigned_at, \
                       (SELECT COUNT(*) FROM conversations c WHERE c.tenant_id = a.tenant_id \
                          AND c.state = 'open' AND c.kind = 'visitor' AND c.assignee_id = a.id) \
                     FROM agents a WHERE a.tenant_id = $1 AND a.disabled = 0 \
                     AND a.role <> 'application'",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AgentLoad {
                    agent: parse_id(&row.try_get::<String, _>(0)?)?,
                    last_assigned_ms: row.try_get(1)?,
                    open: u32::try_from(row.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    pub(crate) async fn transfer(
        &self,
        tenant: TenantId,
        room: RoomId,
        from: AgentId,
        to: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>> {
        let mut tx = self.write.begin().await?;
        // Only visitor rooms are handed over.
        let left = sqlx::query(
            "DELETE FROM room_members WHERE room_id = $1 AND member_id = $2 AND tenant_id = $3 \
             AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = $4 AND c.kind = 'visitor')",
        )
        .bind(room.to_string())
        .bind(from.to_string())
        .bind(tenant.to_string())
        .bind(room.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if left == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Self::join_room_on(&mut *tx, tenant, room, &to.to_string(), at_ms).await?;
        sqlx::query(
            "UPDATE conversations SET assignee_id = $1, state = 'open' WHERE id = $2 AND tenant_id = $3",
        )
        .bind(to.to_string())
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        tx.commit().await?;
        self.room(tenant, room).await
    }

    pub(crate) async fn add_member(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
        max_members: usize,
        at_ms: i64,
    ) -> StoreResult<MemberAdded> {
        let mut tx = self.write.begin().await?;
        // The transaction writes first: clearing the member key takes the
        // room's row lock on PostgreSQL and the write lock on SQLite, so
        // concurrent adds (several instances included) queue, each counts
        // the others' members, and the cap holds exactly. A refusal rolls
        // it back.
        let found = sqlx::query(
            "UPDATE conversations SET member_key = NULL \
             WHERE id = $1 AND tenant_id = $2 AND kind = 'agent'",
        )
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if found == 0 {
            tx.rollback().await?;
            return Ok(MemberAdded::NoRoom);
        }
        let last_seq: i64 = sqlx::query("SELECT last_seq FROM conversations WHERE id = $1")
            .bind(room.to_string())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN member_id = $1 THEN 1 ELSE 0 END), 0) \
             FROM room_members WHERE room_id = $2",
        )
        .bind(member.to_string())
        .bind(room.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let (count, already) = (row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?);
        if already > 0 || usize::try_from(count).unwrap_or(usize::MAX) >= max_members {
            tx.rollback().await?;
            return Ok(if already > 0 {
                MemberAdded::AlreadyMember
            } else {
                MemberAdded::Full
            });
        }
        sqlx::query(
            "INSERT INTO room_members (room_id, member_id, tenant_id, joined_at, last_read_seq) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(room.to_string())
        .bind(member.to_string())
        .bind(tenant.to_string())
        .bind(at_ms)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match self.room(tenant, room).await? {
            Some(r) => Ok(MemberAdded::Added(r)),
            None => Err(StoreError::Corrupt(
                "room vanished after a member joined".into(),
            )),
        }
    }

    pub(crate) async fn remove_member(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
    ) -> StoreResult<Option<Room>> {
        let mut tx = self.write.begin().await?;
        // Only agent rooms change members this way (visitor rooms: answer,
        // transfer, queue).
        let left = sqlx::query(
            "DELETE FROM room_members WHERE room_id = $1 AND member_id = $2 AND tenant_id = $3 \
             AND EXISTS (SELECT 1 FROM conversations c \
             WHERE c.id = $4 AND c.tenant_id = $5 AND c.kind = 'agent')",
        )
        .bind(room.to_string())
        .bind(member.to_string())
        .bind(tenant.to_string())
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if left == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        Self::forget_member_key(&mut *tx, room).await?;
        tx.commit().await?;
        self.room(tenant, room).await
    }

    /// A room whose members changed no longer answers a creation with its
    /// original members ("same members, same room" holds at creation).
    async fn forget_member_key<'c, E>(executor: E, room: RoomId) -> StoreResult<()>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::query("UPDATE conversations SET member_key = NULL WHERE id = $1")
            .bind(room.to_string())
            .execute(executor)
            .await?;
        Ok(())
    }

    pub(crate) async fn set_room_state(
        &self,
        tenant: TenantId,
        room: RoomId,
        from: Option<RoomState>,
        state: RoomState,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>> {
        let mut tx = self.write.begin().await?;
        let queued = state == RoomState::Queued;
        let done = sqlx::query(
            "UPDATE conversations SET state = $1, \
                     queued_at = CASE WHEN $2 = 1 THEN $3 ELSE queued_at END, \
                     closed_at = CASE WHEN $1 = 'closed' THEN $3 ELSE NULL END, \
                     assignee_id = CASE WHEN $4 = 1 THEN NULL ELSE assignee_id END \
                     WHERE id = $5 AND tenant_id = $6 AND kind = 'visitor' \
                     AND ($7 = '' OR state = $8)",
        )
        .bind(state.as_str())
        .bind(i64::from(queued))
        .bind(at_ms)
        .bind(i64::from(queued))
        .bind(room.to_string())
        .bind(tenant.to_string())
        .bind(from.map_or("", |s| s.as_str()))
        .bind(from.map_or("", |s| s.as_str()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if queued {
            sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND tenant_id = $2")
                .bind(room.to_string())
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await?;
        }
        Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        tx.commit().await?;
        self.room(tenant, room).await
    }

    pub(crate) async fn mark_away_sent(&self, tenant: TenantId, room: RoomId) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE conversations SET away_sent = 1 \
             WHERE id = $1 AND tenant_id = $2 AND kind = 'visitor' AND away_sent = 0 \
             AND NOT EXISTS (SELECT 1 FROM room_members rm JOIN agents a ON a.id = rm.member_id \
                             WHERE rm.room_id = conversations.id AND a.role = 'application')",
        )
        .bind(room.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    pub(crate) async fn idle_rooms(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, RoomId)>> {
        let rows = sqlx::query(
            "SELECT c.tenant_id, c.id FROM conversations c \
             JOIN channels ch ON ch.id = c.channel_id \
             WHERE ch.auto_close_hours IS NOT NULL AND c.kind = 'visitor' \
             AND c.state IN ('open', 'queued') \
             AND COALESCE(c.last_message_at, c.created_at) <= $1 - ch.auto_close_hours * 3600000 \
             ORDER BY COALESCE(c.last_message_at, c.created_at) LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>(0)?)?,
                    parse_id(&row.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }

    pub(crate) async fn close_idle_room(
        &self,
        tenant: TenantId,
        room: RoomId,
        now_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<(Room, RoomState)>> {
        let Some(before) = self
            .room(tenant, room)
            .await?
            .filter(|r| r.state != RoomState::Closed)
        else {
            return Ok(None);
        };
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE conversations SET state = 'closed', closed_at = $4 \
             WHERE id = $1 AND tenant_id = $2 AND kind = 'visitor' AND state = $3 \
             AND COALESCE(last_message_at, created_at) <= $4 - \
                 (SELECT ch.auto_close_hours FROM channels ch \
                  WHERE ch.id = conversations.channel_id AND ch.auto_close_hours IS NOT NULL) * 3600000",
        )
        .bind(room.to_string())
        .bind(tenant.to_string())
        .bind(before.state.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Ok(None);
        }
        Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        tx.commit().await?;
        Ok(self.room(tenant, room).await?.map(|r| (r, before.state)))
    }

    /// Rates a closed visitor room of `tenant` and `channel` that has no
    /// rating yet, in one guarded update (of concurrent rates, one wins).
    pub(crate) async fn rate_room(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        room: RoomId,
        rating: &Rating,
        then: Option<RoomRows>,
    ) -> StoreResult<Rated> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE conversations SET rating = $1, rating_comment = $2, rated_at = $3 \
             WHERE id = $4 AND tenant_id = $5 AND channel_id = $6 AND kind = 'visitor' \
             AND state = 'closed' AND rating IS NULL",
        )
        .bind(i64::from(rating.rating))
        .bind(rating.comment.clone())
        .bind(rating.created_at_ms)
        .bind(room.to_string())
        .bind(tenant.to_string())
        .bind(channel.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done > 0 {
            Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        }
        tx.commit().await?;
        // Why not, or the room after: read from the writer, which saw the update.
        let sql = format!(
            "SELECT {}, {}, {} FROM conversations WHERE id = $1 AND tenant_id = $2 AND channel_id = $3 \
             AND kind = 'visitor'",
            ROOM_COLUMNS,
            DB::MEMBERS,
            DB::LABELS
        );
        let row = sqlx::query(&sql)
            .bind(room.to_string())
            .bind(tenant.to_string())
            .bind(channel.to_string())
            .fetch_optional(&self.write)
            .await?;
        let Some(row) = row else {
            return Ok(Rated::NoRoom);
        };
        let mut found = Self::room_from_row(&row)?;
        Self::members_from_row(&row, ROOM_COLUMN_COUNT, &mut found)?;
        found.labels = super::labels::parse_room_labels(
            row.try_get::<Option<String>, _>(ROOM_COLUMN_COUNT + 1)?
                .as_deref(),
        )?;
        Ok(if done > 0 {
            Rated::Rated(found)
        } else if found.rating.is_some() {
            Rated::AlreadyRated
        } else {
            Rated::NotClosed
        })
    }

    pub(crate) async fn agents_read_up_to(
        &self,
        tenant: TenantId,
        room: RoomId,
    ) -> StoreResult<i64> {
        // The visitor is never a row of room_members.
        let seq: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(last_read_seq) FROM room_members WHERE room_id = $1 AND tenant_id = $2",
        )
        .bind(room.to_string())
        .bind(tenant.to_string())
        .fetch_one(&self.read)
        .await?;
        Ok(seq.unwrap_or(0))
    }

    pub(crate) async fn mark_read(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: uuid::Uuid,
        up_to_seq: Option<i64>,
    ) -> StoreResult<i64> {
        let mut tx = self.write.begin().await?;
        let last: Option<i64> =
            sqlx::query("SELECT last_seq FROM conversations WHERE id = $1 AND tenant_id = $2")
                .bind(room.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(0);
        };
        let target = up_to_seq.map_or(last, |n| n.clamp(0, last));
        sqlx::query(
            "UPDATE room_members SET last_read_seq = $1 \
             WHERE room_id = $2 AND member_id = $3 AND tenant_id = $4 AND last_read_seq < $5",
        )
        .bind(target)
        .bind(room.to_string())
        .bind(member.to_string())
        .bind(tenant.to_string())
        .bind(target)
        .execute(&mut *tx)
        .await?;
        let now: i64 = sqlx::query(
            "SELECT last_read_seq FROM room_members WHERE room_id = $1 AND member_id = $2",
        )
        .bind(room.to_string())
        .bind(member.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?
        .unwrap_or(0);
        tx.commit().await?;
        Ok(now)
    }

    pub(crate) async fn unread_count(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: uuid::Uuid,
    ) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM messages m JOIN room_members rm \
             ON rm.room_id = m.conversation_id AND rm.member_id = $1 AND rm.tenant_id = $4 \
             WHERE m.conversation_id = $2 AND m.seq > rm.last_read_seq AND m.sender_id <> $3 \
             AND m.sender_kind <> 'system' AND m.deleted = 0",
        )
        .bind(member.to_string())
        .bind(room.to_string())
        .bind(member.to_string())
        .bind(tenant.to_string())
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

/// The tenant's visitor rooms matching `filter` (`r`), with `$1` the
/// tenant and, when given, `$2` the reader (whose unread counts the page
/// reads; the count of rooms needs no reader).
fn visitor_rooms_filter(
    tenant: TenantId,
    reader: Option<uuid::Uuid>,
    filter: &RoomFilter,
) -> Filter {
    let mut binds = vec![Bind::S(tenant.to_string())];
    binds.extend(reader.map(|r| Bind::S(r.to_string())));
    let mut f = Filter::new(binds);
    f.push_where("r.tenant_id = $1 AND r.kind = 'visitor'");
    if let Some(state) = filter.state {
        f.add("r.state = ", Bind::S(state.as_str().to_string()));
    }
    same_channel_assignee_label(&mut f, filter);
    f
}

/// The member's rooms, as `member_rooms` reads them (`$1` the member, `$2`
/// the tenant). CROSS JOIN: SQLite keeps this join order (the member's
/// rooms first, by room_members_member) instead of walking every room of
/// the tenant in a state by conversations_queue; PostgreSQL plans it as
/// the inner join it is.
const MEMBER_ROOMS: &str = "r.id = rm.room_id AND rm.member_id = $1 AND r.tenant_id = $2";

/// Which of the member's rooms `member_rooms` lists: those that also
/// contain every one of `with`, matching `filter`.
fn member_rooms_filter(
    tenant: TenantId,
    member: uuid::Uuid,
    with: &[uuid::Uuid],
    filter: &RoomFilter,
) -> Filter {
    let mut f = Filter::new(vec![
        Bind::S(member.to_string()),
        Bind::S(tenant.to_string()),
    ]);
    for user in with {
        f.binds.push(Bind::S(user.to_string()));
        let n = f.binds.len();
        f.binds.push(Bind::S(user.to_string()));
        f.push_where(&format!(
            "(r.id = ${n} OR EXISTS (SELECT 1 FROM room_members x WHERE x.room_id = r.id AND x.member_id = ${}))",
            n + 1
        ));
    }
    match filter.state {
        // Team rooms are always open; queued rooms have no members.
        Some(RoomState::Closed) => f.push_where("r.state = 'closed'"),
        Some(_) => f.push_where("r.state <> 'closed'"),
        None => {}
    }
    same_channel_assignee_label(&mut f, filter);
    f
}

/// The conditions of `filter`'s channel, assignee and label on rooms `r`.
fn same_channel_assignee_label(f: &mut Filter, filter: &RoomFilter) {
    if let Some(channel) = filter.channel {
        f.add("r.channel_id = ", Bind::S(channel.to_string()));
    }
    if let Some(assignee) = filter.assignee {
        f.add("r.assignee_id = ", Bind::S(assignee.to_string()));
    }
    if let Some(label) = filter.label {
        // By room_labels' primary key (room_id, label_id).
        f.add(
            "EXISTS (SELECT 1 FROM room_labels fl WHERE fl.room_id = r.id AND fl.label_id = ",
            Bind::S(label.to_string()),
        );
        f.close_last(")");
    }
}

/// One pass over the member's rooms (their newest message time is kept on
/// the room) gives both counts, as window totals, and the page, sorted on
/// its keys alone; the page's rooms are then read with their unread counts
/// and newest message ids. `matches` is the filter's clause.
fn member_rooms_page_sql(matches: &str, limit: u32, offset: u32) -> String {
    format!(
        "SELECT {ROOM_COLUMNS_OF_R}, \
         (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = r.id AND u.seq > p.last_read_seq \
          AND u.sender_id <> $1 AND u.sender_kind <> 'system' AND u.deleted = 0), \
         (SELECT lm.id FROM messages lm WHERE lm.conversation_id = r.id AND lm.seq = r.last_seq), \
         (SELECT COUNT(*) FROM messages u WHERE u.conversation_id = r.id AND u.seq > p.last_read_seq \
          AND u.mentions IS NOT NULL AND u.mentions LIKE '%' || $1 || '%' AND u.deleted = 0), \
         p.total, p.filtered \
         FROM (SELECT w.id, w.last_read_seq, w.activity, w.total, w.filtered \
           FROM (SELECT x.id, x.last_read_seq, x.activity, x.matches, \
             COUNT(*) OVER () AS total, SUM(x.matches) OVER () AS filtered \
             FROM (SELECT r.id AS id, rm.last_read_seq AS last_read_seq, \
               COALESCE(r.last_message_at, r.created_at) AS activity, \
               CASE WHEN {matches} THEN 1 ELSE 0 END AS matches \
               FROM room_members rm CROSS JOIN conversations r WHERE {MEMBER_ROOMS}) x) w \
           WHERE w.matches = 1 ORDER BY w.activity DESC, w.id DESC LIMIT {limit} OFFSET {offset}) p \
         CROSS JOIN conversations r WHERE r.id = p.id \
         ORDER BY p.activity DESC, p.id DESC"
    )
}
