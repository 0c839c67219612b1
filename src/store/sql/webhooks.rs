//! The SQL of webhooks: a tenant's endpoints, and their delivery logs (the
//! outbox rows whose `target` they are, and on SQLite the events of the
//! webhook log sent at their first try: see `webhook_log`). Methods of `Sql`, generic over the
//! backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use crate::domain::webhook::{EventFilter, Webhook, WebhookDelivery, WebhookSecret, WebhookUrl};
use crate::domain::{TenantId, WebhookId};
use crate::store::{StoreError, StoreResult};

use super::{parse_id, parse_uuid, Backend, RowsAffected, Sql};

const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, url, events, secret, enabled, paused_reason, created_at, updated_at";

const DELIVERY_COLUMNS: &str = "id, target, payload, created_at, attempts, last_error, \
     last_status, last_duration_ms, sent_at, dropped_at, due_at";

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
    fn webhook_from_row(row: &DB::Row) -> StoreResult<Webhook> {
        let url: String = row.try_get(2)?;
        let events: String = row.try_get(3)?;
        let secret: String = row.try_get(4)?;
        Ok(Webhook {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            url: WebhookUrl::parse(&url)
                .map_err(|e| StoreError::Corrupt(format!("webhook url: {e}")))?,
            events: EventFilter::decode(&events)
                .ok_or_else(|| StoreError::Corrupt(format!("webhook events `{events}`")))?,
            secret: WebhookSecret::decode(&secret)
                .ok_or_else(|| StoreError::Corrupt("webhook secret".into()))?,
            enabled: row.try_get::<i64, _>(5)? != 0,
            paused_reason: row.try_get(6)?,
            created_at_ms: row.try_get(7)?,
            updated_at_ms: row.try_get(8)?,
        })
    }

    pub(crate) async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, url, events, secret, enabled, paused_reason, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(webhook.id.to_string())
        .bind(webhook.tenant_id.to_string())
        .bind(webhook.url.as_str())
        .bind(webhook.events.encode())
        .bind(webhook.secret.encode())
        .bind(i64::from(webhook.enabled))
        .bind(webhook.paused_reason.as_deref())
        .bind(webhook.created_at_ms)
        .bind(webhook.updated_at_ms)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub(crate) async fn webhooks(&self, tenant: TenantId) -> StoreResult<Vec<Webhook>> {
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::webhook_from_row).collect()
    }

    pub(crate) async fn webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> StoreResult<Option<Webhook>> {
        let sql =
            format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND tenant_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::webhook_from_row).transpose()
    }

    pub(crate) async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE webhooks SET url = $1, events = $2, enabled = $3, paused_reason = $4, \
             updated_at = $5 WHERE id = $6 AND tenant_id = $7",
        )
        .bind(webhook.url.as_str())
        .bind(webhook.events.encode())
        .bind(i64::from(webhook.enabled))
        .bind(webhook.paused_reason.as_deref())
        .bind(webhook.updated_at_ms)
        .bind(webhook.id.to_string())
        .bind(webhook.tenant_id.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn delete_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn pause_webhook(
        &self,
        tenant: TenantId,
        id: WebhookId,
        reason: &str,
        at_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 0, paused_reason = $1, updated_at = $2 \
             WHERE id = $3 AND tenant_id = $4 AND enabled = 1",
        )
        .bind(reason)
        .bind(at_ms)
        .bind(id.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        id: WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM outbox WHERE target = $1 AND tenant_id = $2 \
             ORDER BY created_at DESC, {} DESC LIMIT $3",
            DB::OUTBOX_POS
        );
        let mut rows = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        if DB::WEBHOOK_LOG {
            // The events sent (or given up) at their first try are in the
            // log (the others were moved to the outbox, read above). It has
            // no index on its target: this reads back from its newest row
            // until it has `limit` of the endpoint's.
            let logged = sqlx::query(
                "SELECT id, target, payload, created_at, \
                 CASE WHEN sent_at IS NULL AND last_status IS NULL THEN 0 ELSE 1 END, \
                 last_error, last_status, last_duration_ms, sent_at, dropped_at, created_at \
                 FROM webhook_log WHERE target = $1 AND tenant_id = $2 AND moved = 0 \
                 ORDER BY pos DESC LIMIT $3",
            )
            .bind(id.to_string())
            .bind(tenant.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
            rows.extend(logged);
        }
        let mut deliveries = rows
            .iter()
            .map(|row| {
                let payload: String = row.try_get(2)?;
                let (event_id, event_type) = event_of(&payload);
                Ok(WebhookDelivery {
                    id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    webhook_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    event_id,
                    event_type,
                    created_at_ms: row.try_get(3)?,
                    attempts: row.try_get(4)?,
                    last_error: row.try_get(5)?,
                    last_status: row.try_get(6)?,
                    last_duration_ms: row.try_get(7)?,
                    sent_at_ms: row.try_get(8)?,
                    dropped_at_ms: row.try_get(9)?,
                    due_at_ms: row.try_get(10)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Newest first (a stable sort: each part is in its own order).
        deliveries.sort_by_key(|d| std::cmp::Reverse(d.created_at_ms));
        deliveries.truncate(limit as usize);
        Ok(deliveries)
    }

    pub(crate) async fn redeliver(
        &self,
        tenant: TenantId,
        id: WebhookId,
        delivery: Uuid,
        now_ms: i64,
    ) -> StoreResult<Option<Uuid>> {
        let new_id = Uuid::now_v7();
        let done = sqlx::query(
            "INSERT INTO outbox (id, kind, tenant_id, payload, created_at, due_at, order_key, target) \
             SELECT $1, kind, tenant_id, payload, $2, $3, order_key, target FROM outbox \
             WHERE id = $4 AND target = $5 AND tenant_id = $6",
        )
        .bind(new_id.to_string())
        .bind(now_ms)
        .bind(now_ms)
        .bind(delivery.to_string())
        .bind(id.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        if done.rows_affected() > 0 || !DB::WEBHOOK_LOG {
            return Ok((done.rows_affected() > 0).then_some(new_id));
        }
        // An event sent at its first try is in the log. Found on a reader
        // (the log has no index on ids), then copied by its position.
        let found = sqlx::query(
            "SELECT pos FROM webhook_log WHERE id = $1 AND target = $2 AND tenant_id = $3 \
             AND moved = 0",
        )
        .bind(delivery.to_string())
        .bind(id.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.read)
        .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let pos: i64 = found.try_get(0)?;
        let done = sqlx::query(
            "INSERT INTO outbox (id, kind, tenant_id, payload, created_at, due_at, order_key, target) \
             SELECT $1, kind, tenant_id, payload, $2, $3, order_key, target FROM webhook_log \
             WHERE pos = $4",
        )
        .bind(new_id.to_string())
        .bind(now_ms)
        .bind(now_ms)
        .bind(pos)
        .execute(&self.write)
        .await?;
        Ok((done.rows_affected() > 0).then_some(new_id))
    }
}

/// The event id and type a delivery's body carries (empty when unreadable).
fn event_of(payload: &str) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        id: String,
        #[serde(default, rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Head>(payload)
        .map(|h| (h.id, h.kind))
        .unwrap_or_default()
}
