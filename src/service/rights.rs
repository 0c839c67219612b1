//! Data rights (desk-api.md, "Integrations"; issue 19): an admin exports or
//! erases everything held about one visitor, a tenant's retention erases
//! old closed conversations on a schedule, and every erasure (and export)
//! leaves an entry in the tenant's audit log.
//!
//! Whose data: the visitor of a visitor conversation. For an identified
//! (verified) visitor, all their conversations on the tenant, whatever the
//! channel; for any other, that one conversation.
//!
//! Erasing keeps each conversation's row as an anonymous shell (state,
//! times, channel, assignee, labels), closed if it was not (that close is
//! told as any close: `conversation.closed` to webhooks from the erasure's
//! transaction, the room's state to its agents, a queued room leaving the
//! queue), so that counts and reports still add up; everything the visitor said or gave (and what
//! agents wrote to them or about them) goes: messages with their files,
//! reactions, quick replies and postbacks, private notes, the page context
//! (name, email, page, browser), pre-chat answers, the rating and its
//! comment, the identity. One transaction; the files' bytes are removed
//! after it commits. The visitor's tokens issued before stop working and
//! its live sockets end.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use uuid::Uuid;

use super::error::{Missing, ServiceError};
use super::{Caller, Events, Parts};
use crate::domain::identity::VisitorKey;
use crate::domain::rights::{
    AuditAction, AuditActor, AuditEntry, Erased, Erasure, RetentionDays, TenantSettings,
};
use crate::domain::time::now_ms;
use crate::domain::webhook::EventType;
use crate::domain::{
    Agents, Attachment, ConversationId, Event, Message, Published, Room, RoomKind, TenantId,
    VisitorContext,
};
use crate::files::{Files, Variant};
use crate::store::{
    DataRightsStore, IdentityStore, MessageQuery, MessageStore, Page, RoomStore, VisitorStore,
};

/// Most conversations of one identified visitor an export or erasure
/// covers at once (an erasure repeated covers the rest).
pub const MAX_VISITOR_CONVERSATIONS: u32 = 1000;
/// Messages read per page while exporting.
const EXPORT_PAGE: u32 = 500;
/// Expired conversations a retention pass erases per transaction.
const RETENTION_BATCH: u32 = 100;
/// Most audit entries one page lists.
pub const MAX_AUDIT_PAGE: u32 = 500;

/// One conversation as exported.
pub struct ExportedConversation {
    pub room: Room,
    /// What the visitor's page told (name, email, page, browser...).
    pub context: Option<VisitorContext>,
    /// The conversation's messages, as the visitor saw them (system notices
    /// included), oldest first.
    pub messages: Vec<Message>,
    /// Agents' private notes about the visitor, oldest first: never shown
    /// to the visitor, exported apart.
    pub notes: Vec<Message>,
}

impl ExportedConversation {
    /// The files its messages carry.
    pub fn files(&self) -> impl Iterator<Item = &Attachment> {
        self.messages
            .iter()
            .chain(&self.notes)
            .flat_map(|m| m.attachments.iter())
    }
}

/// Everything held about one visitor.
pub struct Export {
    pub at_ms: i64,
    /// The identity its site signed, for an identified visitor.
    pub identity: Option<String>,
    pub conversations: Vec<ExportedConversation>,
}

pub struct RightsService {
    rooms: Arc<dyn RoomStore>,
    messages: Arc<dyn MessageStore>,
    visitors: Arc<dyn VisitorStore>,
    identity: Arc<dyn IdentityStore>,
    rights: Arc<dyn DataRightsStore>,
    files: Arc<Files>,
    /// The visitor service's: an erasure made here applies at once here.
    erasures: Arc<crate::cache::ErasureCache>,
    /// Tells the erased rooms' agents.
    room_service: Arc<super::rooms::RoomService>,
    /// The `conversation.closed` events of conversations an erasure closes.
    webhooks: Arc<super::webhooks::WebhookService>,
    events: Events,
}

impl RightsService {
    pub fn new(
        parts: &Parts,
        erasures: Arc<crate::cache::ErasureCache>,
        room_service: Arc<super::rooms::RoomService>,
        webhooks: Arc<super::webhooks::WebhookService>,
    ) -> RightsService {
        RightsService {
            rooms: parts.store.clone(),
            messages: parts.store.clone(),
            visitors: parts.store.clone(),
            identity: parts.store.clone(),
            rights: parts.store.clone(),
            files: parts.files.clone(),
            erasures,
            room_service,
            webhooks,
            events: parts.events(),
        }
    }

