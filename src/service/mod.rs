//! Services: where the rules live. Handlers (HTTP, the STOMP socket, the
//! agent socket, the console) parse their input, call one service function
//! and render its result; only services call the Store and publish events.
//!
//! - [`visitor`]: the visitor side (tokens, sending, delivery and read marks);
//!   [`visitor_tokens`]: its token rules (authenticate, resume tokens).
//! - [`agents`]: who the caller is (roles read from the store on every call,
//!   so a demotion or a disabled agent applies at once), login, agent admin.
//! - [`applications`]: applications (bots): created with a token shown
//!   once, listed, revoked at once (admins); they act through the agent
//!   API with their scopes, hand conversations back to the queue, and take
//!   a channel's new conversations first when it names one as its `bot`.
//! - [`channels`]: channel administration.
//! - [`canned`]: canned responses (admins write them, every agent uses them).
//! - [`rooms`]: rooms, membership (agent rooms' members added, removed,
//!   leaving), the queue and its answer, read state,
//!   reading a queued room before answering it, supervision (admins: every
//!   visitor room, assigning any), the system notices.
//! - [`messages`]: listing, searching, posting (with mentions), editing, reactions.
//! - [`identity`]: identified visitors, a visitor's conversations, blocking.
//! - [`reports`]: a tenant's figures over a period (admins: any channel
//!   and agent; an agent: its own).
//! - [`rights`]: data rights: a visitor's export and erasure, retention,
//!   the audit log.
//! - [`labels`]: a tenant's labels and the labels on visitor rooms.
//! - [`presence`]: agents' chosen states and their live sockets.
//! - [`typing`]: typing indicators both ways, throttled per sender.
//! - [`routing`]: round robin, giving waiting visitor rooms to free agents.
//! - [`sessions`]: live sockets joining and leaving the hub, their
//!   presence claims, and telling the agents who should know.
//! - [`email`]: email to visitors (offline fallback, transcript, signed
//!   links), sent by the outbox worker (`crate::outbox`).
//! - [`webhooks`]: a tenant's webhook endpoints (admins), the rows of their
//!   events (written by the other services in their changes' own
//!   transactions) and their signed, ordered delivery through the outbox.
//! - [`setup`]: first-start setup (first tenant, admin, demo channel, the
//!   stored secrets) and the operator's commands.
//!
//! Every call is scoped to the caller's tenant; a foreign id is "not found".
//! Events are published only after the store has committed.
//!
//! Services take typed requests and answer domain values, or a
//! [`ServiceError`] that the doors turn into their reply in one place
//! (`crate::error`). [`Services::new`] builds each service once from the
//! wiring's [`Parts`], handing it only what it uses: the store traits it
//! calls (`Arc<dyn RoomStore>`, ...), its settings, and the other services
//! it asks (rooms, presence, visitor), shared, never rebuilt per call.

use std::sync::{Arc, Weak};

use crate::auth::Tokens;
use crate::cache::ChannelCache;
use crate::config::Config;
use crate::domain::{Agent, AgentId, Published, Role, TenantId};
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::store::{SettingsStore, Store};
use crate::wire::wazo::ServerId;

pub use error::{ServiceError, ServiceResult};

/// Why a call that needs an admin is refused.
pub const ADMIN_ONLY: &str = "this call needs an admin token";

pub mod agents;
pub mod applications;
pub mod attachments;
pub mod canned;
pub mod channels;
pub mod email;
pub mod error;
pub mod identity;
pub mod labels;
pub mod messages;
pub mod presence;
pub mod reports;
pub mod rights;
pub mod rooms;
pub mod routing;
pub mod sessions;
pub mod setup;
pub mod typing;
pub mod visitor;
pub mod visitor_tokens;
pub mod webhooks;

/// What the wiring hands [`Services::new`], once: each service takes from
/// it only what it uses (the store traits it calls, its settings), and no
/// service holds it.
pub struct Parts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub server: ServerId,
    pub presence: Arc<Presence>,
    pub metrics: Arc<Metrics>,
    pub limits: Arc<Limits>,
    pub tokens: Arc<Tokens>,
    /// Kicks this instance's round robin.
    pub router: routing::RouterHandle,
    /// Uploaded files' bytes and signed URLs.
    pub files: Arc<crate::files::Files>,
    /// Sends email (`None`: no SMTP configured, the email features are off).
    pub mailer: Option<Arc<dyn crate::outbox::mail::Mailer>>,
    /// What email links are signed with (derived further by the email service).
    pub link_secret: Vec<u8>,
    /// The address visitors reach this server at, for links in emails.
    pub public_url: String,
}

