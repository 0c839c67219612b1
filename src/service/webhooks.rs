//! Webhooks (desk-api.md, "Integrations"; issue 19): a tenant's endpoints,
//! managed by its admins, and the events sent to them through the outbox.
//!
//! - **Events are rows of the change's own transaction.** A service that
//!   changes something asks [`WebhookService`] for the rows of its event
//!   (`message_rows`, `room_rows`, `presence_rows`): `None` when no enabled
//!   endpoint of the tenant wants that event, so the chat writes nothing and
//!   pays one cache look-up when webhooks are off. Otherwise the store
//!   makes one row per endpoint from the change as it made it (the message
//!   with its seq, the room after), inside the change's transaction: a
//!   committed change always has its events, even across a SIGKILL. (On
//!   SQLite the store appends them to its index-less webhook log, which
//!   the worker reads first; an event not sent at its first try moves
//!   into the outbox.)
//! - **Order.** Each row's `order_key` is its endpoint and conversation (or
//!   agent, for presence): the outbox sends a key's rows one after the
//!   other, and a failing row holds back only the later rows of its key.
//! - **Delivery** ([`Handler`]): a POST signed by the Standard Webhooks
//!   specification (`crate::outbox::webhook`), the same `webhook-id` on
//!   every try; any 2xx is recorded and never sent again. A failure is
//!   retried with exponential backoff and jitter, at most a minute apart in
//!   the event's first hour and ten minutes after, for `webhook_give_up_ms`
//!   (24 hours); an event still failing then is given up and its endpoint
//!   paused (disabled, with the reason), and the tenant's admins are told.
//!   Rows of a deleted or disabled endpoint are dropped when their turn comes.
//! - **The cache.** Each instance keeps a tenant's endpoints for
//!   `webhook_cache_ms`; a change on this instance refreshes its copy at
//!   once, other instances follow within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::{Missing, ServiceError};
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::time::now_ms;
use crate::domain::webhook::{
    EventFilter, EventType, Webhook, WebhookDelivery, WebhookSecret, WebhookUrl,
};
use crate::domain::{
    AgentPresence, Event, Message, Published, Role, Room, RoomKind, RoomState, SenderKind,
    TenantId, WebhookId,
};
use crate::outbox::webhook::WebhookSender;
use crate::outbox::{Delivery, Handler, Worker};
use crate::store::{
    AgentStore, Answer, MessageRows, NewOutbox, OutboxRow, PresenceRows, RoomRows, WebhookStore,
};
use crate::wire::wazo::{Cx, ServerId};
use crate::wire::webhook::MessageData;

/// The outbox kind of every webhook delivery.
pub const KIND: &str = "webhook";
/// Most endpoints of one tenant.
pub const MAX_PER_TENANT: usize = 20;
/// Most deliveries one log page shows.
pub const MAX_LOG: u32 = 100;
/// The longest wait between two tries in an event's first hour, and after.
const FIRST_HOUR_CAP_MS: i64 = 60_000;
const LATER_CAP_MS: i64 = 600_000;
const HOUR_MS: i64 = 3_600_000;
/// How long attachment URLs in payloads stay valid (desk-api.md).
const PAYLOAD_URL_TTL_SECS: i64 = 7 * 24 * 3600;

/// An endpoint's fields as a request gives them (absent: unchanged, on a patch).
#[derive(Debug, Default)]
pub struct WebhookFields {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// The endpoints an event goes to: `(id, filter)` of each enabled one.
type Targets = Arc<[(WebhookId, EventFilter)]>;

/// A tenant's endpoints as this instance last read them.
struct Cached {
    at: Instant,
    webhooks: Arc<[Webhook]>,
}

/// What the closures handed to the store need to build bodies.
#[derive(Clone)]
struct Shapes {
    server: ServerId,
    signer: crate::files::Signer,
}

impl Shapes {
    fn message<'m>(&self, m: &'m Message) -> MessageData<'m> {
        MessageData::of(
            m,
            Cx {
                server: self.server,
                signer: &self.signer,
            },
        )
    }

    fn room(&self, r: &Room) -> Value {
        crate::wire::wazo::bare_room(r, self.server, None)
    }
}

