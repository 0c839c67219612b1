//! Identified visitors, several conversations per visitor, and blocking
//! (desk-api.md, "Support desk"), as `VisitorService` methods for the
//! visitor's side and `IdentityService` for agents and admins.
//!
//! Every visitor conversation belongs to a visitor, its `VisitorKey`: the
//! identity id a site signed, or for an anonymous visitor the first
//! conversation of its chain (a conversation started from a resume token
//! with `new_conversation` belongs to the resumed one's visitor). The key
//! travels in the visitor and resume tokens and is stored with the
//! conversation's first message; listing, blocking and "the current
//! conversation" all go by it.

use std::sync::Arc;

use super::error::{Missing, ServiceError};
use super::visitor::{Visitor, VisitorService};
use super::{Caller, Events, Parts};
use crate::auth::{TokenKind, VisitorOwner};
use crate::domain::identity::{ClaimedIdentity, IdentitySecrets, VisitorKey};
use crate::domain::time::now_ms;
use crate::domain::{
    Channel, ChannelId, ConversationId, Event, LiveRoom, Message, Published, RoomKind, RoomState,
    RoomSummary,
};
use crate::store::IdentityStore;

/// Most conversations `/chatplugin.conversations` lists (newest first).
pub const MAX_LISTED_CONVERSATIONS: u32 = 50;

/// One of a visitor's conversations, as `/chatplugin.conversations` lists it.
pub struct VisitorConversation {
    pub id: ConversationId,
    pub state: RoomState,
    pub last_message: Option<Message>,
    /// Opens it (`/chatplugin.authenticate`).
    pub resume_token: String,
}

impl VisitorService {
    /// The channel's identity secrets (made on first use).
    pub(super) async fn channel_identity_secrets(
        &self,
        channel: &Channel,
    ) -> Result<IdentitySecrets, ServiceError> {
        self.identity_store
            .identity_secrets(channel.tenant_id, channel.id, &IdentitySecrets::generate())
            .await?
            .ok_or(ServiceError::NotFound(Missing::Channel))
    }

    /// 401 `identity-not-verified` unless one of the channel's secrets
    /// signed `identity` (the previous one during its grace period).
    pub(super) async fn verify_identity(
        &self,
        channel: &Channel,
        identity: &ClaimedIdentity,
    ) -> Result<VisitorOwner, ServiceError> {
        let secrets = self.channel_identity_secrets(channel).await?;
        let grace_ms =
            i64::try_from(self.identity_secret_grace.saturating_mul(1000)).unwrap_or(i64::MAX);
        if !secrets.verifies(identity, now_ms(), grace_ms) {
            return Err(ServiceError::IdentityNotVerified);
        }
        Ok(VisitorOwner {
            key: VisitorKey::identified(&identity.id),
            verified: true,
        })
    }

    /// Whose a conversation of the channel is, as stored (a conversation
    /// from before visitors had keys gets its own key stored now, so that
    /// the conversations started from it are listed with it); `claims`
    /// (the resume token's) for one not begun yet.
    pub(super) async fn owner_of(
        &self,
        channel: &Channel,
        conversation: ConversationId,
        claimed: VisitorOwner,
    ) -> Result<VisitorOwner, ServiceError> {
        match self
            .identity_store
            .conversation_visitor(channel.id, conversation)
            .await?
        {
            Some((Some(key), verified)) => Ok(VisitorOwner { key, verified }),
            Some((None, _)) => {
                let key = VisitorKey::anonymous(conversation);
                self.identity_store
                    .set_conversation_visitor(channel.tenant_id, conversation, &key, false)
                    .await?;
                Ok(VisitorOwner {
                    key,
                    verified: false,
                })
            }
            None => Ok(claimed),
        }
    }

    /// 403 `blocked` when an agent blocked this visitor on the channel.
    pub async fn refuse_blocked(
        &self,
        channel: ChannelId,
        key: &VisitorKey,
    ) -> Result<(), ServiceError> {
        if self
            .blocks
            .blocked(self.identity_store.as_ref(), channel, key)
            .await?
        {
            return Err(ServiceError::Blocked);
        }
        Ok(())
    }

    /// The newest conversation of a visitor on the channel, if any.
    pub(super) async fn current_conversation(
        &self,
        channel: &Channel,
        key: &VisitorKey,
    ) -> Result<Option<ConversationId>, ServiceError> {
        // `also` names an id no conversation has: only the key's are read.
        let found = self
            .identity_store
            .visitor_conversations(channel.id, key, ConversationId::new(), 1)
            .await?;
        Ok(found.first().map(|(id, _)| *id))
    }

    /// `/chatplugin.conversations`: the visitor's conversations on its
    /// channel, newest first (its own among them once begun), each with its
    /// last message and a resume token that opens it.
    pub async fn conversations(
        &self,
        visitor: &Visitor,
    ) -> Result<Vec<VisitorConversation>, ServiceError> {
        let channel = &visitor.channel;
        let key = visitor.claims.visitor_key();
        let found = self
            .identity_store
            .visitor_conversations(
                channel.id,
                &key,
                visitor.claims.cv,
                MAX_LISTED_CONVERSATIONS,
            )
            .await?;
        let owner = VisitorOwner {
            key,
            verified: visitor.claims.vf,
        };
        let mut items = Vec::with_capacity(found.len());
        for (id, state) in found {
            let last_message = self.history_tail(channel.scope(), id).await?;
            items.push(VisitorConversation {
                id,
                state,
                last_message,
                resume_token: self.resume_token_for(channel.id, id, Some(owner.clone())),
            });
        }
        Ok(items)
    }