impl Parts {
    fn events(&self) -> Events {
        Events {
            hub: self.hub.clone(),
        }
    }
}

/// Where services publish, after a commit.
#[derive(Clone)]
pub struct Events {
    hub: Arc<Hub>,
}

impl Events {
    /// Publishes after a commit. The bus is at most once: a lost event is
    /// recovered from the store, so a failure is logged, not returned.
    pub async fn publish(&self, event: Published) {
        if let Err(err) = self.hub.publish(event).await {
            tracing::warn!(%err, "stored but not published; clients catch up from the store");
        }
    }
}

/// Every service, built once by the wiring.
pub struct Services {
    /// This deployment's id, for the wazo shapes the doors build.
    pub server: ServerId,
    /// Signs attachments' URLs in the shapes the doors build.
    pub signer: crate::files::Signer,
    pub visitor: Arc<visitor::VisitorService>,
    pub agents: agents::AgentService,
    /// Applications (bots): admins create, list and revoke them.
    pub applications: applications::ApplicationService,
    pub channels: channels::ChannelService,
    pub rooms: Arc<rooms::RoomService>,
    pub messages: messages::MessageService,
    pub attachments: attachments::AttachmentService,
    pub labels: labels::LabelService,
    /// Blocking visitors, channels' identity secrets.
    pub identity: identity::IdentityService,
    pub canned: canned::CannedService,
    /// Data rights: exports, erasures, retention, the audit log.
    pub rights: rights::RightsService,
    /// Reports: a tenant's figures over a period.
    pub reports: reports::ReportService,
    pub presence: Arc<presence::PresenceService>,
    pub typing: Arc<typing::TypingService>,
    /// Sockets joining and leaving the hub and presence.
    pub sessions: sessions::SessionService,
    pub email: Arc<email::EmailService>,
    /// Webhook endpoints (admins) and their events' delivery.
    pub webhooks: Arc<webhooks::WebhookService>,
    /// This instance's outbox worker (it stops when this is dropped).
    pub outbox: Arc<crate::outbox::Worker>,
    /// Round robin; its task stops when the services are dropped.
    _router: Arc<routing::Router>,
    settings: Arc<dyn SettingsStore>,
    hub: Arc<Hub>,
}

impl Services {
    /// Builds each service with its own dependencies, and starts the
    /// router that `parts.router` kicks and the tasks that follow presence.
    pub fn new(parts: Parts, router: routing::RouterInbox) -> Services {
        let channel_cache = Arc::new(ChannelCache::default());
        let webhooks = Arc::new(webhooks::WebhookService::new(&parts));
        let rooms = Arc::new(rooms::RoomService::new(&parts, webhooks.clone()));
        let presence = Arc::new(presence::PresenceService::new(&parts, webhooks.clone()));
        let visitor = Arc::new(visitor::VisitorService::new(
            &parts,
            channel_cache.clone(),
            rooms.clone(),
            presence.clone(),
        ));
        let round_robin = Arc::new(routing::Router::new(&parts, rooms.clone()));
        routing::start(Arc::downgrade(&round_robin), router);
        if let Some(lapses) = parts.presence.lapses() {
            tokio::spawn(tell_lapses(
                Arc::downgrade(&presence),
                Arc::downgrade(&rooms),
                lapses,
            ));
        }
        tokio::spawn(after_resync(Arc::downgrade(&presence), parts.hub.resyncs()));
        let email = Arc::new(email::EmailService::new(
            &parts,
            parts.mailer.clone(),
            channel_cache.clone(),
        ));
        let mut handlers: std::collections::HashMap<&'static str, Arc<dyn crate::outbox::Handler>> =
            std::collections::HashMap::new();
        handlers.insert(email::KIND, email.clone());
        handlers.insert(webhooks::KIND, webhooks.clone());
        let outbox = crate::outbox::Worker::new(
            parts.store.clone(),
            handlers,
            std::time::Duration::from_millis(parts.config.outbox_poll_ms),
            parts.config.outbox_retry_ms as i64,
            parts.config.outbox_concurrency,
            i64::try_from(parts.config.outbox_lease_ms).unwrap_or(crate::outbox::LEASE_MS),
        );
        email.attach_worker(&outbox);
        webhooks.attach_worker(&outbox);
        outbox.start();
        Services {
            server: parts.server,
            signer: parts.files.signer().clone(),
            agents: agents::AgentService::new(&parts),
            applications: applications::ApplicationService::new(&parts, rooms.clone()),
            channels: channels::ChannelService::new(&parts, channel_cache, visitor.clone()),
            messages: messages::MessageService::new(&parts, rooms.clone(), email.clone()),
            attachments: attachments::AttachmentService::new(&parts, rooms.clone()),
            labels: labels::LabelService::new(&parts, rooms.clone()),
            identity: identity::IdentityService::new(&parts, rooms.clone(), visitor.blocks.clone()),
            canned: canned::CannedService::new(&parts),
            rights: rights::RightsService::new(
                &parts,
                visitor.erasures.clone(),
                rooms.clone(),
                webhooks.clone(),
            ),
            reports: reports::ReportService::new(&parts),
            typing: typing::TypingService::new(&parts, rooms.clone()),
            sessions: sessions::SessionService::new(&parts, rooms.clone(), presence.clone()),
            visitor,
            rooms,
            presence,
            email,
            webhooks,
            outbox,
            _router: round_robin,
            settings: parts.store.clone(),
            hub: parts.hub.clone(),
        }
    }
}