    /// The visitor of the tenant's visitor conversation `id` (admins only:
    /// 403 first, then 404 for anything not a visitor conversation of the
    /// caller's tenant): its identity, if verified, and its conversations.
    async fn visitor_of(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<(Option<VisitorKey>, Vec<ConversationId>), ServiceError> {
        caller.require_admin()?;
        let room = self
            .rooms
            .room(caller.tenant(), id)
            .await?
            .filter(|r| r.kind == RoomKind::Visitor && r.tenant_id == caller.tenant())
            .ok_or(ServiceError::NotFound(Missing::Conversation))?;
        let channel = room
            .channel_id
            .ok_or(ServiceError::NotFound(Missing::Conversation))?;
        let key = match self.identity.conversation_visitor(channel, room.id).await? {
            Some((Some(key), true)) if key.is_identified() => key,
            _ => return Ok((None, vec![room.id])),
        };
        let mut ids = self
            .rights
            .identified_conversations(caller.tenant(), &key, MAX_VISITOR_CONVERSATIONS)
            .await?;
        if !ids.contains(&room.id) {
            ids.push(room.id);
        }
        Ok((Some(key), ids))
    }

    /// `GET /visitors/<conversation_id>/export`: everything held about the
    /// conversation's visitor (recorded in the audit log).
    pub async fn export(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Export, ServiceError> {
        let (key, ids) = self.visitor_of(caller, id).await?;
        let tenant = caller.tenant();
        let mut conversations = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(room) = self.rooms.room(tenant, *id).await? else {
                continue;
            };
            let context = self.visitors.visitor_context(tenant, *id).await?;
            let (messages, notes) = self.all_messages(tenant, *id).await?;
            conversations.push(ExportedConversation {
                room,
                context,
                messages,
                notes,
            });
        }
        let at_ms = now_ms();
        let files: usize = conversations.iter().map(|c| c.files().count()).sum();
        let messages: usize = conversations.iter().map(|c| c.messages.len()).sum();
        self.rights
            .insert_audit_entry(&AuditEntry {
                id: Uuid::now_v7(),
                tenant_id: tenant,
                at_ms,
                actor: actor(caller),
                action: AuditAction::VisitorExported,
                conversations: ids.clone(),
                detail: serde_json::json!({
                    "conversations": conversations.len(),
                    "messages": messages,
                    "files": files,
                })
                .to_string(),
            })
            .await?;
        Ok(Export {
            at_ms,
            identity: key.map(|k| k.as_str().trim_start_matches("i:").to_string()),
            conversations,
        })
    }

    /// Every message of a room, oldest first, and its private notes apart.
    async fn all_messages(
        &self,
        tenant: TenantId,
        room: ConversationId,
    ) -> Result<(Vec<Message>, Vec<Message>), ServiceError> {
        let mut messages = Vec::new();
        let mut notes = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .messages
                .room_messages(
                    tenant,
                    room,
                    &MessageQuery {
                        limit: EXPORT_PAGE,
                        ascending: true,
                        after_seq: Some(after),
                        ..MessageQuery::default()
                    },
                )
                .await?;
            let mut newest = after;
            let mut read = 0;
            for message in page.items {
                if message.private {
                    notes.push(message);
                } else {
                    newest = newest.max(message.seq);
                    read += 1;
                    messages.push(message);
                }
            }
            if read < EXPORT_PAGE || newest == after {
                return Ok((messages, notes));
            }
            after = newest;
        }
    }

