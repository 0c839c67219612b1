//! Wire shapes: how domain values look to each kind of client. The visitor
//! shapes follow visitor-api.md (Airy's chat plugin), the agent shapes
//! agent-api.md (wazo-chatd). Serialising is the only thing done here.

pub mod channel;
pub mod visitor;
pub mod wazo;

use serde::Serialize;

use crate::domain::{Attachment, AttachmentId};

/// An attachment as every client sees it (desk-api.md, "Attachments"),
/// with URLs signed when the response or frame is built.
#[derive(Debug, Serialize)]
pub struct AttachmentJson<'a> {
    pub id: AttachmentId,
    pub name: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// `attachment` with its signed URLs.
pub fn attachment(
    attachment: &Attachment,
    url: String,
    thumbnail_url: Option<String>,
) -> AttachmentJson<'_> {
    AttachmentJson {
        id: attachment.id,
        name: &attachment.name,
        size: attachment.size,
        content_type: &attachment.content_type,
        url,
        thumbnail_url,
        width: attachment.width,
        height: attachment.height,
    }
}