pub struct WebhookService {
    store: Arc<dyn WebhookStore>,
    agent_store: Arc<dyn AgentStore>,
    sender: Option<WebhookSender>,
    shapes: Shapes,
    events: Events,
    cache: Mutex<HashMap<TenantId, Cached>>,
    cache_for: Duration,
    give_up_ms: i64,
    /// Whether endpoints may name non-public addresses (the operator's
    /// `CHATGATE_WEBHOOK_ALLOW_PRIVATE`).
    allow_private: bool,
    worker: OnceLock<Weak<Worker>>,
    /// Attempts by outcome, and the time from commit to delivery.
    metrics: Arc<crate::metrics::Metrics>,
}

impl WebhookService {
    pub fn new(parts: &Parts) -> WebhookService {
        let sender = match WebhookSender::new(
            Duration::from_millis(parts.config.webhook_timeout_ms),
            parts.config.webhook_allow_private,
        ) {
            Ok(sender) => Some(sender),
            Err(err) => {
                tracing::error!(%err, "webhooks cannot be delivered");
                None
            }
        };
        let mut signer = parts.files.signer().clone();
        signer.ttl_secs = PAYLOAD_URL_TTL_SECS;
        WebhookService {
            store: parts.store.clone(),
            agent_store: parts.store.clone(),
            sender,
            shapes: Shapes {
                server: parts.server,
                signer,
            },
            events: parts.events(),
            cache: Mutex::new(HashMap::new()),
            cache_for: Duration::from_millis(parts.config.webhook_cache_ms),
            give_up_ms: i64::try_from(parts.config.webhook_give_up_ms).unwrap_or(i64::MAX),
            allow_private: parts.config.webhook_allow_private,
            worker: OnceLock::new(),
            metrics: parts.metrics.clone(),
        }
    }

    /// Whether endpoints may name internal addresses
    /// (`CHATGATE_WEBHOOK_ALLOW_PRIVATE`).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// An endpoint's URL: well formed and, unless the operator allows
    /// private targets, not naming an address inside their network.
    fn parse_url(&self, raw: Option<&str>) -> Result<WebhookUrl, ServiceError> {
        let raw = raw.ok_or_else(|| ServiceError::field("url", "url is required"))?;
        let url = WebhookUrl::parse(raw).map_err(|m| ServiceError::field("url", m))?;
        if !self.allow_private {
            if let Some(why) = url.private_target() {
                return Err(ServiceError::field(
                    "url",
                    format!(
                        "url must reach a public address: {why} (the operator may allow \
                         private targets with CHATGATE_WEBHOOK_ALLOW_PRIVATE)"
                    ),
                ));
            }
        }
        Ok(url)
    }

    /// The outbox worker to wake when rows due now were written.
    pub fn attach_worker(&self, worker: &Arc<Worker>) {
        let _ = self.worker.set(Arc::downgrade(worker));
    }

    /// Rows due now were committed: this instance's worker looks at once.
    pub fn wake(&self) {
        if let Some(worker) = self.worker.get().and_then(Weak::upgrade) {
            worker.wake();
        }
    }

    // The admin API.