    /// The bytes of an exported file, as a stream.
    pub async fn file(
        &self,
        attachment: &Attachment,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static, ServiceError>
    {
        Ok(self.files.read(attachment.id.0, Variant::File).await?)
    }

    /// `DELETE /visitors/<conversation_id>`: erases the conversation's
    /// visitor (see the module's doc). Erasing an erased visitor again
    /// changes nothing and adds no audit entry.
    pub async fn erase(&self, caller: &Caller, id: ConversationId) -> Result<Erased, ServiceError> {
        let (_, ids) = self.visitor_of(caller, id).await?;
        let at_ms = now_ms();
        let erasure = Erasure {
            tenant: caller.tenant(),
            conversations: ids,
            at_ms,
            retention_only: false,
            audit: audit(caller.tenant(), at_ms, actor(caller)),
        };
        // An open or queued conversation is closed by its erasure: its
        // `conversation.closed` goes out as any close's, from the same
        // transaction.
        let then = self
            .webhooks
            .room_rows(caller.tenant(), &[EventType::ConversationClosed])
            .await;
        let erased = self
            .rights
            .erase_conversations(&erasure, then.clone())
            .await?;
        if then.is_some() && !erased.closed.is_empty() {
            self.webhooks.wake();
        }
        self.after_erasure(caller.tenant(), &erased).await;
        Ok(erased)
    }

    /// After an erasure's commit: the files' bytes go, this instance
    /// forgets which tokens were good, every instance ends the erased
    /// conversations' live sessions, and their agents see them closed.
    async fn after_erasure(&self, tenant: TenantId, erased: &Erased) {
        if erased.conversations.is_empty() {
            return;
        }
        self.erasures.clear();
        for file in &erased.files {
            if let Err(err) = self.files.delete(file.0).await {
                // The record is gone: no URL reaches the bytes any more.
                tracing::warn!(%err, %file, "cannot delete an erased file's bytes");
            }
        }
        for conversation in &erased.conversations {
            self.events
                .publish(Published {
                    event: Event::VisitorErased {
                        conversation_id: *conversation,
                    },
                    tenant_id: tenant,
                    visitor_room: Some(*conversation),
                    agents: Agents::Nobody,
                })
                .await;
            let was = erased
                .closed
                .iter()
                .find(|(id, _)| id == conversation)
                .map(|(_, was)| *was);
            self.room_service.erased(tenant, *conversation, was).await;
        }
    }

    /// `GET /audit`: the tenant's audit log, newest first (admins).
    pub async fn audit_log(
        &self,
        caller: &Caller,
        limit: u32,
        offset: u32,
    ) -> Result<Page<AuditEntry>, ServiceError> {
        caller.require_admin()?;
        Ok(self
            .rights
            .audit_entries(caller.tenant(), limit.clamp(1, MAX_AUDIT_PAGE), offset)
            .await?)
    }

    /// `GET /tenant`: the caller's tenant's settings (admins).
    pub async fn settings(&self, caller: &Caller) -> Result<TenantSettings, ServiceError> {
        caller.require_admin()?;
        self.rights
            .tenant_settings(caller.tenant())
            .await?
            .ok_or_else(|| ServiceError::Internal("the caller's tenant has no row".into()))
    }

    /// `PATCH /tenant` `{"retention_days"}`: sets (or turns off) the
    /// tenant's retention (admins).
    pub async fn set_retention(
        &self,
        caller: &Caller,
        retention: Option<RetentionDays>,
    ) -> Result<TenantSettings, ServiceError> {
        caller.require_admin()?;
        self.rights
            .set_retention(caller.tenant(), retention)
            .await?;
        self.settings(caller).await
    }

    /// One retention pass (the hourly housekeeping): erases the visitor
    /// conversations of every tenant with a retention that closed longer
    /// ago than it, a batch per transaction with one audit entry each.
    /// Several instances may run it at once: each conversation is erased
    /// once (a guarded update). How many were erased.
    pub async fn enforce_retention(&self, now: i64) -> Result<u64, ServiceError> {
        let mut erased_count = 0u64;
        loop {
            let expired = self
                .rights
                .expired_conversations(now, RETENTION_BATCH)
                .await?;
            let listed = expired.len();
            let mut by_tenant: Vec<(TenantId, Vec<ConversationId>)> = Vec::new();
            for (tenant, conversation) in expired {
                match by_tenant.iter_mut().find(|(t, _)| *t == tenant) {
                    Some((_, list)) => list.push(conversation),
                    None => by_tenant.push((tenant, vec![conversation])),
                }
            }
            let mut erased_now = 0;
            for (tenant, conversations) in by_tenant {
                let erasure = Erasure {
                    tenant,
                    conversations,
                    at_ms: now,
                    retention_only: true,
                    audit: audit(tenant, now, AuditActor::Retention),
                };
                // Retention erases closed conversations only: no close.
                let erased = self.rights.erase_conversations(&erasure, None).await?;
                self.after_erasure(tenant, &erased).await;
                erased_now += erased.conversations.len();
            }
            erased_count += erased_now as u64;
            // A short batch was the last; a batch of which nothing could be
            // erased (another instance took them) would be listed again.
            if listed < RETENTION_BATCH as usize || erased_now == 0 {
                return Ok(erased_count);
            }
        }
    }
}

fn actor(caller: &Caller) -> AuditActor {
    AuditActor::Agent {
        id: caller.id(),
        name: caller.agent.display_name.clone(),
    }
}

/// An erasure's audit entry; the store fills in what was erased.
fn audit(tenant: TenantId, at_ms: i64, actor: AuditActor) -> AuditEntry {
    AuditEntry {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        at_ms,
        actor,
        action: AuditAction::VisitorErased,
        conversations: Vec::new(),
        detail: String::new(),
    }
}
