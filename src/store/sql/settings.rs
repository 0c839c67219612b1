//! The SQL of settings: readiness, deployment-wide settings, the first start
//! and tenants. Methods of `Sql`, generic over the backend (see
//! `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{Agent, TenantId};
use crate::store::{Bootstrap, StoreResult};

use super::{Backend, RowsAffected, Sql};

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
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub(crate) async fn setting(&self, key: &str, candidate: &str) -> StoreResult<String> {
        // Race-free without a transaction: the primary key makes a
        // concurrent insert wait for the first one's commit and then do
        // nothing, and the insert has committed (autocommit) before the
        // read, so every caller reads the one value that won.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(candidate)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get(0)?)
    }

    pub(crate) async fn bootstrap(&self, first: &Bootstrap) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        // Claim the first start with a unique key. `WHERE NOT EXISTS
        // (SELECT 1 FROM tenants)` alone is not enough: two instances
        // starting at once on an empty PostgreSQL both see no tenant
        // (READ COMMITTED snapshots) and both insert one. An insert on
        // the settings primary key instead waits for the other
        // transaction's commit and then does nothing, so exactly one
        // start proceeds (on SQLite the write lock serializes anyway).
        let claimed = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('bootstrapped', $1) \
                     ON CONFLICT (key) DO NOTHING",
        )
        .bind(first.tenant_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Still check for tenants: a database bootstrapped before the
        // marker existed has tenants but no 'bootstrapped' row.
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, name, created_at) \
                     SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tenants)",
        )
        .bind(first.tenant_id.to_string())
        .bind(&first.tenant_name)
        .bind(crate::domain::time::now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        Self::insert_agent_on(&mut *tx, &first.admin).await?;
        Self::insert_channel_on(&mut *tx, &first.channel).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn insert_tenant(
        &self,
        id: TenantId,
        name: &str,
        admin: &Agent,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(crate::domain::time::now_ms())
            .execute(&mut *tx)
            .await?;
        Self::insert_agent_on(&mut *tx, admin).await?;
        tx.commit().await?;
        Ok(())
    }
}