    /// `GET /webhooks` (admins): the tenant's endpoints, oldest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Webhook>, ServiceError> {
        caller.require_admin()?;
        Ok(self.store.webhooks(caller.tenant()).await?)
    }

    /// `POST /webhooks` (admins): a new endpoint with a fresh secret (the
    /// only answer that shows it). `url` and `events` are required,
    /// `enabled` defaults to true.
    pub async fn create(
        &self,
        caller: &Caller,
        fields: WebhookFields,
    ) -> Result<Webhook, ServiceError> {
        caller.require_admin()?;
        let url = self.parse_url(fields.url.as_deref())?;
        let events = parse_events(fields.events.as_deref())?;
        let existing = self.store.webhooks(caller.tenant()).await?;
        if existing.len() >= MAX_PER_TENANT {
            return Err(ServiceError::invalid(format!(
                "a team has at most {MAX_PER_TENANT} webhooks"
            )));
        }
        let now = now_ms();
        let webhook = Webhook {
            id: WebhookId::new(),
            tenant_id: caller.tenant(),
            url,
            events,
            secret: WebhookSecret::generate(),
            enabled: fields.enabled.unwrap_or(true),
            paused_reason: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_webhook(&webhook).await?;
        self.forget(caller.tenant());
        Ok(webhook)
    }

    /// `PATCH /webhooks/<uuid>` (admins): changes the fields given;
    /// enabling a paused endpoint clears its pause.
    pub async fn update(
        &self,
        caller: &Caller,
        id: WebhookId,
        fields: WebhookFields,
    ) -> Result<Webhook, ServiceError> {
        caller.require_admin()?;
        let url = fields
            .url
            .as_deref()
            .map(|u| self.parse_url(Some(u)))
            .transpose()?;
        let events = fields
            .events
            .as_deref()
            .map(|e| parse_events(Some(e)))
            .transpose()?;
        let mut webhook = self
            .store
            .webhook(caller.tenant(), id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Webhook))?;
        if let Some(url) = url {
            webhook.url = url;
        }
        if let Some(events) = events {
            webhook.events = events;
        }
        if let Some(enabled) = fields.enabled {
            if enabled {
                webhook.paused_reason = None;
            }
            webhook.enabled = enabled;
        }
        webhook.updated_at_ms = now_ms();
        if !self.store.update_webhook(&webhook).await? {
            return Err(ServiceError::NotFound(Missing::Webhook));
        }
        self.forget(caller.tenant());
        Ok(webhook)
    }

    /// `DELETE /webhooks/<uuid>` (admins).
    pub async fn delete(&self, caller: &Caller, id: WebhookId) -> Result<(), ServiceError> {
        caller.require_admin()?;
        if !self.store.delete_webhook(caller.tenant(), id).await? {
            return Err(ServiceError::NotFound(Missing::Webhook));
        }
        self.forget(caller.tenant());
        Ok(())
    }

    /// `GET /webhooks/<uuid>/deliveries` (admins): the newest deliveries.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        id: WebhookId,
    ) -> Result<(Webhook, Vec<WebhookDelivery>), ServiceError> {
        caller.require_admin()?;
        let webhook = self
            .store
            .webhook(caller.tenant(), id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Webhook))?;
        let log = self
            .store
            .webhook_deliveries(caller.tenant(), id, MAX_LOG)
            .await?;
        Ok((webhook, log))
    }

    /// "Send again" (admins): the delivery's event once more, with its
    /// event id, after the events of its conversation already waiting.
    pub async fn redeliver(
        &self,
        caller: &Caller,
        id: WebhookId,
        delivery: Uuid,
    ) -> Result<(), ServiceError> {
        caller.require_admin()?;
        self.store
            .redeliver(caller.tenant(), id, delivery, now_ms())
            .await?
            .ok_or(ServiceError::NotFound(Missing::Delivery))?;
        self.wake();
        Ok(())
    }

    // Events.

    /// The tenant's endpoints: this instance's copy, read again once it is
    /// `webhook_cache_ms` old.
    async fn endpoints(&self, tenant: TenantId) -> Result<Arc<[Webhook]>, ServiceError> {
        if let Some(cached) = self.lock().get(&tenant) {
            if cached.at.elapsed() < self.cache_for {
                return Ok(cached.webhooks.clone());
            }
        }
        let read = Instant::now();
        let webhooks: Arc<[Webhook]> = self.store.webhooks(tenant).await?.into();
        self.lock().insert(
            tenant,
            Cached {
                at: read,
                webhooks: webhooks.clone(),
            },
        );
        Ok(webhooks)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Cached>> {
        // Nothing panics under this lock; a poisoned map is still a map.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This instance's copy of the tenant's endpoints is stale.
    fn forget(&self, tenant: TenantId) {
        self.lock().remove(&tenant);
    }

    /// The enabled endpoints that want any of `kinds` (none: `None`). A
    /// store failure is logged and counts as none: the chat goes on.
    async fn targets(&self, tenant: TenantId, kinds: &[EventType]) -> Option<Targets> {
        let endpoints = match self.endpoints(tenant).await {
            Ok(endpoints) => endpoints,
            Err(err) => {
                tracing::warn!(%err, %tenant, "cannot read the webhooks; this change sends none");
                return None;
            }
        };
        let targets: Vec<(WebhookId, EventFilter)> = endpoints
            .iter()
            .filter(|w| w.enabled && kinds.iter().any(|&k| w.events.wants(k)))
            .map(|w| (w.id, w.events.clone()))
            .collect();
        (!targets.is_empty()).then(|| targets.into())
    }

    /// The rows of a new message of a visitor conversation of the tenant:
    /// `message.created` (a private note carries `"private": true`), and
    /// for a visitor's first message `conversation.created` and
    /// `conversation.queued` before it. Agents' team rooms send none.
    pub async fn created_rows(&self, tenant: TenantId) -> Option<MessageRows> {
        let kinds = [
            EventType::ConversationCreated,
            EventType::ConversationQueued,
            EventType::MessageCreated,
        ];
        let targets = self.targets(tenant, &kinds).await?;
        let shapes = self.shapes.clone();
        Some(MessageRows::new(move |m: &Message| {
            // Visitor conversations only: agents' team rooms stay inside.
            if m.channel_id.is_none() {
                return Vec::new();
            }
            let mut rows = Vec::new();
            let now = now_ms();
            let key = m.conversation_id.0;
            if m.seq == 1 && m.sender_kind == SenderKind::Visitor {
                let room = json!({"room": shapes.room(&first_room(m))});
                for kind in [
                    EventType::ConversationCreated,
                    EventType::ConversationQueued,
                ] {
                    rows.extend(event_rows(&targets, kind, m.tenant_id, key, now, &room));
                }
            }
            rows.extend(event_rows(
                &targets,
                EventType::MessageCreated,
                m.tenant_id,
                key,
                now,
                &shapes.message(m),
            ));
            rows
        }))
    }

    /// The rows of an edit (`message.updated`) or a deletion
    /// (`message.deleted`) of a message of the tenant.
    pub async fn changed_rows(&self, tenant: TenantId, deleted: bool) -> Option<MessageRows> {
        let kind = if deleted {
            EventType::MessageDeleted
        } else {
            EventType::MessageUpdated
        };
        let targets = self.targets(tenant, &[kind]).await?;
        let shapes = self.shapes.clone();
        Some(MessageRows::new(move |m: &Message| {
            if m.channel_id.is_none() {
                return Vec::new();
            }
            event_rows(
                &targets,
                kind,
                m.tenant_id,
                m.conversation_id.0,
                now_ms(),
                &shapes.message(m),
            )
        }))
    }

    /// The rows of a visitor room's change (`kinds` in this order, those
    /// an endpoint wants), each with the room as changed.
    pub async fn room_rows(&self, tenant: TenantId, kinds: &[EventType]) -> Option<RoomRows> {
        let targets = self.targets(tenant, kinds).await?;
        let shapes = self.shapes.clone();
        let kinds = kinds.to_vec();
        Some(RoomRows::new(move |r: &Room| {
            if r.kind != RoomKind::Visitor {
                return Vec::new();
            }
            let room = json!({"room": shapes.room(r)});
            let now = now_ms();
            kinds
                .iter()
                .flat_map(|&kind| event_rows(&targets, kind, r.tenant_id, r.id.0, now, &room))
                .collect()
        }))
    }

    /// The rows of an agent's chosen presence changing (`presence.updated`).
    pub async fn presence_rows(&self, tenant: TenantId) -> Option<PresenceRows> {
        let targets = self.targets(tenant, &[EventType::PresenceUpdated]).await?;
        Some(PresenceRows::new(move |p: &AgentPresence| {
            let mut presence = crate::wire::wazo::presence(p, false);
            // Whether a socket is open is not part of the change.
            if let Some(fields) = presence.as_object_mut() {
                fields.remove("connected");
            }
            event_rows(
                &targets,
                EventType::PresenceUpdated,
                p.tenant_id,
                p.agent_id.0,
                now_ms(),
                &json!({"presence": presence}),
            )
        }))
    }

    /// An event failed for `give_up_ms`: its endpoint is paused, and the
    /// tenant's admins hear of it.
    async fn pause(&self, tenant: TenantId, id: WebhookId, error: &str) {
        let reason = format!(
            "failing for over {} hours: {error}",
            self.give_up_ms / HOUR_MS
        );
        match self
            .store
            .pause_webhook(tenant, id, &reason, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return, // paused already (or gone)
            Err(err) => {
                return tracing::warn!(%err, webhook = %id, "cannot pause a failing webhook")
            }
        }
        self.forget(tenant);
        tracing::warn!(webhook = %id, %tenant, %reason, "webhook endpoint paused");
        let admins = match self.agent_store.agents(tenant).await {
            Ok(agents) => agents
                .into_iter()
                .filter(|a| a.role == Role::Admin && !a.disabled)
                .map(|a| a.id)
                .collect::<Vec<_>>(),
            Err(err) => return tracing::warn!(%err, "cannot tell the admins of a paused webhook"),
        };
        if admins.is_empty() {
            return;
        }
        self.events
            .publish(Published {
                tenant_id: tenant,
                event: Event::WebhookPaused {
                    webhook: id,
                    reason,
                },
                visitor_room: None,
                agents: Agents::Only { ids: admins },
            })
            .await;
    }
}

#[async_trait]
impl Handler for WebhookService {
    async fn deliver(&self, row: &OutboxRow) -> Delivery {
        self.attempt(row).await.0
    }

    async fn attempt(&self, row: &OutboxRow) -> (Delivery, Option<Answer>) {
        let (delivery, answer) = self.try_once(row).await;
        let outcome = match (&delivery, &answer) {
            (Delivery::Sent(_), _) => {
                self.metrics
                    .webhook_delivery_seconds
                    .observe((now_ms() - row.created_at_ms).max(0) as f64 / 1000.0);
                Some("delivered")
            }
            (Delivery::Failed(_), _) => Some("failed"),
            // A POST's last failure pauses the endpoint.
            (Delivery::Dropped(_), Some(_)) => Some("gave_up"),
            (Delivery::Dropped(_), None) => Some("dropped"),
            // Not tried: the endpoint's settings could not be read, or no
            // HTTP client.
            (Delivery::Later(_), _) => None,
        };
        if let Some(outcome) = outcome {
            self.metrics
                .webhook_attempts
                .with_label_values(&[outcome])
                .inc();
        }
        (delivery, answer)
    }

    /// Exponential backoff with jitter from `retry_base_ms`, at most a
    /// minute apart in the event's first hour and ten minutes after, and
    /// the last try when `give_up_ms` have passed.
    fn retry_at(
        &self,
        row: &OutboxRow,
        now_ms: i64,
        retry_base_ms: i64,
        jitter: f64,
    ) -> Option<i64> {
        Some(next_try_at(
            row.created_at_ms,
            row.attempts,
            now_ms,
            retry_base_ms,
            jitter,
            self.give_up_ms,
        ))
    }
}

impl WebhookService {
    /// One delivery of a row: the endpoint's POST, or why there is none.
    async fn try_once(&self, row: &OutboxRow) -> (Delivery, Option<Answer>) {
        let Some(id) = row.target.map(WebhookId) else {
            return (
                Delivery::Dropped("a webhook row without its endpoint".into()),
                None,
            );
        };
        let endpoint = match self.endpoints(row.tenant_id).await {
            Ok(endpoints) => endpoints.iter().find(|w| w.id == id).cloned(),
            Err(err) => {
                tracing::warn!(%err, "cannot read a webhook endpoint; its delivery waits");
                return (Delivery::Later(now_ms() + 5_000), None);
            }
        };
        let Some(endpoint) = endpoint else {
            return (Delivery::Dropped("the endpoint was deleted".into()), None);
        };
        if !endpoint.enabled {
            return (Delivery::Dropped("the endpoint is disabled".into()), None);
        }
        let Some(sender) = &self.sender else {
            return (Delivery::Later(now_ms() + LATER_CAP_MS), None);
        };
        let event_id = event_id(&row.payload).unwrap_or_else(|| row.id.to_string());
        let posted = sender
            .post(
                endpoint.url.as_str(),
                &endpoint.secret,
                &event_id,
                &row.payload,
                now_ms(),
            )
            .await;
        if posted.delivered {
            return (Delivery::Sent(None), Some(posted.answer));
        }
        let error = posted.error.unwrap_or_else(|| "failed".into());
        if now_ms() - row.created_at_ms >= self.give_up_ms {
            self.pause(row.tenant_id, id, &error).await;
            return (Delivery::Dropped(error), Some(posted.answer));
        }
        (Delivery::Failed(error), Some(posted.answer))
    }
}

/// When an event created at `created_ms` whose `attempts`-th try (from 0)
/// just failed at `now_ms` is tried again: `base * 2^attempts`, at most a
/// minute in its first hour and ten minutes after, between half and all of
/// it (jitter), and never after `created_ms + give_up_ms` (its last try).
fn next_try_at(
    created_ms: i64,
    attempts: i64,
    now_ms: i64,
    base_ms: i64,
    jitter: f64,
    give_up_ms: i64,
) -> i64 {
    let cap = if now_ms - created_ms < HOUR_MS {
        FIRST_HOUR_CAP_MS
    } else {
        LATER_CAP_MS
    };
    let exp = attempts.clamp(0, 30) as u32;
    let full = base_ms.saturating_mul(1i64 << exp).min(cap);
    let wait = (full as f64 * (0.5 + jitter.clamp(0.0, 1.0) / 2.0)) as i64;
    let last = created_ms.saturating_add(give_up_ms);
    (now_ms + wait.max(1)).min(last.max(now_ms))
}

/// The room a visitor's first message created, as it was created.
fn first_room(m: &Message) -> Room {
    Room {
        id: m.conversation_id,
        tenant_id: m.tenant_id,
        kind: RoomKind::Visitor,
        channel_id: m.channel_id,
        name: None,
        state: RoomState::Queued,
        assignee: None,
        created_at_ms: m.sent_at_ms,
        queued_at_ms: Some(m.sent_at_ms),
        last_seq: m.seq,
        members: vec![crate::domain::Member {
            id: m.conversation_id.0,
            kind: RoomKind::Visitor,
        }],
        labels: Vec::new(),
        rating: None,
        prechat: None,
        verified: false,
        blocked: false,
    }
}

/// One event's rows, one per target that wants it: one body (one event id).
fn event_rows(
    targets: &Targets,
    kind: EventType,
    tenant: TenantId,
    key: Uuid,
    now: i64,
    data: &(impl serde::Serialize + ?Sized),
) -> Vec<NewOutbox> {
    let wanted: Vec<WebhookId> = targets
        .iter()
        .filter(|(_, filter)| filter.wants(kind))
        .map(|(id, _)| *id)
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let event_id = format!("evt_{}", Uuid::now_v7().simple());
    let body = crate::wire::webhook::event_body(&event_id, kind, now, tenant, data);
    wanted
        .into_iter()
        .map(|webhook| NewOutbox {
            order_key: Some(format!("{webhook}:{key}")),
            target: Some(webhook.0),
            ..NewOutbox::new(KIND, tenant, body.clone(), now)
        })
        .collect()
}

/// The event id a row's body carries.
fn event_id(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
    }
    serde_json::from_str::<Head>(payload).ok().map(|h| h.id)
}

