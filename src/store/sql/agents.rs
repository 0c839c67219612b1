//! The SQL of agents and their login sessions. Methods of `Sql`, generic over
//! the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{
    Agent, AgentId, AgentPresence, PresenceState, Room, RoomId, SessionId, TenantId,
};
use crate::store::batch::Params;
use crate::store::{Added, AgentChanges, StoreError, StoreResult};

use super::{
    parse_id, parse_role, Backend, Bind, RowsAffected, Sql, AGENT_COLUMNS, AGENT_COLUMNS_OF_A,
    ROOM_COLUMNS_OF_CONVERSATIONS,
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
    pub(crate) fn agent_from_row(row: &DB::Row) -> StoreResult<Agent> {
        Self::agent_from_row_at(row, 0)
    }

    /// An agent from `AGENT_COLUMNS` read from column `at` on.
    pub(crate) fn agent_from_row_at(row: &DB::Row, at: usize) -> StoreResult<Agent> {
        Ok(Agent {
            id: parse_id(&row.try_get::<String, _>(at)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(at + 1)?)?,
            email: row.try_get(at + 2)?,
            display_name: row.try_get(at + 3)?,
            avatar_url: row.try_get(at + 4)?,
            role: parse_role(&row.try_get::<String, _>(at + 5)?)?,
            password_hash: row.try_get(at + 6)?,
            disabled: row.try_get::<i64, _>(at + 7)? != 0,
        })
    }

    pub(crate) async fn insert_agent_on<'c, E>(executor: E, agent: &Agent) -> StoreResult<()>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, email, display_name, avatar_url, role, password_hash, created_at, disabled) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(agent.id.to_string())
        .bind(agent.tenant_id.to_string())
        .bind(&agent.email)
        .bind(&agent.display_name)
        .bind(&agent.avatar_url)
        .bind(agent.role.as_str())
        .bind(&agent.password_hash)
        .bind(crate::domain::time::now_ms())
        .bind(i64::from(agent.disabled))
        .execute(executor)
        .await?;
        Ok(())
    }

    pub(crate) async fn agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>> {
        let sql = format!(
            "SELECT {} FROM agents WHERE lower(email) = lower($1)",
            AGENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::agent_from_row).transpose()
    }

    pub(crate) async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>> {
        let sql = format!(
            "SELECT {} FROM agents WHERE id = $1 AND tenant_id = $2",
            AGENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::agent_from_row).transpose()
    }

    pub(crate) async fn set_password(
        &self,
        email: &str,
        password_hash: &str,
    ) -> StoreResult<Option<Agent>> {
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE agents SET password_hash = $1 WHERE lower(email) = lower($2) RETURNING {}",
            AGENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(password_hash)
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let agent = Self::agent_from_row(&row)?;
        sqlx::query("UPDATE agent_sessions SET revoked = 1 WHERE agent_id = $1 AND revoked = 0")
            .bind(agent.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(agent))
    }

    pub(crate) async fn create_session(
        &self,
        id: SessionId,
        agent: AgentId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO agent_sessions (id, agent_id, expires_at, revoked) VALUES ($1, $2, $3, 0)",
        )
        .bind(id.to_string())
        .bind(agent.to_string())
        .bind(expires_at_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Where the session checks read (see `Backend::SESSIONS_ON_WRITER`).
    fn sessions(&self) -> &sqlx::Pool<DB> {
        if DB::SESSIONS_ON_WRITER {
            &self.write
        } else {
            &self.read
        }
    }

    pub(crate) async fn session_agent(
        &self,
        id: SessionId,
        now_ms: i64,
    ) -> StoreResult<Option<Agent>> {
        let sql = format!(
            "SELECT {} FROM agents WHERE disabled = 0 AND id = \
             (SELECT agent_id FROM agent_sessions WHERE id = $1 AND revoked = 0 AND expires_at > $2)",
            AGENT_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(now_ms)
            .fetch_optional(self.sessions())
            .await?;
        row.as_ref().map(Self::agent_from_row).transpose()
    }

    pub(crate) async fn session_agent_and_room(
        &self,
        id: SessionId,
        now_ms: i64,
        room: RoomId,
    ) -> StoreResult<Option<(Agent, Option<Room>)>> {
        let sql = format!(
            "SELECT {AGENT_COLUMNS_OF_A}, {ROOM_COLUMNS_OF_CONVERSATIONS}, {}, {} \
             FROM agent_sessions s JOIN agents a ON a.id = s.agent_id \
             LEFT JOIN conversations ON conversations.id = $3 AND conversations.tenant_id = a.tenant_id \
             WHERE s.id = $1 AND s.revoked = 0 AND s.expires_at > $2 AND a.disabled = 0",
            DB::MEMBERS,
            DB::LABELS
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(now_ms)
            .bind(room.to_string())
            .fetch_optional(self.sessions())
            .await?
        else {
            return Ok(None);
        };
        let agent = Self::agent_from_row(&row)?;
        // After the agent's 8 columns: the room's, then its members.
        let room = match row.try_get::<Option<String>, _>(8)? {
            Some(_) => {
                let mut room = Self::room_from_row_at(&row, 8)?;
                let members_at = 8 + super::ROOM_COLUMN_COUNT;
                Self::members_from_row(&row, members_at, &mut room)?;
                room.labels = super::labels::parse_room_labels(
                    row.try_get::<Option<String>, _>(members_at + 1)?.as_deref(),
                )?;
                Some(room)
            }
            None => None,
        };
        Ok(Some((agent, room)))
    }

    pub(crate) async fn agents(&self, tenant: TenantId) -> StoreResult<Vec<Agent>> {
        let sql = format!(
            "SELECT {} FROM agents WHERE tenant_id = $1 AND role <> 'application' \
             ORDER BY created_at, id",
            AGENT_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::agent_from_row).collect()
    }

    pub(crate) async fn insert_agent(&self, agent: &Agent) -> StoreResult<Added<()>> {
        match Self::insert_agent_on(&self.write, agent).await {
            Ok(()) => Ok(Added::Added(())),
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                Ok(Added::AlreadyExists(()))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn update_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        changes: &AgentChanges,
    ) -> StoreResult<Option<Agent>> {
        let mut tx = self.write.begin().await?;
        let c = changes;
        let done = sqlx::query(
            "UPDATE agents SET \
                     display_name = COALESCE($3, display_name), \
                     avatar_url = CASE WHEN $4 = 1 THEN $5 ELSE avatar_url END, \
                     role = COALESCE($6, role), \
                     password_hash = COALESCE($7, password_hash), \
                     disabled = COALESCE($8, disabled) \
                     WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .bind(c.display_name.clone())
        .bind(i64::from(c.avatar_url.is_some()))
        .bind(c.avatar_url.clone().flatten())
        .bind(c.role.map(|r| r.as_str()))
        .bind(c.password_hash.clone())
        .bind(c.disabled.map(i64::from))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if c.password_hash.is_some() || c.disabled == Some(true) {
            // A new password or a disabled agent ends every login.
            sqlx::query("UPDATE agent_sessions SET revoked = 1 WHERE agent_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.agent(tenant, id).await
    }

    pub(crate) async fn delete_agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM agent_sessions WHERE agent_id = (SELECT id FROM agents WHERE id = $1 AND tenant_id = $2)",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM room_members WHERE tenant_id = $2 AND member_id = $1")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM agents WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn revoke_session(&self, id: SessionId) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE agent_sessions SET revoked = 1 WHERE id = $1 AND revoked = 0")
                .bind(id.to_string())
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn revoke_agent_sessions(
        &self,
        tenant: TenantId,
        agent: AgentId,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE agent_sessions SET revoked = 1 WHERE agent_id = $1 AND revoked = 0 \
                     AND agent_id IN (SELECT id FROM agents WHERE tenant_id = $2)",
        )
        .bind(agent.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn presences(
        &self,
        tenant: TenantId,
        ids: &[AgentId],
    ) -> StoreResult<Vec<AgentPresence>> {
        let mut binds = vec![Bind::S(tenant.to_string())];
        let mut sql = "SELECT id, tenant_id, presence_state, presence_status, last_activity \
                               FROM agents WHERE tenant_id = $1 AND role <> 'application'"
            .to_string();
        if !ids.is_empty() {
            binds.extend(ids.iter().map(|id| Bind::S(id.to_string())));
            sql.push_str(&format!(
                " AND id IN ({})",
                Params::Numbered.list(2, ids.len())
            ));
        }
        sql.push_str(" ORDER BY created_at, id");
        let rows = Self::bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get(2)?;
                Ok(AgentPresence {
                    agent_id: parse_id(&row.try_get::<String, _>(0)?)?,
                    tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    state: PresenceState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("bad presence `{state}`")))?,
                    status: row.try_get(3)?,
                    last_activity_ms: row.try_get(4)?,
                })
            })
            .collect()
    }

    pub(crate) async fn set_presence(
        &self,
        tenant: TenantId,
        id: AgentId,
        state: PresenceState,
        status: Option<&str>,
        at_ms: i64,
        then: Option<crate::store::PresenceRows>,
    ) -> StoreResult<Option<AgentPresence>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE agents SET presence_state = $1, presence_status = $2, last_activity = $3 \
                     WHERE id = $4 AND tenant_id = $5",
        )
        .bind(state.as_str())
        .bind(status)
        .bind(at_ms)
        .bind(id.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(then) = &then {
            let rows = then.rows(&AgentPresence {
                agent_id: id,
                tenant_id: tenant,
                state,
                status: status.map(str::to_string),
                last_activity_ms: Some(at_ms),
            });
            if !rows.is_empty() {
                Self::insert_outbox_rows(&mut tx, &rows.iter().collect::<Vec<_>>()).await?;
            }
        }
        tx.commit().await?;
        Ok(self.presences(tenant, &[id]).await?.pop())
    }
}
