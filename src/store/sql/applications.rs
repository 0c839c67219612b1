//! The SQL of applications (bots): their rows (beside their row among the
//! agents, with the same id), the token check of every call they make, the
//! revocation, and a room handed back to the queue. Methods of `Sql`,
//! generic over the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::application::{Application, Scopes};
use crate::domain::{Agent, AgentId, Room, RoomId, TenantId};
use crate::store::{RoomRows, StoreError, StoreResult};

use super::{parse_id, Backend, RowsAffected, Sql, AGENT_COLUMNS_OF_A};

const APPLICATION_COLUMNS: &str =
    "p.id, p.tenant_id, p.name, p.scopes, p.created_by, p.created_at, p.revoked_at";
/// How many columns `APPLICATION_COLUMNS` lists.
const APPLICATION_COLUMN_COUNT: usize = 7;

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
    fn application_from_row(row: &DB::Row) -> StoreResult<Application> {
        let scopes: String = row.try_get(3)?;
        Ok(Application {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            name: row.try_get(2)?,
            scopes: Scopes::decode(&scopes)
                .ok_or_else(|| StoreError::Corrupt(format!("application scopes `{scopes}`")))?,
            created_by: row
                .try_get::<Option<String>, _>(4)?
                .as_deref()
                .map(parse_id)
                .transpose()?,
            created_at_ms: row.try_get(5)?,
            revoked_at_ms: row.try_get(6)?,
        })
    }

    /// The application and its row among the agents, in one transaction.
    pub(crate) async fn insert_application(
        &self,
        application: &Application,
        agent: &Agent,
        token_hash: &str,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        Self::insert_agent_on(&mut *tx, agent).await?;
        sqlx::query(
            "INSERT INTO applications (id, tenant_id, name, scopes, token_hash, created_by, \
             created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(application.id.to_string())
        .bind(application.tenant_id.to_string())
        .bind(&application.name)
        .bind(application.scopes.encode())
        .bind(token_hash)
        .bind(application.created_by.map(|a| a.to_string()))
        .bind(application.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's applications, revoked ones included, oldest first.
    pub(crate) async fn applications(&self, tenant: TenantId) -> StoreResult<Vec<Application>> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications p WHERE p.tenant_id = $1 \
             ORDER BY p.created_at, p.id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::application_from_row).collect()
    }

    pub(crate) async fn application(
        &self,
        tenant: TenantId,
        id: AgentId,
    ) -> StoreResult<Option<Application>> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications p WHERE p.id = $1 AND p.tenant_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::application_from_row).transpose()
    }

    /// The live (not revoked) application whose token hashes to `hash`, with
    /// its row among the agents. Read on every call the application makes,
    /// from the writer on SQLite like agents' sessions (see
    /// `Backend::SESSIONS_ON_WRITER`), so a revocation applies at once.
    pub(crate) async fn application_by_token(
        &self,
        hash: &str,
    ) -> StoreResult<Option<(Application, Agent)>> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS}, {AGENT_COLUMNS_OF_A} FROM applications p \
             JOIN agents a ON a.id = p.id AND a.tenant_id = p.tenant_id \
             WHERE p.token_hash = $1 AND p.revoked_at IS NULL AND a.disabled = 0"
        );
        let pool = if DB::SESSIONS_ON_WRITER {
            &self.write
        } else {
            &self.read
        };
        let Some(row) = sqlx::query(&sql).bind(hash).fetch_optional(pool).await? else {
            return Ok(None);
        };
        let application = Self::application_from_row(&row)?;
        let agent = Self::agent_from_row_at(&row, APPLICATION_COLUMN_COUNT)?;
        Ok(Some((application, agent)))
    }

    /// Revokes the application now (its agent row disabled, the channels
    /// naming it as their bot cleared), in one transaction. `None` when the
    /// tenant has no such application; an application revoked already is
    /// returned as it was.
    pub(crate) async fn revoke_application(
        &self,
        tenant: TenantId,
        id: AgentId,
        at_ms: i64,
    ) -> StoreResult<Option<Application>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE applications SET revoked_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        )
        .bind(at_ms)
        .bind(id.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "UPDATE agents SET disabled = 1 WHERE id = $1 AND tenant_id = $2 AND role = 'application'",
            )
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE channels SET bot_id = NULL WHERE bot_id = $1 AND tenant_id = $2")
                .bind(id.to_string())
                .bind(tenant.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications p WHERE p.id = $1 AND p.tenant_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(Self::application_from_row).transpose()
    }

    /// The open visitor rooms `member` is in (what a revoked application
    /// hands back to the queue).
    pub(crate) async fn open_rooms_of(
        &self,
        tenant: TenantId,
        member: AgentId,
    ) -> StoreResult<Vec<RoomId>> {
        let rows = sqlx::query(
            "SELECT c.id FROM conversations c JOIN room_members rm ON rm.room_id = c.id \
             WHERE rm.member_id = $1 AND rm.tenant_id = $2 AND c.tenant_id = $2 \
             AND c.kind = 'visitor' AND c.state = 'open' ORDER BY c.id",
        )
        .bind(member.to_string())
        .bind(tenant.to_string())
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>(0)?))
            .collect()
    }

    /// `member` leaves an open visitor room, which returns to its channel's
    /// queue (no assignee, waiting from `at_ms`), with the rows of `then`,
    /// in one transaction. `None` when `member` is not in such a room of
    /// `tenant`.
    pub(crate) async fn requeue(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>> {
        let mut tx = self.write.begin().await?;
        // The conditional update first: it takes the room's row lock, so
        // a concurrent hand-over, transfer or close queues behind it.
        let moved = sqlx::query(
            "UPDATE conversations SET state = 'queued', assignee_id = NULL, queued_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND kind = 'visitor' AND state = 'open' \
             AND EXISTS (SELECT 1 FROM room_members WHERE room_id = $4 AND member_id = $5)",
        )
        .bind(at_ms)
        .bind(room.to_string())
        .bind(tenant.to_string())
        .bind(room.to_string())
        .bind(member.to_string())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "DELETE FROM room_members WHERE room_id = $1 AND member_id = $2 AND tenant_id = $3",
        )
        .bind(room.to_string())
        .bind(member.to_string())
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await?;
        Self::room_rows_on(&mut tx, tenant, room, then.as_ref()).await?;
        tx.commit().await?;
        Self::room_on(&self.write, tenant, room).await
    }
}