impl Services {
    /// Readiness: whether the database and the bus answer (`None`), or why not.
    pub async fn readiness(&self) -> (Option<String>, Option<String>) {
        let database = self.settings.ping().await.err().map(|e| e.to_string());
        let bus = self.hub.bus().ping().await.err().map(|e| e.to_string());
        (database, bus)
    }
}

/// When an instance announces its agents a second time after the bus came back.
const RESYNC_ANNOUNCE_AGAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The bus came back after losing events: this instance claims its
/// sessions' presence again at once (Redis may have restarted empty), then
/// announces its agents, so every instance's visitors learn the
/// availability that changed meanwhile (each visitor session also rereads
/// it on the resync itself).
async fn after_resync(
    presence: Weak<presence::PresenceService>,
    mut resyncs: tokio::sync::watch::Receiver<u64>,
) {
    while resyncs.changed().await.is_ok() {
        // Twice: the other instances resubscribe on their own schedule, and
        // one that comes back after the first announcement (or reread
        // availability before these claims were restored) hears the second.
        for pass in 0..2 {
            if pass > 0 {
                tokio::time::sleep(RESYNC_ANNOUNCE_AGAIN).await;
            }
            let Some(presence) = presence.upgrade() else {
                return;
            };
            presence.resync().await;
        }
    }
}

/// Sessions that died with their instance: their agents or visitors are
/// offline now, and the tenant hears of it as if they had left.
async fn tell_lapses(
    presence: Weak<presence::PresenceService>,
    rooms: Weak<rooms::RoomService>,
    mut lapses: tokio::sync::mpsc::UnboundedReceiver<(crate::presence::PresenceKey, TenantId)>,
) {
    use crate::presence::PresenceKey;
    while let Some((key, tenant)) = lapses.recv().await {
        match key {
            PresenceKey::Agent(agent) => {
                let Some(presence) = presence.upgrade() else {
                    return;
                };
                presence.socket_changed(tenant, agent).await;
            }
            PresenceKey::Conversation(room) => {
                let Some(rooms) = rooms.upgrade() else { return };
                rooms.visitor_connection(tenant, room).await;
            }
        }
    }
}

/// An authenticated agent, or application, as the store has it now.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: Agent,
    /// An application's scopes (read with its token on this call); `None`
    /// for a person, whom scopes do not limit.
    pub scopes: Option<crate::domain::application::Scopes>,
}

impl Caller {
    /// A person (an agent or admin).
    pub fn person(agent: Agent) -> Caller {
        Caller {
            agent,
            scopes: None,
        }
    }

    /// An application acting through the agent API.
    pub fn application(agent: Agent, scopes: crate::domain::application::Scopes) -> Caller {
        Caller {
            agent,
            scopes: Some(scopes),
        }
    }

    /// `Forbidden` unless the caller is an admin now.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(ADMIN_ONLY))
        }
    }

    /// Whether the caller is an application (a bot).
    pub fn is_application(&self) -> bool {
        self.scopes.is_some()
    }

    /// An application must hold `scope` (403 `missing-scope`); people pass.
    pub fn require_scope(
        &self,
        scope: crate::domain::application::Scope,
    ) -> Result<(), ServiceError> {
        match &self.scopes {
            Some(scopes) if !scopes.contains(scope) => {
                Err(ServiceError::MissingScope(scope.as_str()))
            }
            _ => Ok(()),
        }
    }

    /// `NotForApplications(why)` when the caller is an application.
    pub fn require_person(&self, why: &'static str) -> Result<(), ServiceError> {
        if self.is_application() {
            Err(ServiceError::NotForApplications(why))
        } else {
            Ok(())
        }
    }

    pub fn id(&self) -> AgentId {
        self.agent.id
    }

    pub fn tenant(&self) -> TenantId {
        self.agent.tenant_id
    }

    pub fn is_admin(&self) -> bool {
        self.agent.role == Role::Admin
    }
}
