//! Uploading files into a conversation and fetching them by signed URL
//! (desk-api.md, "Attachments"). The bytes go to `crate::files`; the record
//! of whose they are to the store.

use std::sync::Arc;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use super::rooms::{RoomRef, RoomService};
use super::visitor::Visitor;
use super::{Caller, Parts, ServiceError};
use crate::domain::time::now_ms;
use crate::domain::{Attachment, AttachmentId, ConversationId, SenderKind, TenantId};
use crate::files::{clean_name, FileError, Files, Variant};
use crate::store::{AttachmentStore, MessageStore, NewMessage};

/// An upload's bytes as they arrive (the door maps its own stream's
/// errors to text).
pub type UploadBody<'a> = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send + 'a>>;

pub struct AttachmentService {
    files: Arc<Files>,
    /// Seconds an upload no message carries is kept.
    unsent_ttl_secs: u64,
    attachment_store: Arc<dyn AttachmentStore>,
    rooms: Arc<RoomService>,
}

/// Who uploads, into which conversation.
struct Uploader {
    tenant: TenantId,
    conversation: ConversationId,
    kind: SenderKind,
    id: uuid::Uuid,
}

impl AttachmentService {
    pub fn new(parts: &Parts, rooms: Arc<RoomService>) -> AttachmentService {
        AttachmentService {
            files: parts.files.clone(),
            unsent_ttl_secs: parts.config.unsent_upload_ttl,
            attachment_store: parts.store.clone(),
            rooms,
        }
    }

    /// A visitor's upload into its conversation.
    pub async fn upload_as_visitor(
        &self,
        visitor: &Visitor,
        name: &str,
        body: UploadBody<'_>,
    ) -> Result<Attachment, ServiceError> {
        let uploader = Uploader {
            tenant: visitor.channel.tenant_id,
            conversation: visitor.claims.cv,
            kind: SenderKind::Visitor,
            id: visitor.claims.cv.0,
        };
        self.upload(uploader, name, body).await
    }

    /// An agent's upload into a room it is a member of.
    pub async fn upload_as_agent(
        &self,
        caller: &Caller,
        room: RoomRef,
        name: &str,
        body: UploadBody<'_>,
    ) -> Result<Attachment, ServiceError> {
        let room = self.rooms.member_room_at(caller, room).await?;
        let uploader = Uploader {
            tenant: room.tenant_id,
            conversation: room.id,
            kind: SenderKind::Agent,
            id: caller.id().0,
        };
        self.upload(uploader, name, body).await
    }

    async fn upload(
        &self,
        uploader: Uploader,
        name: &str,
        body: UploadBody<'_>,
    ) -> Result<Attachment, ServiceError> {
        let id = AttachmentId::new();
        let received = self.files.receive(id.0, body).await?;
        let attachment = Attachment {
            id,
            tenant_id: uploader.tenant,
            conversation_id: uploader.conversation,
            uploader_kind: uploader.kind,
            uploader_id: uploader.id,
            name: clean_name(name),
            size: received.size,
            content_type: received.content_type.to_string(),
            width: received.width,
            height: received.height,
            message_id: None,
            created_at_ms: now_ms(),
        };
        if let Err(e) = self.attachment_store.insert_attachment(&attachment).await {
            // Not recorded: nobody could ever reach or remove the bytes.
            let _ = self.files.delete(id.0).await;
            return Err(e.into());
        }
        Ok(attachment)
    }

