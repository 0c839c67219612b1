//! Webhooks' shapes (desk-api.md, "Integrations"): an event's body as
//! receivers get it, an endpoint and a delivery as the admin API shows them.

use serde::Serialize;
use serde_json::{json, Value};

use super::wazo::{Cx, WireMessage};
use crate::domain::time::format_ms;
use crate::domain::webhook::{EventType, Webhook, WebhookDelivery};
use crate::domain::{Message, TenantId};

/// An event's body: `{"created_at", "data", "id", "tenant_uuid", "type"}`,
/// serialized straight from `data`, with no `Value` tree built first: a
/// message's events are built inside its transaction (on SQLite, while it
/// holds the one writer), so their cost is the chat's.
pub fn event_body<T: Serialize + ?Sized>(
    id: &str,
    kind: EventType,
    at_ms: i64,
    tenant: TenantId,
    data: &T,
) -> String {
    #[derive(Serialize)]
    struct Body<'a, T: ?Sized> {
        created_at: String,
        data: &'a T,
        id: &'a str,
        tenant_uuid: TenantId,
        #[serde(rename = "type")]
        kind: &'static str,
    }
    let body = Body {
        created_at: format_ms(at_ms),
        data,
        id,
        tenant_uuid: tenant,
        kind: kind.as_str(),
    };
    serde_json::to_string(&body).unwrap_or_else(|err| {
        // Only a `data` whose own encoding fails (none of ours does): the
        // event still goes, without it.
        tracing::error!(%err, kind = kind.as_str(), "cannot encode a webhook event's data");
        event_body(id, kind, at_ms, tenant, &Value::Null)
    })
}

/// The `data` of a message's event: `{"message": ...}`, the message as
/// agents receive it.
#[derive(Serialize)]
pub struct MessageData<'a> {
    message: WireMessage<'a>,
}

impl<'a> MessageData<'a> {
    pub fn of(m: &'a Message, cx: Cx<'_>) -> MessageData<'a> {
        MessageData {
            message: WireMessage::of(m, cx),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_body_is_its_envelope_around_its_data() {
        let tenant = TenantId::new();
        let body = event_body(
            "evt_1",
            EventType::MessageCreated,
            1_000,
            tenant,
            &json!({"message": {"seq": 1}}),
        );
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({
                "id": "evt_1",
                "type": "message.created",
                "created_at": format_ms(1_000),
                "tenant_uuid": tenant,
                "data": {"message": {"seq": 1}},
            })
        );
    }
}
