//! A file uploaded into a conversation (desk-api.md, "Attachments").

use uuid::Uuid;

use super::{AttachmentId, ConversationId, MessageId, SenderKind, TenantId};

/// What is known of an uploaded file; its bytes are in the file store
/// (`crate::files`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The most files one message carries.
    pub const MAX_PER_MESSAGE: usize = 10;

    /// Images are shown inline; everything else is a download.
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }

    /// A message's files as stored with it (`None` when it has none).
    pub fn encode_list(list: &[Attachment]) -> Option<String> {
        (!list.is_empty()).then(|| serde_json::to_string(list).unwrap_or_default())
    }

    pub fn decode_list(raw: &str) -> Result<Vec<Attachment>, serde_json::Error> {
        serde_json::from_str(raw)
    }

    /// The attachment id in a file URL this server made (Airy's
    /// `{"attachment": {"payload": {"url"}}}`): `/files/<id>/...`, with or
    /// without scheme and host, query ignored.
    pub fn id_in_url(url: &str) -> Option<AttachmentId> {
        let path = match url.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => url,
        };
        let path = path.split(['?', '#']).next()?;
        let mut parts = path.strip_prefix("/files/")?.split('/');
        let id = parts.next()?.parse::<Uuid>().ok()?;
        parts.next()?;
        Some(AttachmentId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_a_file_url_is_found_with_or_without_host() {
        let id = Uuid::from_u128(42);
        for url in [
            format!("/files/{id}/photo.png?expires=1&signature=ab"),
            format!("https://chat.example.com/files/{id}/thumbnail"),
            format!("http://127.0.0.1:80/files/{id}/a%20b.pdf#x"),
        ] {
            assert_eq!(Attachment::id_in_url(&url), Some(AttachmentId(id)), "{url}");
        }
        for url in [
            format!("/files/{id}"),
            "/files/not-a-uuid/x".to_string(),
            format!("https://example.com/other/{id}/x"),
            "".to_string(),
            "https://".to_string(),
        ] {
            assert_eq!(Attachment::id_in_url(&url), None, "{url}");
        }
    }
}
