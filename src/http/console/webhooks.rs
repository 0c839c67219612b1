//! The webhooks admin pages (role admin, checked by the service on every
//! call): the tenant's endpoints (create, with the secret shown once;
//! enable, disable, delete) and each one's delivery log with "send again".

use askama::Template;
use warp::http::StatusCode;
use warp::reply::Response;

use super::admin::chrome;
use super::views::{Chrome, PRESENCE_STATES};
use super::{redirect, render, Form, Session};
use crate::domain::time::format_ms;
use crate::domain::webhook::{Webhook, WebhookDelivery};
use crate::domain::WebhookId;
use crate::error::ApiError;
use crate::service::webhooks::WebhookFields;
use crate::state::App;

/// An endpoint as its admin page lists it.
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub enabled: bool,
    pub paused_reason: Option<String>,
}

impl WebhookRow {
    fn new(w: &Webhook) -> WebhookRow {
        WebhookRow {
            id: w.id.to_string(),
            url: w.url.as_str().to_string(),
            events: w.events.names().join(", "),
            enabled: w.enabled,
            paused_reason: w.paused_reason.clone(),
        }
    }
}

/// GET /console/admin/webhooks
#[derive(Template)]
#[template(path = "console/webhooks.html")]
pub struct WebhooksPage {
    pub chrome: Chrome,
    pub webhooks: Vec<WebhookRow>,
    /// A new endpoint's secret: shown this once.
    pub created: Option<(String, String)>,
    pub error: Option<String>,
    /// The form as typed, kept after a refusal so nothing is typed twice.
    pub typed: Typed,
    /// Whether endpoints may name internal addresses (the help says which
    /// are refused otherwise).
    pub allow_private: bool,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

/// The new-endpoint form's values.
pub struct Typed {
    pub url: String,
    pub events: String,
}

impl Default for Typed {
    fn default() -> Typed {
        Typed {
            url: String::new(),
            events: "*".into(),
        }
    }
}

/// One delivery as the log shows it.
pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub event_id: String,
    pub status: &'static str,
    pub attempts: i64,
    pub code: String,
    pub response_time: String,
    pub last_error: String,
    pub at: String,
}

impl DeliveryRow {
    fn new(d: &WebhookDelivery) -> DeliveryRow {
        DeliveryRow {
            id: d.id.to_string(),
            event: d.event_type.clone(),
            event_id: d.event_id.clone(),
            status: d.status(),
            attempts: d.attempts,
            code: d.last_status.map_or("—".into(), |c| c.to_string()),
            response_time: d
                .last_duration_ms
                .map_or("—".into(), |ms| format!("{ms} ms")),
            last_error: d.last_error.clone().unwrap_or_default(),
            at: format_ms(d.created_at_ms),
        }
    }
}

/// GET /console/admin/webhooks/<id>
#[derive(Template)]
#[template(path = "console/webhook.html")]
pub struct WebhookPage {
    pub chrome: Chrome,
    pub webhook: WebhookRow,
    pub deliveries: Vec<DeliveryRow>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

/// GET /console/admin/webhooks
pub async fn list(
    app: &App,
    s: &Session,
    created: Option<(String, String)>,
    error: Option<String>,
    typed: Typed,
) -> Result<Response, ApiError> {
    let chrome = chrome(
        app,
        s,
        "Webhooks",
        "webhooks",
        "/console/admin/webhooks".into(),
    )
    .await?;
    let webhooks = app.services.webhooks.list(&s.caller).await?;
    let status = super::form_status(&error);
    render(
        status,
        &WebhooksPage {
            chrome,
            webhooks: webhooks.iter().map(WebhookRow::new).collect(),
            created,
            error,
            typed,
            allow_private: app.services.webhooks.allows_private(),
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/webhooks `url`, `events` (names separated by commas
/// or spaces; `*` for all): the page again, with the secret shown once.
pub async fn create(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let typed = Typed {
        url: form.get("url").unwrap_or_default().to_string(),
        events: form.get("events").unwrap_or("*").to_string(),
    };
    let events = typed
        .events
        .split([',', ' '])
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    let fields = WebhookFields {
        // Absent stays absent: the same "url is required" as the API.
        url: form.get("url").map(str::to_string),
        events: Some(events),
        enabled: Some(true),
    };
    match app.services.webhooks.create(&s.caller, fields).await {
        Ok(webhook) => {
            let created = (webhook.url.as_str().to_string(), webhook.secret.shown());
            list(app, s, Some(created), None, Typed::default()).await
        }
        Err(err) => list(app, s, None, Some(super::refusal(err)?), typed).await,
    }
}

/// POST /console/admin/webhooks/<id>/enable or /disable
pub async fn set_enabled(
    app: &App,
    s: &Session,
    id: WebhookId,
    enabled: bool,
) -> Result<Response, ApiError> {
    let fields = WebhookFields {
        enabled: Some(enabled),
        ..WebhookFields::default()
    };
    app.services.webhooks.update(&s.caller, id, fields).await?;
    Ok(redirect("/console/admin/webhooks"))
}

/// POST /console/admin/webhooks/<id>/delete
pub async fn delete(app: &App, s: &Session, id: WebhookId) -> Result<Response, ApiError> {
    app.services.webhooks.delete(&s.caller, id).await?;
    Ok(redirect("/console/admin/webhooks"))
}

/// GET /console/admin/webhooks/<id>: its delivery log.
pub async fn log(app: &App, s: &Session, id: WebhookId) -> Result<Response, ApiError> {
    let back = format!("/console/admin/webhooks/{id}");
    let chrome = chrome(app, s, "Webhook deliveries", "webhooks", back).await?;
    let (webhook, deliveries) = app.services.webhooks.deliveries(&s.caller, id).await?;
    render(
        StatusCode::OK,
        &WebhookPage {
            chrome,
            webhook: WebhookRow::new(&webhook),
            deliveries: deliveries.iter().map(DeliveryRow::new).collect(),
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/webhooks/<id>/deliveries/<delivery>/redeliver
pub async fn redeliver(
    app: &App,
    s: &Session,
    id: WebhookId,
    delivery: uuid::Uuid,
) -> Result<Response, ApiError> {
    app.services
        .webhooks
        .redeliver(&s.caller, id, delivery)
        .await?;
    Ok(redirect(&format!("/console/admin/webhooks/{id}")))
}