fn parse_events(raw: Option<&[String]>) -> Result<EventFilter, ServiceError> {
    let raw = raw.ok_or_else(|| ServiceError::field("events", "events is required"))?;
    EventFilter::parse(raw).map_err(|m| ServiceError::field("events", m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_a_minute_in_the_first_hour_then_ten_and_stop_at_the_give_up_time() {
        const DAY: i64 = 86_400_000;
        // Doubling from the base, within the jitter.
        assert_eq!(next_try_at(0, 0, 1_000, 5_000, 1.0, DAY), 6_000);
        assert_eq!(next_try_at(0, 2, 1_000, 5_000, 1.0, DAY), 21_000);
        assert_eq!(next_try_at(0, 2, 1_000, 5_000, 0.0, DAY), 11_000);
        // At most a minute apart in the first hour...
        assert_eq!(next_try_at(0, 20, 600_000, 5_000, 1.0, DAY), 660_000);
        // ...ten minutes after it...
        let later = 2 * HOUR_MS;
        assert_eq!(next_try_at(0, 20, later, 5_000, 1.0, DAY), later + 600_000);
        assert_eq!(next_try_at(0, 20, later, 5_000, 0.0, DAY), later + 300_000);
        // ...and the last try when the give-up time comes.
        assert_eq!(next_try_at(0, 40, DAY - 1_000, 5_000, 1.0, DAY), DAY);
        assert_eq!(next_try_at(0, 40, DAY + 5, 5_000, 1.0, DAY), DAY + 5);
    }

    #[test]
    fn one_event_has_one_body_and_id_for_every_endpoint_that_wants_it() {
        let a = WebhookId::new();
        let b = WebhookId::new();
        let c = WebhookId::new();
        let targets: Targets = vec![
            (a, EventFilter::All),
            (b, EventFilter::Only(vec![EventType::MessageCreated])),
            (c, EventFilter::Only(vec![EventType::ConversationClosed])),
        ]
        .into();
        let tenant = TenantId::new();
        let key = Uuid::now_v7();
        let rows = event_rows(
            &targets,
            EventType::MessageCreated,
            tenant,
            key,
            5,
            &json!({}),
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].payload, rows[1].payload);
        assert_eq!(rows[0].target, Some(a.0));
        assert_eq!(rows[1].order_key, Some(format!("{b}:{key}")));
        let body: Value = serde_json::from_str(&rows[0].payload).unwrap();
        assert_eq!(body["type"], "message.created");
        assert_eq!(
            event_id(&rows[0].payload).unwrap(),
            body["id"].as_str().unwrap()
        );
    }
}
