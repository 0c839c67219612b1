//! Channel administration: admins of a tenant manage its channels only.

use std::sync::Arc;

use super::error::{Missing, ServiceError};
use super::visitor::VisitorService;
use super::{Caller, Events, Parts};
use crate::domain::{time::now_ms, Assignment, Channel, ChannelId, OriginPattern};

/// Channel settings as an admin sends them; `None` keeps the value
/// (`image_url: Some(None)` clears it).
#[derive(Default)]
pub struct ChannelSettings {
    pub name: Option<String>,
    pub image_url: Option<Option<String>>,
    pub allowed_origins: Option<Vec<OriginPattern>>,
    /// `Some(None)` clears it.
    pub welcome_message: Option<Option<String>>,
    /// `Some(None)` clears it.
    pub color: Option<Option<String>>,
    pub assignment: Option<Assignment>,
    pub max_open_per_agent: Option<u32>,
    /// `Some(None)`: always open.
    pub business_hours: Option<Option<crate::domain::BusinessHours>>,
    /// `Some(None)` clears it.
    pub away_message: Option<Option<String>>,
    pub prechat: Option<crate::domain::PrechatForm>,
    /// `Some(None)`: never auto-close.
    pub auto_close_hours: Option<Option<u32>>,
    pub email_fallback: Option<bool>,
    /// The application that takes new conversations first; `Some(None)`
    /// clears it.
    pub bot: Option<Option<crate::domain::AgentId>>,
}

impl ChannelSettings {
    /// Applies the settings given; absent ones keep their value.
    fn apply(self, channel: &mut Channel) {
        if let Some(name) = self.name {
            channel.name = name;
        }
        if let Some(image) = self.image_url {
            channel.image_url = image;
        }
        if let Some(origins) = self.allowed_origins {
            channel.allowed_origins = origins;
        }
        if let Some(welcome) = self.welcome_message {
            channel.look.welcome_message = welcome;
        }
        if let Some(color) = self.color {
            channel.look.color = color;
        }
        if let Some(assignment) = self.assignment {
            channel.routing.assignment = assignment;
        }
        if let Some(max) = self.max_open_per_agent {
            channel.routing.max_open_per_agent = max;
        }
        if let Some(hours) = self.business_hours {
            channel.desk.business_hours = hours;
        }
        if let Some(away) = self.away_message {
            channel.desk.away_message = away;
        }
        if let Some(prechat) = self.prechat {
            channel.desk.prechat = prechat;
        }
        if let Some(hours) = self.auto_close_hours {
            channel.desk.auto_close_hours = hours;
        }
        if let Some(on) = self.email_fallback {
            channel.look.email_fallback = on;
        }
        if let Some(bot) = self.bot {
            channel.routing.bot = bot;
        }
    }
}

pub struct ChannelService {
    channel_store: Arc<dyn crate::store::ChannelStore>,
    /// A `bot` setting names a live application of the tenant.
    application_store: Arc<dyn crate::store::ApplicationStore>,
    message_store: Arc<dyn crate::store::MessageStore>,
    cache: Arc<crate::cache::ChannelCache>,
    router: super::routing::RouterHandle,
    /// Tells visitors their pending replies failed.
    visitor: Arc<VisitorService>,
    events: Events,
}

impl ChannelService {
    pub fn new(
        parts: &Parts,
        cache: Arc<crate::cache::ChannelCache>,
        visitor: Arc<VisitorService>,
    ) -> ChannelService {
        ChannelService {
            channel_store: parts.store.clone(),
            application_store: parts.store.clone(),
            message_store: parts.store.clone(),
            cache,
            router: parts.router.clone(),
            visitor,
            events: parts.events(),
        }
    }

    /// The caller's channel, or 404.
    pub async fn get(&self, caller: &Caller, id: ChannelId) -> Result<Channel, ServiceError> {
        caller.require_admin()?;
        self.channel_store
            .channel(caller.tenant(), id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Channel))
    }

    pub async fn connect(
        &self,
        caller: &Caller,
        settings: ChannelSettings,
    ) -> Result<Channel, ServiceError> {
        caller.require_admin()?;
        let name = settings
            .name
            .clone()
            .ok_or_else(|| ServiceError::field("name", "name is required"))?;
        self.check_bot(caller, &settings).await?;
        let mut channel = Channel {
            id: ChannelId::new(),
            tenant_id: caller.tenant(),
            name,
            image_url: None,
            allowed_origins: Vec::new(),
            connected: true,
            created_at_ms: now_ms(),
            look: Default::default(),
            routing: Default::default(),
            desk: Default::default(),
        };
        settings.apply(&mut channel);
        self.channel_store.insert_channel(&channel).await?;
        self.router.kick(channel.tenant_id);
        Ok(channel)
    }

    /// Visitors of the channel get 404 from now on, and the agents' replies
    /// that never reached them become FAILED.
    pub async fn disconnect(&self, caller: &Caller, id: ChannelId) -> Result<(), ServiceError> {
        let mut channel = self.get(caller, id).await?;
        channel.connected = false;
        self.channel_store.update_channel(&channel).await?;
        self.cache.evict(channel.id);
        self.changed(&channel).await;
        let failed = self
            .message_store
            .fail_pending(channel.tenant_id, channel.id)
            .await?;
        for message in failed {
            self.visitor.publish_update(message).await;
        }
        Ok(())
    }

    /// A `bot` setting must name an application of the caller's tenant
    /// that is not revoked (400 naming `bot` otherwise; nothing changes).
    async fn check_bot(
        &self,
        caller: &Caller,
        settings: &ChannelSettings,
    ) -> Result<(), ServiceError> {
        let Some(Some(bot)) = settings.bot else {
            return Ok(());
        };
        let live = self
            .application_store
            .application(caller.tenant(), bot)
            .await?
            .is_some_and(|a| !a.is_revoked());
        if live {
            Ok(())
        } else {
            Err(ServiceError::field(
                "bot",
                "bot must be null or the uuid of one of the tenant's applications that is not revoked",
            ))
        }
    }

    /// Tells the channel's live visitor sessions, on every instance.
    async fn changed(&self, channel: &Channel) {
        self.events
            .publish(crate::domain::Published {
                event: crate::domain::Event::ChannelChanged {
                    channel: channel.clone(),
                },
                tenant_id: channel.tenant_id,
                visitor_room: None,
                agents: crate::domain::Agents::Nobody,
            })
            .await;
    }

    /// The tenant's channels' ids and names, for any agent (the console's
    /// inbox filter).
    pub async fn names(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(crate::domain::ChannelId, String)>, ServiceError> {
        Ok(self
            .channel_store
            .channels(caller.tenant())
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect())
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<Channel>, ServiceError> {
        caller.require_admin()?;
        Ok(self.channel_store.channels(caller.tenant()).await?)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: ChannelId,
        settings: ChannelSettings,
    ) -> Result<Channel, ServiceError> {
        let mut channel = self.get(caller, id).await?;
        self.check_bot(caller, &settings).await?;
        settings.apply(&mut channel);
        self.channel_store.update_channel(&channel).await?;
        self.cache.evict(channel.id);
        self.changed(&channel).await;
        self.router.kick(channel.tenant_id);
        Ok(channel)
    }
}
