//! Agent presence (agent-api.md, "Presence"): the state each agent chose,
//! and whether it has a live event socket on any instance. Every change is
//! published to the tenant's agents as `chatd_presence_updated`.

use std::sync::Arc;

use super::error::{Missing, ServiceError};
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::presence::parse_status;
use crate::domain::time::{now_ms, now_us};
use crate::domain::{AgentId, AgentPresence, Event, LivePresence, PresenceState, Published};
use crate::presence::PresenceKey;

pub struct PresenceService {
    agent_store: Arc<dyn crate::store::AgentStore>,
    channel_store: Arc<dyn crate::store::ChannelStore>,
    presence: Arc<crate::presence::Presence>,
    router: super::routing::RouterHandle,
    events: Events,
    /// `Config::hours_clock_offset_ms`.
    hours_offset_ms: i64,
    /// `presence.updated` for the tenant's webhooks.
    webhooks: Arc<super::webhooks::WebhookService>,
}

fn unknown_user() -> ServiceError {
    ServiceError::NotFound(Missing::User)
}

/// A presence an agent sets: its state, and its status text (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub state: PresenceState,
    pub status: Option<String>,
}

impl PresenceChange {
    /// From the request's words: 400 naming `state` or `status` when bad.
    pub fn parse(state: &str, status: Option<&str>) -> Result<PresenceChange, ServiceError> {
        let state = PresenceState::parse(state).ok_or_else(|| {
            ServiceError::field(
                "state",
                "state must be available, away, unavailable or invisible",
            )
        })?;
        let status = status
            .map(parse_status)
            .transpose()
            .map_err(|m| ServiceError::field("status", m))?;
        Ok(PresenceChange { state, status })
    }
}

impl PresenceService {
    pub fn new(parts: &Parts, webhooks: Arc<super::webhooks::WebhookService>) -> PresenceService {
        PresenceService {
            webhooks,
            agent_store: parts.store.clone(),
            channel_store: parts.store.clone(),
            presence: parts.presence.clone(),
            router: parts.router.clone(),
            events: parts.events(),
            hours_offset_ms: parts.config.hours_clock_offset_ms,
        }
    }

    /// The bus came back: this instance claims its sessions' presence
    /// again (Redis may have restarted empty), then tells each tenant of
    /// its agents connected here.
    pub async fn resync(&self) {
        self.presence.restore().await;
        for (agent, tenant) in self.presence.local_agents() {
            self.socket_changed(tenant, agent).await;
        }
    }

    /// The presences of these agents of the caller's tenant (all when empty).
    pub async fn list(
        &self,
        caller: &Caller,
        ids: &[AgentId],
    ) -> Result<Vec<LivePresence>, ServiceError> {
        let presences = self.agent_store.presences(caller.tenant(), ids).await?;
        Ok(self.live(presences).await)
    }

    pub async fn get(&self, caller: &Caller, id: AgentId) -> Result<LivePresence, ServiceError> {
        let presences = self.agent_store.presences(caller.tenant(), &[id]).await?;
        self.live(presences).await.pop().ok_or_else(unknown_user)
    }

    /// `PUT /users/<uuid>/presences`: for oneself, or any agent of the tenant by an admin.
    pub async fn set(
        &self,
        caller: &Caller,
        id: AgentId,
        change: PresenceChange,
    ) -> Result<(), ServiceError> {
        let PresenceChange { state, status } = change;
        if id != caller.id() && !caller.is_admin() {
            return Err(ServiceError::Forbidden(
                "only an admin may set another agent's presence",
            ));
        }
        let then = self.webhooks.presence_rows(caller.tenant()).await;
        let presence = self
            .agent_store
            .set_presence(
                caller.tenant(),
                id,
                state,
                status.as_deref(),
                now_ms(),
                then.clone(),
            )
            .await?
            .ok_or_else(unknown_user)?;
        if then.is_some() {
            self.webhooks.wake();
        }
        if presence.state == PresenceState::Available {
            self.router.kick(presence.tenant_id);
        }
        self.publish(presence).await;
        Ok(())
    }

    /// An agent's event socket opened or closed on this instance: tell the
    /// tenant whether it is connected now (on any instance).
    pub async fn socket_changed(&self, tenant: crate::domain::TenantId, id: AgentId) {
        self.router.kick(tenant);
        if let Ok(Some(presence)) = self
            .agent_store
            .presences(tenant, &[id])
            .await
            .map(|mut p| p.pop())
        {
            self.publish(presence).await;
        }
    }