    /// Removes the uploads no message carries that are older than
    /// `CHATGATE_UNSENT_UPLOAD_TTL`: the record first (only while still
    /// unsent, so a message that takes it meanwhile keeps it), then the
    /// bytes. How many.
    pub async fn clean_unsent(&self) -> u64 {
        let ttl_ms = i64::try_from(self.unsent_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let before = now_ms().saturating_sub(ttl_ms);
        let mut cleaned = 0;
        loop {
            let ids = match self.attachment_store.unsent_attachments(before, 100).await {
                Ok(ids) => ids,
                Err(err) => {
                    tracing::warn!(%err, "cannot list unsent uploads");
                    return cleaned;
                }
            };
            let batch = ids.len();
            let before_batch = cleaned;
            for id in ids {
                match self
                    .attachment_store
                    .delete_unsent_attachment(id, before)
                    .await
                {
                    Ok(true) => {
                        if let Err(err) = self.files.delete(id.0).await {
                            tracing::warn!(%err, %id, "cannot delete an unsent upload's bytes");
                        }
                        cleaned += 1;
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(%err, "cannot delete unsent uploads");
                        return cleaned;
                    }
                }
            }
            // A full batch of which nothing could be removed (each was
            // sent meanwhile) would be listed again: stop there.
            if batch < 100 || cleaned == before_batch {
                return cleaned;
            }
        }
    }

    /// The signed URLs of `attachment` (its file, and its thumbnail for an
    /// image), valid for the configured time from now.
    pub fn urls(&self, attachment: &Attachment) -> (String, Option<String>) {
        self.files.signer().links(attachment)
    }

    /// The bytes behind a signed URL: 403 for a signature that is wrong or
    /// expired, 404 for a file that is gone.
    pub async fn download(
        &self,
        id: AttachmentId,
        variant: Variant,
        expires: i64,
        signature: &str,
    ) -> Result<
        (
            Attachment,
            impl Stream<Item = Result<Bytes, object_store::Error>> + Send + 'static,
        ),
        ServiceError,
    > {
        if !self
            .files
            .signer()
            .verify(id.0, variant, expires, signature, now_ms() / 1000)
        {
            return Err(ServiceError::Forbidden(
                "this file link is invalid or has expired",
            ));
        }
        let attachment = self
            .attachment_store
            .attachment_by_id(id)
            .await?
            .ok_or(ServiceError::NotFound(super::error::Missing::File))?;
        let bytes = self.files.read(id.0, variant).await.map_err(|e| match e {
            FileError::Storage(_) => ServiceError::NotFound(super::error::Missing::File),
            other => ServiceError::from(other),
        })?;
        Ok((attachment, bytes))
    }
}

/// Claims the uploads `ids` for `new`, a message about to be stored by the
/// one who uploaded them into its conversation (desk-api.md,
/// "Attachments"): on success `new` carries the files. A retry of a send
/// (same `client_message_id`) whose first try already took them gets them
/// again, so that the store answers it with the first message. Anything
/// else is 400 `invalid-attachment`. After the append, [`settle_claim`].
pub(super) async fn claim(
    attachments: &dyn AttachmentStore,
    messages: &dyn MessageStore,
    new: &mut NewMessage,
    ids: &[AttachmentId],
) -> Result<(), ServiceError> {
    if ids.is_empty() {
        return Ok(());
    }
    let uploader = (new.sender_kind, new.sender_id);
    let claimed = attachments
        .claim_attachments(
            new.tenant_id,
            new.conversation_id,
            uploader,
            ids,
            new.id,
            new.sent_at_ms,
        )
        .await?;
    if !claimed.is_empty() {
        new.attachments = claimed;
        return Ok(());
    }
    if let Some(key) = &new.client_message_id {
        let owner = attachments
            .attachment(new.tenant_id, ids[0])
            .await?
            .and_then(|a| a.message_id);
        if let Some(owner) = owner {
            let first = messages
                .message(new.tenant_id, new.conversation_id, owner)
                .await?;
            if let Some(first) = first.filter(|m| {
                m.client_message_id.as_ref() == Some(key)
                    && (m.sender_kind, m.sender_id) == uploader
                    && m.attachments.iter().map(|a| a.id).eq(ids.iter().copied())
            }) {
                new.attachments = first.attachments;
                return Ok(());
            }
        }
    }
    Err(ServiceError::InvalidAttachment)
}

/// After the append of a message that claimed files: a message not stored
/// (an error, or a retry answered with the first message) gives back what
/// it claimed. A failure here leaves the claim to the janitor.
pub(super) async fn settle_claim(
    attachments: &dyn AttachmentStore,
    new_id: crate::domain::MessageId,
    claimed: bool,
    stored: bool,
) {
    if claimed && !stored {
        if let Err(err) = attachments.release_attachments(new_id).await {
            tracing::warn!(%err, "cannot give back the files of a message not stored");
        }
    }
}
