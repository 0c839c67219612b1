//! The SQL of canned responses. Methods of `Sql`, generic over the backend
//! (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{CannedResponse, CannedResponseId, TenantId};
use crate::store::{CannedSaved, Page, StoreError, StoreResult};

use super::{parse_id, Backend, RowsAffected, Sql};

const CANNED_COLUMNS: &str = "id, tenant_id, shortcut, title, content, created_at, updated_at";

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
{
    fn canned_from_row(row: &DB::Row) -> StoreResult<CannedResponse> {
        Ok(CannedResponse {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            shortcut: row.try_get(2)?,
            title: row.try_get(3)?,
            content: row.try_get(4)?,
            created_at_ms: row.try_get(5)?,
            updated_at_ms: row.try_get(6)?,
        })
    }

    /// A unique violation (the tenant's shortcut is taken) as `ShortcutTaken`.
    fn saved(outcome: StoreResult<u64>) -> StoreResult<CannedSaved> {
        match outcome {
            Ok(0) => Ok(CannedSaved::NotFound),
            Ok(_) => Ok(CannedSaved::Saved),
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                Ok(CannedSaved::ShortcutTaken)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn insert_canned_response(
        &self,
        c: &CannedResponse,
    ) -> StoreResult<CannedSaved> {
        let sql = format!(
            "INSERT INTO canned_responses ({CANNED_COLUMNS}, search_text) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        let done = sqlx::query(&sql)
            .bind(c.id.to_string())
            .bind(c.tenant_id.to_string())
            .bind(c.shortcut.as_str())
            .bind(c.title.as_str())
            .bind(c.content.as_str())
            .bind(c.created_at_ms)
            .bind(c.updated_at_ms)
            .bind(c.search_text())
            .execute(&self.write)
            .await
            .map(|d| d.rows_affected())
            .map_err(StoreError::from);
        Self::saved(done)
    }

    pub(crate) async fn update_canned_response(
        &self,
        c: &CannedResponse,
    ) -> StoreResult<CannedSaved> {
        let done = sqlx::query(
            "UPDATE canned_responses SET shortcut = $1, title = $2, content = $3, \
             updated_at = $4, search_text = $5 WHERE id = $6 AND tenant_id = $7",
        )
        .bind(c.shortcut.as_str())
        .bind(c.title.as_str())
        .bind(c.content.as_str())
        .bind(c.updated_at_ms)
        .bind(c.search_text())
        .bind(c.id.to_string())
        .bind(c.tenant_id.to_string())
        .execute(&self.write)
        .await
        .map(|d| d.rows_affected())
        .map_err(StoreError::from);
        Self::saved(done)
    }

    pub(crate) async fn canned_response(
        &self,
        tenant: TenantId,
        id: CannedResponseId,
    ) -> StoreResult<Option<CannedResponse>> {
        let sql = format!(
            "SELECT {CANNED_COLUMNS} FROM canned_responses WHERE id = $1 AND tenant_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::canned_from_row).transpose()
    }

    /// The tenant's canned responses whose search text is `LIKE` `search`
    /// (all when `None`); those whose shortcut starts with `prefix` first,
    /// then by shortcut.
    pub(crate) async fn canned_responses(
        &self,
        tenant: TenantId,
        search: Option<&str>,
        prefix: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<CannedResponse>> {
        let matching = "tenant_id = $1 AND ($2 IS NULL OR search_text LIKE $2 ESCAPE '\\')";
        let sql = format!(
            "SELECT {CANNED_COLUMNS} FROM canned_responses WHERE {matching} \
             ORDER BY CASE WHEN $3 IS NOT NULL AND search_text LIKE $3 ESCAPE '\\' THEN 0 ELSE 1 END, \
             lower(shortcut), id LIMIT $4 OFFSET $5"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(search.map(str::to_string))
            .bind(prefix.map(str::to_string))
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.read)
            .await?;
        let items = rows
            .iter()
            .map(Self::canned_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let counts = sqlx::query(&format!(
            "SELECT COUNT(*), SUM(CASE WHEN {matching} THEN 1 ELSE 0 END) \
             FROM canned_responses WHERE tenant_id = $1"
        ))
        .bind(tenant.to_string())
        .bind(search.map(str::to_string))
        .fetch_one(&self.read)
        .await?;
        let total: i64 = counts.try_get(0)?;
        let filtered: Option<i64> = counts.try_get(1)?;
        Ok(Page {
            items,
            filtered: filtered.unwrap_or(0),
            total,
        })
    }

    pub(crate) async fn delete_canned_response(
        &self,
        tenant: TenantId,
        id: CannedResponseId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM canned_responses WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
