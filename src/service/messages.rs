//! Messages as agents see them: listing and searching the caller's rooms,
//! posting (in a visitor room: the reply to the visitor), editing and
//! deleting one's own messages, reactions.

use std::sync::Arc;

use uuid::Uuid;

use super::error::{Conflict, Missing, ServiceError};
use super::rooms::{RoomRef, RoomService};
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::search::{check_query, like_pattern};
use crate::domain::{
    time::now_ms, Attachment, AttachmentId, DeliveryState, Emoji, Event, Message, MessageId,
    MessageText, Published, QuickReply, Room, RoomId, RoomKind, SenderKind, TextError,
};
use crate::store::{MessageQuery, NewMessage, NewNote, Page, ReactionAdded};

/// Largest page of messages.
pub const MAX_PAGE: u32 = 1000;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 100;

/// A listing as a client asks for it.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub ascending: bool,
    pub from_ms: Option<i64>,
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    pub search: Option<String>,
}

impl Listing {
    /// The store's query; a search longer than `max_search_chars` characters
    /// (a pattern that long is no one's search, and SQLite refuses `LIKE`
    /// patterns past 50,000 bytes) or with a control character (PostgreSQL
    /// cannot hold NUL) is 400 naming `search`, on every backend alike.
    pub fn query(&self, max_search_chars: usize) -> Result<MessageQuery, ServiceError> {
        if let Some(search) = &self.search {
            check_query(search, max_search_chars).map_err(|m| ServiceError::field("search", m))?;
        }
        Ok(MessageQuery {
            limit: self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE),
            offset: self.offset.unwrap_or(0),
            ascending: self.ascending,
            from_ms: self.from_ms,
            before_seq: self.before_seq,
            after_seq: self.after_seq,
            search: self.search.as_deref().and_then(like_pattern),
        })
    }
}

pub struct MessageService {
    message_store: Arc<dyn crate::store::MessageStore>,
    reaction_store: Arc<dyn crate::store::ReactionStore>,
    attachment_store: Arc<dyn crate::store::AttachmentStore>,
    files: Arc<crate::files::Files>,
    rooms: Arc<RoomService>,
    metrics: Arc<crate::metrics::Metrics>,
    max_search_chars: usize,
    max_text_chars: usize,
    max_reactions_per_user: u32,
    events: Events,
    /// Schedules the offline email of a reply to a visitor.
    email: Arc<super::email::EmailService>,
}

impl MessageService {
    pub fn new(
        parts: &Parts,
        rooms: Arc<RoomService>,
        email: Arc<super::email::EmailService>,
    ) -> MessageService {
        MessageService {
            message_store: parts.store.clone(),
            reaction_store: parts.store.clone(),
            attachment_store: parts.store.clone(),
            files: parts.files.clone(),
            rooms,
            metrics: parts.metrics.clone(),
            max_search_chars: parts.config.max_search_chars,
            max_text_chars: parts.config.max_text_chars,
            max_reactions_per_user: parts.config.max_reactions_per_user,
            events: parts.events(),
            email,
        }
    }

    pub async fn list(
        &self,
        caller: &Caller,
        room: RoomId,
        listing: &Listing,
    ) -> Result<Page<Message>, ServiceError> {
        self.rooms.member_room(caller, room).await?;
        Ok(self
            .message_store
            .room_messages(
                caller.tenant(),
                room,
                &listing.query(self.max_search_chars)?,
            )
            .await?)
    }

    /// Search across the caller's rooms (`search`), or the newest message of
    /// each room (`distinct`); one of the two is required.
    pub async fn search(
        &self,
        caller: &Caller,
        listing: &Listing,
        distinct_rooms: bool,
    ) -> Result<Page<Message>, ServiceError> {
        let query = listing.query(self.max_search_chars)?;
        if query.search.is_none() && !distinct_rooms {
            return Err(ServiceError::field(
                "search",
                "search (with at least one word) or distinct=room_uuid is required",
            ));
        }
        Ok(self
            .message_store
            .search_messages(caller.tenant(), caller.id().0, &query, distinct_rooms)
            .await?)
    }

