//! Wire shapes: how domain values look to each kind of client. The visitor
//! shapes follow visitor-api.md (Airy's chat plugin), the agent shapes
//! agent-api.md (wazo-chatd). Serialising is the only thing done here.

pub mod application;
pub mod channel;
pub mod export;
pub mod report;
pub mod shapes;
pub mod visitor;
pub mod wazo;
pub mod webhook;

use serde::Serialize;

use crate::domain::{Attachment, AttachmentId};
use crate::error::ApiError;
use crate::files::Signer;

/// An attachment as every client sees it (desk-api.md, "Attachments"),
/// with URLs signed when the response or frame is built.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Attachment)]
pub struct AttachmentJson<'a> {
    #[schema(value_type = uuid::Uuid)]
    pub id: AttachmentId,
    pub name: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    /// Signed, expiring.
    pub url: String,
    pub thumbnail_url: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A message's files with their URLs signed now.
pub fn attachments<'a>(list: &'a [Attachment], signer: &Signer) -> Vec<AttachmentJson<'a>> {
    list.iter()
        .map(|a| {
            let (url, thumbnail_url) = signer.links(a);
            attachment(a, url, thumbnail_url)
        })
        .collect()
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

/// The attachment ids of a send body's `field` (a list of 1..=10 distinct
/// ids; desk-api.md, "Attachments"); `None` when absent or null. Anything
/// else is 400 `invalid-attachment`.
pub fn attachment_ids(
    value: Option<&serde_json::Value>,
    field: &str,
) -> Result<Option<Vec<AttachmentId>>, ApiError> {
    use serde_json::Value;
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::invalid_attachment(
                field,
                "attachments must be a list of ids",
            ))
        }
    };
    if list.is_empty() || list.len() > Attachment::MAX_PER_MESSAGE {
        return Err(ApiError::invalid_attachment(
            field,
            format!(
                "a message carries 1 to {} attachments",
                Attachment::MAX_PER_MESSAGE
            ),
        ));
    }
    let mut ids = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let id = item
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
            .map(AttachmentId)
            .ok_or_else(|| {
                ApiError::invalid_attachment(&format!("{field}[{i}]"), "not an attachment id")
            })?;
        if ids.contains(&id) {
            return Err(ApiError::invalid_attachment(
                &format!("{field}[{i}]"),
                "the same attachment is listed twice",
            ));
        }
        ids.push(id);
    }
    Ok(Some(ids))
}

/// The attachment of Airy's shape `{"type": "image|video|file", "payload":
/// {"url": "<url of an attachment>"}}` (`field` is where it was found);
/// `None` when absent or null.
pub fn airy_attachment(
    value: Option<&serde_json::Value>,
    field: &str,
) -> Result<Option<AttachmentId>, ApiError> {
    use serde_json::Value;
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err(ApiError::invalid_attachment(
                field,
                "attachment must be an object",
            ))
        }
    };
    match object.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if ["image", "video", "file", "audio"].contains(&t.as_str()) => {}
        Some(_) => {
            return Err(ApiError::invalid_attachment(
                &format!("{field}.type"),
                "type must be image, video, audio or file",
            ))
        }
    }
    object
        .get("payload")
        .and_then(|p| p.get("url"))
        .and_then(Value::as_str)
        .and_then(Attachment::id_in_url)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_attachment(
                &format!("{field}.payload.url"),
                "the URL of an uploaded file is required",
            )
        })
}
