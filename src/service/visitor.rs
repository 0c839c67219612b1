//! The visitor side, shared by the HTTP API and the STOMP socket: resolving
//! a visitor token to its channel, sending a message, history, delivery and
//! read marks.

use std::sync::Arc;

use super::error::{Conflict, Missing, ServiceError};
use super::rooms::RoomService;
use super::{Events, Parts};
use crate::auth::{TokenKind, VisitorClaims};
use crate::domain::event::Agents;
use crate::domain::webhook::EventType;
use crate::domain::{
    time::now_ms, AttachmentId, Channel, ChannelId, ClientMessageId, ConversationId, DeliveryState,
    Event, Message, MessageId, MessageText, Published, RoomState, SenderKind,
};
use crate::domain::{LiveRoom, QueueAction, Rating, VisitorContext};
use crate::store::{Appended, ConversationLookup, NewMessage, Rated, VisitorScope};

/// A verified visitor: its token's claims and its channel, connected and
/// open to the request's origin.
pub struct Visitor {
    pub claims: VisitorClaims,
    pub channel: Arc<Channel>,
    /// The page's context the token carries until the first message
    /// (taken out of the claims once, shared by every send).
    pub first_context: Option<Arc<VisitorContext>>,
}

/// What a conversation's first message stores beside it: the page's
/// context and whose conversation it is.
pub struct FirstMessage {
    pub context: Option<Arc<VisitorContext>>,
    pub owner: crate::auth::VisitorOwner,
}

impl Visitor {
    /// What this visitor's first message stores beside it.
    pub fn first(&self) -> FirstMessage {
        FirstMessage {
            context: self.first_context.clone(),
            owner: crate::auth::VisitorOwner {
                key: self.claims.visitor_key(),
                verified: self.claims.vf,
            },
        }
    }

    /// What this visitor may reach: its channel's conversations.
    pub fn scope(&self) -> VisitorScope {
        self.channel.scope()
    }
}

pub struct VisitorService {
    channel_store: Arc<dyn crate::store::ChannelStore>,
    message_store: Arc<dyn crate::store::MessageStore>,
    room_store: Arc<dyn crate::store::RoomStore>,
    visitor_store: Arc<dyn crate::store::VisitorStore>,
    attachment_store: Arc<dyn crate::store::AttachmentStore>,
    pub(super) identity_store: Arc<dyn crate::store::IdentityStore>,
    /// Blocked visitors, shared with `IdentityService` (which evicts).
    pub(super) blocks: Arc<crate::cache::BlockCache>,
    /// Tokens that erasures ended, shared with `RightsService` (which clears).
    pub(super) erasures: Arc<crate::cache::ErasureCache>,
    rights_store: Arc<dyn crate::store::DataRightsStore>,
    cache: Arc<crate::cache::ChannelCache>,
    /// Also read by the token rules of `visitor_tokens`.
    pub(super) tokens: Arc<crate::auth::Tokens>,
    pub(super) limits: Arc<crate::limits::Limits>,
    metrics: Arc<crate::metrics::Metrics>,
    router: super::routing::RouterHandle,
    /// Reopens a closed room the visitor wrote into; posts away messages.
    rooms: Arc<RoomService>,
    /// Whether a channel is available (its away message).
    presence: Arc<super::presence::PresenceService>,
    max_history: u32,
    pub(super) resume_token_ttl: u64,
    pub(super) identity_secret_grace: u64,
    pub(super) visitor_token_ttl: u64,
    unused_context_ttl: u64,
    events: Events,
}

/// A visitor's message, parsed by the door (`/chatplugin.send` and the
/// STOMP `/app/send`, see `wire::visitor::send_body`).
#[derive(Debug, Clone)]
pub struct VisitorSend {
    /// `None` only for a message with attachments and no caption.
    pub text: Option<MessageText>,
    pub client_message_id: Option<ClientMessageId>,
    /// The payload of the quick reply the visitor clicked (1..=1000
    /// characters), `None` when typed.
    pub postback: Option<String>,
    /// The visitor's unsent uploads the message carries (at most 10).
    pub attachments: Vec<AttachmentId>,
    /// The pre-chat answers (desk-api.md, "Support desk"), read on the
    /// conversation's first message.
    pub prechat: Option<crate::domain::PrechatAnswers>,
}

