//! A file uploaded into a conversation (desk-api.md, "Attachments").

use uuid::Uuid;

use super::{AttachmentId, ConversationId, MessageId, SenderKind, TenantId};

/// What is known of an uploaded file; its bytes are in the file store
/// (`crate::files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub tenant_id: TenantId,
    /// The conversation (or agent room) it was uploaded into: the only one
    /// whose messages may carry it.
    pub conversation_id: ConversationId,
    /// A visitor's or an agent's.
    pub uploader_kind: SenderKind,
    pub uploader_id: Uuid,
    /// The client's name for it, cleaned (`files::clean_name`).
    pub name: String,
    pub size: u64,
    /// Judged from its content, never from the client.
    pub content_type: String,
    /// An image's pixel size.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The message that carries it; `None` until sent.
    pub message_id: Option<MessageId>,
    pub created_at_ms: i64,
}

impl Attachment {
    /// Images are shown inline; everything else is a download.
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}
