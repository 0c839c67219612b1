//! Webhooks' shapes (desk-api.md, "Integrations"): an event's body as
//! receivers get it, an endpoint and a delivery as the admin API shows them.

use serde_json::{json, Value};

use crate::domain::time::format_ms;
use crate::domain::webhook::{EventType, Webhook, WebhookDelivery};
use crate::domain::TenantId;

/// An event's body: `{"id", "type", "created_at", "tenant_uuid", "data"}`.
pub fn event_body(id: &str, kind: EventType, at_ms: i64, tenant: TenantId, data: Value) -> String {
    json!({
        "id": id,
        "type": kind.as_str(),
        "created_at": format_ms(at_ms),
        "tenant_uuid": tenant,
        "data": data,
    })
    .to_string()
}

/// An endpoint (never its secret, which only its creation answers).
pub fn webhook(w: &Webhook) -> Value {
    json!({
        "uuid": w.id,
        "tenant_uuid": w.tenant_id,
        "url": w.url.as_str(),
        "events": w.events.names(),
        "enabled": w.enabled,
        "paused_reason": w.paused_reason,
        "created_at": format_ms(w.created_at_ms),
        "updated_at": format_ms(w.updated_at_ms),
    })
}

/// A new endpoint, with its secret: shown once.
pub fn created_webhook(w: &Webhook) -> Value {
    let mut value = webhook(w);
    value["secret"] = json!(w.secret.shown());
    value
}

/// One delivery of an endpoint's log.
pub fn delivery(d: &WebhookDelivery) -> Value {
    json!({
        "uuid": d.id,
        "webhook_uuid": d.webhook_id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "status": d.status(),
        "attempts": d.attempts,
        "last_error": d.last_error,
        "last_status_code": d.last_status,
        "response_time_ms": d.last_duration_ms,
        "created_at": format_ms(d.created_at_ms),
        "delivered_at": d.sent_at_ms.map(format_ms),
        "failed_at": d.dropped_at_ms.map(format_ms),
        "next_attempt_at": (d.sent_at_ms.is_none() && d.dropped_at_ms.is_none())
            .then(|| format_ms(d.due_at_ms)),
    })
}