    /// Whether some agent of the tenant is connected and `available` (an
    /// invisible agent counts as unavailable) while the channel's business
    /// hours have it open, as the channel's visitors see it.
    pub async fn availability(
        &self,
        channel: &crate::domain::Channel,
    ) -> Result<Event, ServiceError> {
        let (available, as_of_us) = self.agents_available(channel.tenant_id).await?;
        Ok(channel_availability(
            channel,
            available,
            as_of_us,
            self.hours_offset_ms,
        ))
    }

    /// Whether a visitor of `channel` writing now finds it unavailable
    /// (outside its hours, or no agent available).
    pub async fn unavailable(
        &self,
        channel: &crate::domain::Channel,
    ) -> Result<bool, ServiceError> {
        if !channel.desk.open_at(now_ms() + self.hours_offset_ms) {
            return Ok(true);
        }
        Ok(!self.agents_available(channel.tenant_id).await?.0)
    }

    /// The answer, and when it was read: the clock is read first, so a
    /// later time means a read that saw every change completed before it.
    async fn agents_available(
        &self,
        tenant: crate::domain::TenantId,
    ) -> Result<(bool, i64), ServiceError> {
        let as_of_us = now_us();
        let available: Vec<PresenceKey> = self
            .agent_store
            .presences(tenant, &[])
            .await?
            .into_iter()
            .filter(|p| p.state == PresenceState::Available)
            .map(|p| PresenceKey::Agent(p.agent_id))
            .collect();
        if available.is_empty() {
            return Ok((false, as_of_us));
        }
        let online = self.presence.online(&available).await;
        Ok((online.contains(&true), as_of_us))
    }

    /// Tells every visitor of the tenant's channels whether someone is there.
    async fn publish_availability(
        &self,
        tenant: crate::domain::TenantId,
    ) -> Result<(), ServiceError> {
        let (available, as_of_us) = self.agents_available(tenant).await?;
        for channel in self.channel_store.channels(tenant).await? {
            if !channel.connected {
                continue;
            }
            self.events
                .publish(Published {
                    event: channel_availability(
                        &channel,
                        available,
                        as_of_us,
                        self.hours_offset_ms,
                    ),
                    tenant_id: tenant,
                    visitor_room: None,
                    agents: Agents::Nobody,
                })
                .await;
        }
        Ok(())
    }

    async fn publish(&self, presence: AgentPresence) {
        let tenant = presence.tenant_id;
        if let Err(err) = self.publish_availability(tenant).await {
            tracing::warn!(%err, "cannot tell visitors whether agents are available");
        }
        let Some(presence) = self.live(vec![presence]).await.pop() else {
            return;
        };
        self.events
            .publish(Published {
                event: Event::PresenceChanged { presence },
                tenant_id: tenant,
                visitor_room: None,
                agents: Agents::Tenant,
            })
            .await;
    }

    /// The presences with whether each agent is connected now.
    async fn live(&self, presences: Vec<AgentPresence>) -> Vec<LivePresence> {
        let keys: Vec<PresenceKey> = presences
            .iter()
            .map(|p| PresenceKey::Agent(p.agent_id))
            .collect();
        let connected = if keys.is_empty() {
            Vec::new()
        } else {
            self.presence.online(&keys).await
        };
        presences
            .into_iter()
            .zip(connected)
            .map(|(presence, connected)| LivePresence {
                presence,
                connected,
            })
            .collect()
    }
}

/// The channel's availability event: agents `available` (read at
/// `as_of_us`), unless its business hours have it closed, then with when it
/// opens. The hours are read on a clock `hours_offset_ms` ahead
/// (`Config::hours_clock_offset_ms`); `back_at` is in real time.
pub fn channel_availability(
    channel: &crate::domain::Channel,
    available: bool,
    as_of_us: i64,
    hours_offset_ms: i64,
) -> Event {
    let now = as_of_us.div_euclid(1000) + hours_offset_ms;
    let open = channel.desk.open_at(now);
    Event::Availability {
        channel_id: channel.id,
        available: available && open,
        as_of_us,
        back_at_ms: if open {
            None
        } else {
            channel.desk.back_at(now).map(|at| at - hours_offset_ms)
        },
    }
}
