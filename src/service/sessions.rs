//! Live sockets joining and leaving: the hub membership a socket reads its
//! events from, the presence claim that tells every instance it is
//! connected, and telling the agents who should know. The socket code
//! (`ws::agent`, `ws::visitor`) calls these when a socket opens and when it
//! ends, and keeps the returned guard meanwhile.

use std::sync::Arc;

use super::{presence::PresenceService, rooms::RoomService, Caller, Parts};
use crate::bus::{BusError, Topic};
use crate::domain::{AgentId, ConversationId, TenantId};
use crate::hub::Membership;
use crate::presence::{Here, PresenceKey};
use crate::service::visitor::Visitor;

pub struct SessionService {
    hub: Arc<crate::hub::Hub>,
    presence: Arc<crate::presence::Presence>,
    /// Tells a visitor room's agents whether its visitor is connected.
    rooms: Arc<RoomService>,
    /// Tells the tenant whether an agent is connected.
    presences: Arc<PresenceService>,
}

/// An agent's event socket on this instance, while it lives: its claim of
/// presence. Dropped without [`SessionService::agent_closed`], the claim is
/// withdrawn and the tenant is not told.
pub struct AgentSocket {
    /// `None` for an application: it has no presence.
    here: Option<Here>,
    tenant: TenantId,
    agent: AgentId,
}

/// A visitor's socket on this instance, while it lives: its conversation's
/// claim of presence. Dropped without [`SessionService::visitor_left`], the
/// claim is withdrawn and the agents are not told.
pub struct VisitorSocket {
    here: Here,
    tenant: TenantId,
    conversation: ConversationId,
}

impl SessionService {
    pub fn new(
        parts: &Parts,
        rooms: Arc<RoomService>,
        presences: Arc<PresenceService>,
    ) -> SessionService {
        SessionService {
            hub: parts.hub.clone(),
            presence: parts.presence.clone(),
            rooms,
            presences,
        }
    }

    /// An agent's event socket opened: it joins the hub on its tenant's
    /// topic, and once its presence claim is visible to every instance
    /// (another instance's availability answer read after this one's must
    /// count this agent), the tenant is told it is connected.
    pub async fn agent_opened(
        &self,
        caller: &Caller,
    ) -> Result<(Membership, AgentSocket), BusError> {
        let (tenant, agent) = (caller.tenant(), caller.id());
        let membership = self.hub.join_agent(tenant, agent).await?;
        // An application receives its events but is never "connected": it
        // is not counted as an available agent anywhere.
        let here = if caller.is_application() {
            None
        } else {
            let here = self.presence.enter(PresenceKey::Agent(agent), tenant);
            self.presence.flush().await;
            self.presence().socket_changed(tenant, agent).await;
            Some(here)
        };
        Ok((
            membership,
            AgentSocket {
                here,
                tenant,
                agent,
            },
        ))
    }

    /// An agent's event socket ended. When the instance is stopping, the
    /// client reconnects to another instance at once and the claim stays
    /// until that instance renews it (or it lapses), so the tenant is never
    /// told the agent went offline in a rolling restart. Otherwise the
    /// tenant is told (connected stays true while another socket of the
    /// agent lives, here or elsewhere).
    pub async fn agent_closed(&self, socket: AgentSocket, instance_stopping: bool) {
        let AgentSocket {
            here,
            tenant,
            agent,
        } = socket;
        let Some(here) = here else { return };
        if instance_stopping {
            here.hand_over();
        } else {
            drop(here);
            self.presence.flush().await;
            self.presence().socket_changed(tenant, agent).await;
        }
    }

    /// A visitor's socket connected: it joins the hub on its conversation's
    /// and its channel's topics, and claims the conversation's presence;
    /// when it is the conversation's first socket on this instance, the
    /// room's agents are told (in the background) whether the visitor is
    /// connected.
    pub async fn visitor_joined(
        &self,
        visitor: &Visitor,
    ) -> Result<(Membership, VisitorSocket), BusError> {
        let (tenant, conversation) = (visitor.channel.tenant_id, visitor.claims.cv);
        let membership = self
            .hub
            .join_visitor(
                Topic::conversation(conversation),
                Topic::channel(visitor.channel.id),
            )
            .await?;
        let here = self
            .presence
            .enter(PresenceKey::Conversation(conversation), tenant);
        if here.first() {
            self.tell_agents(tenant, conversation, false);
        }
        let socket = VisitorSocket {
            here,
            tenant,
            conversation,
        };
        Ok((membership, socket))
    }

    /// A visitor's socket ended: when it was its conversation's last on this
    /// instance, the room's agents are told (in the background, once this
    /// instance's claim is withdrawn everywhere) whether the visitor is
    /// still connected elsewhere.
    pub fn visitor_left(&self, socket: VisitorSocket) {
        let VisitorSocket {
            here,
            tenant,
            conversation,
        } = socket;
        if here.leave() {
            self.tell_agents(tenant, conversation, true);
        }
    }

    /// The room's agents hear whether its visitor is connected now (on any
    /// instance), after `flush` has shared this instance's change if asked.
    fn tell_agents(&self, tenant: TenantId, conversation: ConversationId, flush: bool) {
        let (presence, rooms) = (self.presence.clone(), self.rooms.clone());
        tokio::spawn(async move {
            if flush {
                presence.flush().await;
            }
            rooms.visitor_connection(tenant, conversation).await;
        });
    }

    fn presence(&self) -> &PresenceService {
        &self.presences
    }
}