    /// A resume token that keeps who the visitor is.
    pub(super) fn resume_token_for(
        &self,
        channel: ChannelId,
        conversation: ConversationId,
        owner: Option<VisitorOwner>,
    ) -> String {
        self.tokens.visitor_with_context(
            TokenKind::Resume,
            channel,
            conversation,
            self.resume_token_ttl,
            None,
            owner,
        )
    }
}

/// Agents' and admins' side: blocking a room's visitor, a channel's
/// identity secret.
pub struct IdentityService {
    identity_store: Arc<dyn IdentityStore>,
    /// The visitor service's: a block made here applies at once here.
    blocks: Arc<crate::cache::BlockCache>,
    room_store: Arc<dyn crate::store::RoomStore>,
    channel_store: Arc<dyn crate::store::ChannelStore>,
    rooms: Arc<super::rooms::RoomService>,
    events: Events,
}

impl IdentityService {
    pub fn new(
        parts: &Parts,
        rooms: Arc<super::rooms::RoomService>,
        blocks: Arc<crate::cache::BlockCache>,
    ) -> IdentityService {
        IdentityService {
            identity_store: parts.store.clone(),
            blocks,
            room_store: parts.store.clone(),
            channel_store: parts.store.clone(),
            rooms,
            events: parts.events(),
        }
    }

    /// `PUT` (block) or `DELETE` (unblock) `/users/me/rooms/<room>/block`:
    /// the room's visitor, on its channel, with every conversation of
    /// theirs. For visitor rooms of the caller's tenant that the caller is
    /// a member of, that wait in the queue, or (admins) any; 404 otherwise.
    pub async fn set_blocked(
        &self,
        caller: &Caller,
        room: crate::service::rooms::RoomRef,
        blocked: bool,
    ) -> Result<LiveRoom, ServiceError> {
        let room = match room {
            crate::service::rooms::RoomRef::Id(id) => {
                self.room_store.room(caller.tenant(), id).await?
            }
            crate::service::rooms::RoomRef::Read(_, room) => room,
        }
        .filter(|r| {
            r.tenant_id == caller.tenant()
                && r.kind == RoomKind::Visitor
                && (r.has_member(caller.id().0)
                    || r.state == RoomState::Queued
                    || caller.is_admin())
        })
        .ok_or(ServiceError::NotFound(Missing::Room))?;
        let channel = room
            .channel_id
            .ok_or(ServiceError::NotFound(Missing::Room))?;
        let key = match self
            .identity_store
            .conversation_visitor(channel, room.id)
            .await?
        {
            Some((Some(key), _)) => key,
            _ => VisitorKey::anonymous(room.id),
        };
        self.identity_store
            .set_visitor_blocked(caller.tenant(), channel, &key, blocked, now_ms())
            .await?;
        self.blocks.evict(channel, &key);
        let room = self
            .room_store
            .room(caller.tenant(), room.id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Room))?;
        let live = self.rooms.live(RoomSummary::bare(room)).await;
        // The room's agents see the change as they see a label change.
        let agents = match live.room().state {
            RoomState::Queued => crate::domain::Agents::Tenant,
            _ if live.room().agents().is_empty() => crate::domain::Agents::Nobody,
            _ => crate::domain::Agents::Only {
                ids: live.room().agents(),
            },
        };
        self.events
            .publish(Published {
                event: Event::RoomLabelsChanged { room: live.clone() },
                tenant_id: live.room().tenant_id,
                visitor_room: None,
                agents,
            })
            .await;
        Ok(live)
    }

    /// An admin's view of a channel's identity secret (made on first use).
    pub async fn secrets(
        &self,
        admin: &Caller,
        channel: ChannelId,
    ) -> Result<IdentitySecrets, ServiceError> {
        admin.require_admin()?;
        self.identity_store
            .identity_secrets(admin.tenant(), channel, &IdentitySecrets::generate())
            .await?
            .ok_or(ServiceError::NotFound(Missing::Channel))
    }

    /// Replaces a channel's identity secret with a new random one; the
    /// previous one still verifies for the grace period.
    pub async fn rotate(
        &self,
        admin: &Caller,
        channel: ChannelId,
    ) -> Result<IdentitySecrets, ServiceError> {
        self.secrets(admin, channel).await?;
        let secret = crate::domain::identity::new_secret();
        let rotated = self
            .identity_store
            .rotate_identity_secret(admin.tenant(), channel, &secret, now_ms())
            .await?
            .ok_or(ServiceError::NotFound(Missing::Channel))?;
        // Checked here too: the channel must still be the tenant's.
        self.channel_store
            .channel(admin.tenant(), channel)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Channel))?;
        Ok(rotated)
    }
}