impl VisitorService {
    pub fn new(
        parts: &Parts,
        cache: Arc<crate::cache::ChannelCache>,
        rooms: Arc<RoomService>,
        presence: Arc<super::presence::PresenceService>,
    ) -> VisitorService {
        VisitorService {
            channel_store: parts.store.clone(),
            message_store: parts.store.clone(),
            room_store: parts.store.clone(),
            visitor_store: parts.store.clone(),
            attachment_store: parts.store.clone(),
            identity_store: parts.store.clone(),
            blocks: Arc::default(),
            erasures: Arc::default(),
            rights_store: parts.store.clone(),
            cache,
            tokens: parts.tokens.clone(),
            limits: parts.limits.clone(),
            metrics: parts.metrics.clone(),
            router: parts.router.clone(),
            rooms,
            presence,
            max_history: parts.config.max_history,
            resume_token_ttl: parts.config.resume_token_ttl,
            identity_secret_grace: parts.config.identity_secret_grace,
            visitor_token_ttl: parts.config.visitor_token_ttl,
            unused_context_ttl: parts.config.unused_context_ttl,
            events: parts.events(),
        }
    }

    /// Verifies a visitor token and that its channel still accepts visitors from `origin`.
    pub async fn visitor(
        &self,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Visitor, ServiceError> {
        let mut claims = token
            .and_then(|t| self.tokens.verify_visitor(t, TokenKind::Visitor))
            .ok_or(ServiceError::InvalidToken)?;
        let channel = self.connected_channel(claims.ch, origin).await?;
        // Every door of a visitor (sends, uploads, the socket) comes here.
        self.refuse_blocked(channel.id, &claims.visitor_key())
            .await?;
        self.refuse_erased(&claims).await?;
        let first_context = claims.ctx.take().map(Arc::new);
        Ok(Visitor {
            claims,
            channel,
            first_context,
        })
    }

    /// 401 (an invalid token) for a token issued before an erasure of its
    /// conversation or of its identified visitor (data rights): the
    /// erased visitor's sessions end, and its conversation stays a shell.
    pub(super) async fn refuse_erased(&self, claims: &VisitorClaims) -> Result<(), ServiceError> {
        let erased_at = self
            .erasures
            .erased_at(
                self.rights_store.as_ref(),
                claims.ch,
                claims.cv,
                &claims.visitor_key(),
            )
            .await?;
        match erased_at {
            Some(at) if claims.iat.saturating_mul(1000) <= at => Err(ServiceError::InvalidToken),
            _ => Ok(()),
        }
    }

    /// The channel, if it exists, is connected, and allows `origin`.
    pub async fn connected_channel(
        &self,
        id: ChannelId,
        origin: Option<&str>,
    ) -> Result<Arc<Channel>, ServiceError> {
        let channel = self
            .cache
            .get(self.channel_store.as_ref(), id)
            .await?
            .filter(|c| c.connected)
            .ok_or(ServiceError::NotFound(Missing::Channel))?;
        if !channel.allows_origin(origin) {
            return Err(ServiceError::OriginNotAllowed);
        }
        Ok(channel)
    }

    /// What `id` names in the visitor's reach (`scope`).
    pub async fn conversation(
        &self,
        scope: VisitorScope,
        id: ConversationId,
    ) -> Result<ConversationLookup, ServiceError> {
        Ok(self.message_store.conversation(scope, id).await?)
    }

    /// The last `max_history` messages of a conversation of `scope`, oldest first.
    pub async fn history(
        &self,
        scope: VisitorScope,
        id: ConversationId,
    ) -> Result<Vec<Message>, ServiceError> {
        let read = self.message_store.history(scope, id, self.max_history);
        Ok(self.metrics.timed("history", read).await?)
    }

    /// What a list of conversations shows of one: its last message that
    /// someone wrote (among the last ten; a close notice says less), else
    /// its last message, if any.
    pub(super) async fn history_tail(
        &self,
        scope: VisitorScope,
        id: ConversationId,
    ) -> Result<Option<Message>, ServiceError> {
        let mut tail = self.message_store.history(scope, id, 10).await?;
        let written = tail
            .iter()
            .rposition(|m| m.sender_kind != SenderKind::System);
        Ok(match written {
            Some(at) => Some(tail.swap_remove(at)),
            None => tail.pop(),
        })
    }

    /// Messages of a conversation of `scope` after `seq`, oldest first, at most `limit`.
    pub async fn messages_after(
        &self,
        scope: VisitorScope,
        id: ConversationId,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ServiceError> {
        let read = self.message_store.messages_after(scope, id, seq, limit);
        Ok(self.metrics.timed("messages_after", read).await?)
    }

    /// `/chatplugin.authenticate` with a resume token: the channel (still
    /// connected, open to `origin`), the conversation and its history. A
    /// token naming an id that some other room holds (another kind, tenant
    /// or channel) is refused like a forged one.
    pub async fn resume(
        &self,
        resume_token: &str,
        origin: Option<&str>,
    ) -> Result<
        (
            Arc<Channel>,
            ConversationId,
            Vec<Message>,
            crate::auth::VisitorOwner,
        ),
        ServiceError,
    > {
        let claims = self
            .tokens
            .verify_visitor(resume_token, TokenKind::Resume)
            .ok_or(ServiceError::InvalidToken)?;
        let claimed = crate::auth::VisitorOwner {
            key: claims.visitor_key(),
            verified: claims.vf,
        };
        let channel = self.connected_channel(claims.ch, origin).await?;
        self.refuse_erased(&claims).await?;
        let scope = channel.scope();
        let history = match self.conversation(scope, claims.cv).await? {
            ConversationLookup::Found(_) => self.history(scope, claims.cv).await?,
            ConversationLookup::Free => Vec::new(),
            ConversationLookup::Elsewhere => return Err(ServiceError::InvalidToken),
        };
        Ok((channel, claims.cv, history, claimed))
    }

    /// A resume token an admin's server mints for a conversation of one of
    /// its tenant's connected channels. An id no room has yet may be minted
    /// (a "continue this chat" link made before the chat begins); an id
    /// that any other room holds is 404 `unknown-conversation`.
    pub async fn mint_resume(
        &self,
        admin: &super::Caller,
        channel: ChannelId,
        conversation: ConversationId,
    ) -> Result<String, ServiceError> {
        admin.require_admin()?;
        let channel = self
            .channel_store
            .channel(admin.tenant(), channel)
            .await?
            .filter(|c| c.connected)
            .ok_or(ServiceError::NotFound(Missing::Channel))?;
        if self.conversation(channel.scope(), conversation).await? == ConversationLookup::Elsewhere
        {
            return Err(ServiceError::NotFound(Missing::Conversation));
        }
        Ok(self.resume_token(channel.id, conversation))
    }

    /// A resume token for a conversation of a channel.
    pub fn resume_token(&self, channel: ChannelId, conversation: ConversationId) -> String {
        self.tokens.visitor(
            TokenKind::Resume,
            channel,
            conversation,
            self.resume_token_ttl,
        )
    }

    /// Stores a visitor's message, and publishes it once the store has committed.
    pub async fn send(
        &self,
        visitor: &Visitor,
        request: VisitorSend,
    ) -> Result<Message, ServiceError> {
        let prechat = self.prechat(visitor, request.prechat.clone()).await?;
        let (mut new, attachments) = self.prepare(visitor, request)?;
        self.claim(&mut new, &attachments).await?;
        let appended = self
            .enqueue(new, Some(visitor.first()), prechat)
            .await?
            .await?;
        self.publish(&appended).await;
        Ok(appended.message)
    }

    /// The pre-chat answers to store with the conversation's first message:
    /// when the channel's form is on and the conversation has no message
    /// yet, `answers` must satisfy it (400 naming the field otherwise).
    /// `None` otherwise (answers sent later are ignored).
    pub async fn prechat(
        &self,
        visitor: &Visitor,
        answers: Option<crate::domain::PrechatAnswers>,
    ) -> Result<Option<crate::domain::PrechatAnswers>, ServiceError> {
        let form = &visitor.channel.desk.prechat;
        if !form.is_on() {
            return Ok(None);
        }
        let begun = match self
            .conversation(visitor.scope(), visitor.claims.cv)
            .await?
        {
            ConversationLookup::Found(c) => c.last_seq > 0,
            _ => false,
        };
        if begun {
            return Ok(None);
        }
        let answers = answers
            .unwrap_or_default()
            .checked(form)
            .map_err(|e| ServiceError::field(e.field, e.message))?;
        Ok((!answers.is_empty()).then_some(answers))
    }

    /// `/chatplugin.rate`: the visitor rates its conversation once it is
    /// closed, once. Its agents (members and assignee) hear
    /// `chatd_room_rated`; the visitor's other sessions `conversation.rated`.
    pub async fn rate(&self, visitor: &Visitor, rating: Rating) -> Result<(), ServiceError> {
        let channel = &visitor.channel;
        let webhooks = self.rooms.webhooks();
        let then = webhooks
            .room_rows(channel.tenant_id, &[EventType::ConversationRated])
            .await;
        let rated = self
            .room_store
            .rate_room(
                channel.tenant_id,
                channel.id,
                visitor.claims.cv,
                &rating,
                then.clone(),
            )
            .await?;
        if matches!(rated, Rated::Rated(_)) && then.is_some() {
            webhooks.wake();
        }
        let room = match rated {
            Rated::Rated(room) => room,
            Rated::AlreadyRated => return Err(ServiceError::Conflict(Conflict::AlreadyRated)),
            // A conversation not begun yet is not closed either.
            Rated::NotClosed | Rated::NoRoom => {
                return Err(ServiceError::Conflict(Conflict::ConversationOpen))
            }
        };
        let mut agents = room.agents();
        if let Some(assignee) = room.assignee.filter(|a| !agents.contains(a)) {
            agents.push(assignee);
        }
        let live = self
            .rooms
            .live(crate::domain::RoomSummary::bare(room))
            .await;
        let tenant_id = live.room().tenant_id;
        let visitor_room = Some(live.room().id);
        self.events
            .publish(Published {
                event: Event::RoomRated { room: live },
                tenant_id,
                visitor_room,
                agents: if agents.is_empty() {
                    Agents::Nobody
                } else {
                    Agents::Only { ids: agents }
                },
            })
            .await;
        Ok(())
    }

    /// The first, synchronous half of a send: takes the conversation's
    /// rate-limit token. Nothing is stored yet. The message, and the
    /// uploads it is to carry (for `claim`).
    pub fn prepare(
        &self,
        visitor: &Visitor,
        request: VisitorSend,
    ) -> Result<(NewMessage, Vec<AttachmentId>), ServiceError> {
        let VisitorSend {
            text,
            client_message_id,
            postback,
            attachments,
            prechat: _,
        } = request;
        self.limits.send.check(&visitor.claims.cv)?;
        let new = NewMessage {
            id: MessageId::new(),
            conversation_id: visitor.claims.cv,
            channel_id: Some(visitor.channel.id),
            tenant_id: visitor.channel.tenant_id,
            sender_kind: SenderKind::Visitor,
            sender_id: visitor.claims.cv.0,
            sender_name: None,
            sender_avatar: None,
            content: text.map(MessageText::into_inner).unwrap_or_default(),
            state: DeliveryState::Delivered,
            sent_at_ms: now_ms(),
            client_message_id: client_message_id.map(|k| k.as_str().to_string()),
            notice: None,
            quick_replies: Vec::new(),
            postback,
            mentions: Vec::new(),
            attachments: Vec::new(),
            bot: false,
        };
        Ok((new, attachments))
    }

    /// Claims the visitor's uploads `ids` for `new` (400
    /// `invalid-attachment` unless each is an unsent upload of its
    /// conversation by this visitor). Nothing to do without files.
    pub async fn claim(
        &self,
        new: &mut NewMessage,
        ids: &[AttachmentId],
    ) -> Result<(), ServiceError> {
        super::attachments::claim(
            self.attachment_store.as_ref(),
            self.message_store.as_ref(),
            new,
            ids,
        )
        .await
    }

    /// Queues a prepared message for storing and returns the future of the
    /// stored message: a session queues its sends in order and reads on.
    /// `first` (the page's context from the visitor token, and whose
    /// conversation it is) and the pre-chat answers are stored with the
    /// conversation when this message creates it, in its transaction.
    pub async fn enqueue(
        &self,
        new: NewMessage,
        first: Option<FirstMessage>,
        prechat: Option<crate::domain::PrechatAnswers>,
    ) -> Result<
        impl std::future::Future<Output = Result<Appended, ServiceError>> + Send + 'static,
        ServiceError,
    > {
        let (new_id, claimed) = (new.id, !new.attachments.is_empty());
        // Only a message that took files has a claim to settle.
        let attachments = claimed.then(|| self.attachment_store.clone());
        let webhooks = self.rooms.webhooks().clone();
        let then = webhooks.created_rows(new.tenant_id).await;
        let hooked = then.is_some();
        let opening = match first {
            Some(FirstMessage { context, owner }) => crate::store::Opening {
                owner: Some((owner.key, owner.verified)),
                prechat,
                context,
            },
            None => crate::store::Opening {
                prechat,
                ..Default::default()
            },
        };
        let pending = match self
            .message_store
            .enqueue_append(new, then, Some(opening))
            .await
        {
            Ok(pending) => pending,
            Err(err) => {
                if let Some(store) = &attachments {
                    super::attachments::settle_claim(store.as_ref(), new_id, true, false).await;
                }
                return Err(err.into());
            }
        };
        let metrics = self.metrics.clone();
        Ok(async move {
            let appended = metrics.timed("append_message", pending).await;
            if hooked && matches!(&appended, Ok(a) if a.created) {
                webhooks.wake();
            }
            if matches!(&appended, Ok(a) if a.created) {
                metrics.messages_stored.inc();
            }
            let Some(store) = attachments else {
                return Ok(appended?);
            };
            // Settling the claim writes to the store. It runs on a task of
            // its own: the caller (a STOMP session) polls this future only
            // between its other awaits, and a future holding a pooled
            // connection but not polled keeps it from everyone (with a
            // dozen sessions each waiting for the pool in their next
            // frame, nobody got one until the acquire timeout).
            let stored = matches!(&appended, Ok(a) if a.created);
            tokio::spawn(async move {
                super::attachments::settle_claim(store.as_ref(), new_id, true, stored).await;
            })
            .await
            .unwrap_or_else(|err| tracing::warn!(%err, "settling a message's files failed"));
            Ok(appended?)
        })
    }

    /// Publishes a stored visitor message to every session of its
    /// conversation and to the room's agents (a retry that stored nothing
    /// new publishes nothing). The first message puts the room in its
    /// channel's queue: every agent of the tenant hears of it.
    pub async fn publish(&self, appended: &Appended) {
        if !appended.created {
            return;
        }
        let message = &appended.message;
        let first = message.seq == 1 && appended.room_state == RoomState::Queued;
        let reopen = appended.room_state == RoomState::Closed;
        self.events
            .publish(Published {
                event: Event::MessageCreated {
                    message: message.clone(),
                },
                tenant_id: message.tenant_id,
                visitor_room: Some(message.conversation_id),
                agents: if appended.agents.is_empty() {
                    Agents::Nobody
                } else {
                    Agents::Only {
                        ids: appended.agents.clone(),
                    }
                },
            })
            .await;
        if reopen {
            match self
                .room_store
                .room(message.tenant_id, message.conversation_id)
                .await
            {
                Ok(Some(room)) if room.state == RoomState::Closed => {
                    if let Err(err) = self.rooms.reopen_for_visitor(&room).await {
                        tracing::warn!(%err, "cannot reopen a room the visitor wrote into");
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "cannot read a room the visitor wrote into"),
            }
        }
        // A channel's bot takes a new conversation before the queue: then
        // it is not announced, and the bot answers rather than the away message.
        if first && self.bot_took(message).await {
            return;
        }
        if message.sender_kind == SenderKind::Visitor {
            self.away(message).await;
        }
        if first {
            let store = &self.room_store;
            if let Ok(Some(room)) = store.room(message.tenant_id, message.conversation_id).await {
                let room = LiveRoom {
                    summary: crate::domain::RoomSummary {
                        room,
                        unread_count: 1,
                        unread_mentions: 0,
                        last_message: Some(message.clone()),
                    },
                    visitor_connected: Some(true),
                };
                self.events
                    .publish(Published {
                        event: Event::QueueUpdated {
                            action: QueueAction::Queued,
                            room,
                        },
                        tenant_id: message.tenant_id,
                        visitor_room: None,
                        agents: Agents::Tenant,
                    })
                    .await;
            }
            self.router.kick(message.tenant_id);
        }
    }

    /// A new conversation of a channel that names a bot (from the channel
    /// cache: no store read on the visitor's path unless there is a bot):
    /// whether the bot took it, so it is not announced to the queue.
    async fn bot_took(&self, message: &Message) -> bool {
        let Some(channel_id) = message.channel_id else {
            return false;
        };
        let bot = match self
            .cache
            .get(self.channel_store.as_ref(), channel_id)
            .await
        {
            Ok(Some(channel)) => channel.routing.bot,
            _ => None,
        };
        let Some(bot) = bot else { return false };
        match self
            .rooms
            .bot_takes(message.tenant_id, message.conversation_id, bot)
            .await
        {
            Ok(took) => took,
            Err(err) => {
                tracing::warn!(%err, "the channel's bot cannot take a new conversation; it is queued");
                false
            }
        }
    }

    /// The channel's away message, once per conversation, to a visitor who
    /// wrote while the channel is unavailable (outside its business hours,
    /// or no agent available). A system notice: no agent's reply. None
    /// while the channel's bot holds the conversation (the bot answers);
    /// after its hand-over to the queue, the next message while unavailable
    /// gets it, once, as any conversation's.
    async fn away(&self, message: &Message) {
        let Some(channel_id) = message.channel_id else {
            return;
        };
        let channel = match self
            .cache
            .get(self.channel_store.as_ref(), channel_id)
            .await
        {
            Ok(Some(channel)) => channel,
            Ok(None) => return,
            Err(err) => return tracing::warn!(%err, "cannot read a visitor's channel"),
        };
        let Some(text) = channel.desk.away_message.as_deref() else {
            return;
        };
        let result = async {
            if !self.presence.unavailable(&channel).await? {
                return Ok(());
            }
            let room = message.conversation_id;
            if !self
                .room_store
                .mark_away_sent(message.tenant_id, room)
                .await?
            {
                return Ok(());
            }
            self.rooms.away_notice(message.tenant_id, room, text).await
        };
        if let Err(err) = result.await {
            tracing::warn!(%err, "cannot send the away message");
        }
    }

    /// A message reached a live socket of its visitor: an agent's PENDING
    /// reply becomes DELIVERED (marks are batched, and only the first of
    /// several tabs or instances changes anything), and everyone is told.
    pub fn delivered(self: &Arc<Self>, message: &Message, audience: Option<&Agents>) {
        if message.state != DeliveryState::Pending || message.sender_kind != SenderKind::Agent {
            return;
        }
        // Cloned only here: every other message written costs nothing.
        let audience = audience.cloned();
        let (id, tenant) = (message.id, message.tenant_id);
        let this = self.clone();
        tokio::spawn(async move {
            let webhooks = this.rooms.webhooks();
            let then = webhooks.changed_rows(tenant, false).await;
            let hooked = then.is_some();
            match this.message_store.mark_delivered(tenant, id, then).await {
                Ok(Some(message)) => {
                    if hooked {
                        webhooks.wake();
                    }
                    match audience {
                        Some(agents) => this.publish_update_to(message, agents).await,
                        None => this.publish_update(message).await,
                    }
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "cannot mark a message delivered"),
            }
        });
    }

    /// Publishes a changed message of a visitor room to its visitor and
    /// agents (read from the store).
    pub async fn publish_update(&self, message: Message) {
        let agents = match self
            .room_store
            .room(message.tenant_id, message.conversation_id)
            .await
        {
            Ok(Some(room)) if !room.agents().is_empty() => Agents::Only { ids: room.agents() },
            _ => Agents::Nobody,
        };
        self.publish_update_to(message, agents).await;
    }

    /// Publishes a changed message of a visitor room to its visitor and `agents`.
    async fn publish_update_to(&self, message: Message, agents: Agents) {
        self.events
            .publish(Published {
                tenant_id: message.tenant_id,
                visitor_room: message.channel_id.map(|_| message.conversation_id),
                agents,
                event: Event::MessageUpdated { message },
            })
            .await;
    }

    /// Records what the visitor's page says about the visitor.
    pub async fn save_context(
        &self,
        tenant: crate::domain::TenantId,
        conversation: crate::domain::ConversationId,
        context: VisitorContext,
    ) -> Result<(), ServiceError> {
        // A returning visitor on the same page says the same again: a read
        // spares the single writer (and its fsync) on every page view.
        let stored = self
            .visitor_store
            .visitor_context(tenant, conversation)
            .await?;
        if let Some(old) = stored {
            if old.clone().merged(context.clone()) == old {
                return Ok(());
            }
        }
        self.visitor_store
            .save_visitor_context(tenant, conversation, &context, now_ms())
            .await?;
        Ok(())
    }

    /// Deletes the contexts of conversations that never got a message
    /// within `unused_context_ttl` (a page said something, the visitor
    /// never wrote).
    pub async fn clean_unused_contexts(&self) {
        let ttl_ms =
            i64::try_from(self.unused_context_ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
        match self
            .visitor_store
            .delete_unused_visitor_contexts(now_ms().saturating_sub(ttl_ms))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "unused visitor contexts cleaned"),
            Err(err) => tracing::warn!(%err, "cannot clean unused visitor contexts"),
        }
    }

    /// How far the conversation's agents have read it, as the visitor's
    /// `read` event; `None` before any agent has read anything.
    pub async fn agents_read(&self, visitor: &Visitor) -> Result<Option<Event>, ServiceError> {
        let conversation = visitor.claims.cv;
        let seq = self
            .room_store
            .agents_read_up_to(visitor.channel.tenant_id, conversation)
            .await?;
        Ok((seq > 0).then_some(Event::ReadByAgent {
            conversation_id: conversation,
            up_to_seq: seq,
        }))
    }

    /// `/app/read`: the visitor has read the agents' messages up to `up_to_seq`.
    pub async fn read(&self, visitor: &Visitor, up_to_seq: i64) -> Result<(), ServiceError> {
        let conversation = visitor.claims.cv;
        let webhooks = self.rooms.webhooks();
        let then = webhooks
            .changed_rows(visitor.channel.tenant_id, false)
            .await;
        let hooked = then.is_some();
        let marked = self
            .message_store
            .visitor_read(
                visitor.channel.tenant_id,
                conversation,
                up_to_seq,
                now_ms(),
                then,
            )
            .await?;
        if marked == 0 {
            return Ok(());
        }
        if hooked {
            webhooks.wake();
        }
        let tenant = visitor.channel.tenant_id;
        let Some(room) = self.room_store.room(tenant, conversation).await? else {
            return Ok(());
        };
        let agents = room.agents();
        if agents.is_empty() {
            return Ok(());
        }
        self.events
            .publish(Published {
                event: Event::RoomRead {
                    room: conversation,
                    reader: conversation.0,
                    up_to_seq,
                },
                tenant_id: tenant,
                visitor_room: None,
                agents: Agents::Only { ids: agents },
            })
            .await;
        Ok(())
    }
}