    /// Posts into a room the caller is in. In a visitor room it is the reply
    /// to the visitor: PENDING until written to one of the visitor's sockets.
    /// `quick_replies` (already parsed: 1..=10 buttons, or none) are stored
    /// with it.
    /// `mentions` name agents of the room (400 naming `mentions` otherwise;
    /// a repeated one counts once); each mentioned agent but the author
    /// hears `chatd_user_room_mention`. `attachments` are the caller's
    /// unsent uploads into this room (400 `invalid-attachment` otherwise);
    /// with them `content` may be empty.
    #[allow(clippy::too_many_arguments)]
    pub async fn post(
        &self,
        caller: &Caller,
        room: RoomRef,
        content: String,
        alias: Option<String>,
        quick_replies: Vec<QuickReply>,
        mentions: Vec<Uuid>,
        attachments: Vec<AttachmentId>,
    ) -> Result<Message, ServiceError> {
        if attachments.len() > Attachment::MAX_PER_MESSAGE {
            return Err(ServiceError::InvalidAttachment);
        }
        let content = if !attachments.is_empty() && content.trim().is_empty() {
            String::new()
        } else {
            self.text(content)?
        };
        let alias = alias
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                if a.chars().nth(200).is_some() {
                    Err(ServiceError::field(
                        "alias",
                        "alias is longer than 200 characters",
                    ))
                } else {
                    Ok(a)
                }
            })
            .transpose()?;
        if caller.is_application() && alias.is_some() {
            return Err(ServiceError::field(
                "alias",
                "an application's messages carry its own name: no alias",
            ));
        }
        let room = self.rooms.member_room_at(caller, room).await?;
        let mentions = mentioned(&room, mentions)?;
        let visitor_room = room.kind == RoomKind::Visitor;
        let new = NewMessage {
            id: MessageId::new(),
            conversation_id: room.id,
            channel_id: room.channel_id,
            tenant_id: room.tenant_id,
            sender_kind: SenderKind::Agent,
            sender_id: caller.id().0,
            sender_name: Some(alias.unwrap_or_else(|| caller.agent.display_name.clone())),
            sender_avatar: caller.agent.avatar_url.clone(),
            content,
            state: if visitor_room {
                DeliveryState::Pending
            } else {
                DeliveryState::Delivered
            },
            sent_at_ms: now_ms(),
            client_message_id: None,
            notice: None,
            quick_replies,
            postback: None,
            mentions,
            attachments: Vec::new(),
            bot: caller.is_application(),
        };
        let mut new = new;
        super::attachments::claim(
            self.attachment_store.as_ref(),
            self.message_store.as_ref(),
            &mut new,
            &attachments,
        )
        .await?;
        let (new_id, claimed) = (new.id, !new.attachments.is_empty());
        let outbox = match (visitor_room, room.channel_id) {
            (true, Some(channel)) => {
                self.email
                    .offline_row(room.tenant_id, channel, room.id)
                    .await
            }
            _ => None,
        };
        let webhooks = self.rooms.webhooks();
        let then = webhooks.created_rows(room.tenant_id).await;
        let appended = self
            .message_store
            .append_message_with(new, outbox.into_iter().collect(), then.clone())
            .await;
        if then.is_some() {
            webhooks.wake();
        }
        super::attachments::settle_claim(
            self.attachment_store.as_ref(),
            new_id,
            claimed,
            matches!(&appended, Ok(a) if a.created),
        )
        .await;
        let appended = appended?;
        self.metrics.messages_stored.inc();
        self.events
            .publish(Published {
                event: Event::MessageCreated {
                    message: appended.message.clone(),
                },
                tenant_id: room.tenant_id,
                visitor_room: visitor_room.then_some(room.id),
                agents: Agents::Only {
                    ids: appended.agents.clone(),
                },
            })
            .await;
        let message = &appended.message;
        for &user in &message.mentions {
            // Only those still members when it was stored hear of it.
            let agent = crate::domain::AgentId(user);
            if user == caller.id().0 || !appended.agents.contains(&agent) {
                continue;
            }
            self.events
                .publish(Published {
                    event: Event::Mention {
                        room: room.id,
                        message: message.id,
                        user,
                    },
                    tenant_id: room.tenant_id,
                    visitor_room: None,
                    agents: Agents::Only { ids: vec![agent] },
                })
                .await;
        }
        Ok(appended.message)
    }

    /// A private note in a visitor room the caller is in (desk-api.md,
    /// "Support desk"): told to the room's agents only, never to the
    /// visitor, and outside the visitor's `seq` sequence (it has the seq of
    /// the message it follows). Text only; in an agent room 400 naming
    /// `private`.
    pub async fn note(
        &self,
        caller: &Caller,
        room: RoomRef,
        content: String,
    ) -> Result<Message, ServiceError> {
        caller.require_person("private notes are written by agents, not applications")?;
        let content = self.text(content)?;
        let room = self.rooms.member_room_at(caller, room).await?;
        if room.kind != RoomKind::Visitor {
            return Err(ServiceError::field(
                "private",
                "private notes are for visitor conversations",
            ));
        }
        let webhooks = self.rooms.webhooks();
        let then = webhooks.created_rows(room.tenant_id).await;
        let note = self
            .message_store
            .add_note(
                NewNote {
                    id: MessageId::new(),
                    tenant_id: room.tenant_id,
                    room: room.id,
                    author_id: caller.id().0,
                    author_name: Some(caller.agent.display_name.clone()),
                    author_avatar: caller.agent.avatar_url.clone(),
                    content,
                    at_ms: now_ms(),
                },
                then.clone(),
            )
            .await?
            .ok_or_else(super::rooms::unknown_room)?;
        if then.is_some() {
            webhooks.wake();
        }
        self.events
            .publish(Published {
                event: Event::MessageCreated {
                    message: note.clone(),
                },
                tenant_id: room.tenant_id,
                // Never the visitor's sessions.
                visitor_room: None,
                agents: Agents::Only { ids: room.agents() },
            })
            .await;
        Ok(note)
    }

    /// Edits (`Some(content)`) or deletes (`None`) one of the caller's own messages.
    pub async fn change(
        &self,
        caller: &Caller,
        room: RoomId,
        id: MessageId,
        content: Option<String>,
    ) -> Result<Message, ServiceError> {
        let content = content.map(|c| self.text(c)).transpose()?;
        let room = self.rooms.member_room(caller, room).await?;
        let message = self.own_message(caller, &room, id).await?;
        let webhooks = self.rooms.webhooks();
        let then = webhooks
            .changed_rows(caller.tenant(), content.is_none())
            .await;
        let changed = self
            .message_store
            .edit_message(
                caller.tenant(),
                room.id,
                message.id,
                content.as_deref(),
                now_ms(),
                then.clone(),
            )
            .await?
            .ok_or_else(unknown_message)?;
        if then.is_some() {
            webhooks.wake();
        }
        if changed.deleted && !message.attachments.is_empty() {
            self.delete_files(&changed).await;
        }
        self.publish_update(&room, changed.clone()).await;
        Ok(changed)
    }

    /// Removes the files of deleted `message`: their records, then their
    /// bytes. A failure is logged; the records' removal is what makes the
    /// files unreachable (their links then answer 404).
    async fn delete_files(&self, message: &Message) {
        let ids = match self
            .attachment_store
            .delete_message_attachments(message.tenant_id, message.id)
            .await
        {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(%err, message = %message.id, "cannot delete a deleted message's files");
                return;
            }
        };
        for id in ids {
            if let Err(err) = self.files.delete(id.0).await {
                tracing::warn!(%err, %id, "cannot delete a deleted message's file bytes");
            }
        }
    }

    /// Adds the caller's reaction; returns the emoji as stored (fully qualified).
    pub async fn add_reaction(
        &self,
        caller: &Caller,
        room: RoomId,
        id: MessageId,
        emoji: &str,
    ) -> Result<Emoji, ServiceError> {
        let emoji = Emoji::parse(emoji).map_err(|m| ServiceError::field("emoji", m))?;
        let room = self.rooms.member_room(caller, room).await?;
        let message = self.message(caller, &room, id).await?;
        match self
            .reaction_store
            .add_reaction(
                caller.tenant(),
                message.id,
                caller.id().0,
                emoji.as_str(),
                now_ms(),
                self.max_reactions_per_user,
            )
            .await?
        {
            ReactionAdded::Added => {}
            ReactionAdded::AlreadyExists => {
                return Err(ServiceError::Conflict(Conflict::ReactionAlreadyExists))
            }
            ReactionAdded::TooMany => {
                let limit = self.max_reactions_per_user;
                return Err(ServiceError::Conflict(Conflict::TooManyReactions { limit }));
            }
        }
        self.publish_reaction(&room, &message, caller.id().0, emoji.as_str(), true)
            .await;
        Ok(emoji)
    }

    pub async fn remove_reaction(
        &self,
        caller: &Caller,
        room: RoomId,
        id: MessageId,
        emoji: &str,
    ) -> Result<(), ServiceError> {
        let unknown = || ServiceError::NotFound(Missing::Reaction);
        let room = self.rooms.member_room(caller, room).await?;
        let message = self.message(caller, &room, id).await?;
        // Stored in the spelling `Emoji` keeps; what is no emoji was never added.
        let emoji = Emoji::parse(emoji).map_err(|_| unknown())?;
        if !self
            .reaction_store
            .remove_reaction(caller.tenant(), message.id, caller.id().0, emoji.as_str())
            .await?
        {
            return Err(unknown());
        }
        self.publish_reaction(&room, &message, caller.id().0, emoji.as_str(), false)
            .await;
        Ok(())
    }

    fn text(&self, content: String) -> Result<String, ServiceError> {
        MessageText::parse(content, self.max_text_chars)
            .map(MessageText::into_inner)
            .map_err(|e| {
                let msg = match e {
                    TextError::TooLong(n) => format!("content is longer than {n} characters"),
                    other => other.to_string().replace("text", "content"),
                };
                ServiceError::field("content", msg)
            })
    }

    async fn message(
        &self,
        caller: &Caller,
        room: &Room,
        id: MessageId,
    ) -> Result<Message, ServiceError> {
        self.message_store
            .message(caller.tenant(), room.id, id)
            .await?
            .ok_or_else(unknown_message)
    }

    async fn own_message(
        &self,
        caller: &Caller,
        room: &Room,
        id: MessageId,
    ) -> Result<Message, ServiceError> {
        let message = self.message(caller, room, id).await?;
        if message.sender_kind != SenderKind::Agent || message.sender_id != caller.id().0 {
            return Err(ServiceError::Forbidden(
                "only the author may change a message",
            ));
        }
        if message.deleted {
            return Err(unknown_message());
        }
        Ok(message)
    }

    async fn publish_update(&self, room: &Room, message: Message) {
        self.events
            .publish(Published {
                tenant_id: room.tenant_id,
                visitor_room: (room.kind == RoomKind::Visitor).then_some(room.id),
                agents: Agents::Only { ids: room.agents() },
                event: Event::MessageUpdated { message },
            })
            .await;
    }

    async fn publish_reaction(
        &self,
        room: &Room,
        message: &Message,
        user: Uuid,
        emoji: &str,
        added: bool,
    ) {
        self.events
            .publish(Published {
                event: Event::Reaction {
                    room: room.id,
                    message: message.id,
                    user,
                    emoji: emoji.to_string(),
                    added,
                },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Only { ids: room.agents() },
            })
            .await;
    }
}

/// The agents a new message of `room` mentions: each an agent member of
/// the room, once, in the author's order (400 naming `mentions` otherwise).
fn mentioned(room: &Room, mentions: Vec<Uuid>) -> Result<Vec<Uuid>, ServiceError> {
    let agents = room.agents();
    let mut kept: Vec<Uuid> = Vec::with_capacity(mentions.len());
    for user in mentions {
        if !agents.contains(&crate::domain::AgentId(user)) {
            return Err(ServiceError::field(
                "mentions",
                format!("{user} is not a member of this room"),
            ));
        }
        if !kept.contains(&user) {
            kept.push(user);
        }
    }
    Ok(kept)
}

fn unknown_message() -> ServiceError {
    ServiceError::NotFound(Missing::Message)
}
