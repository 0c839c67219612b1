//! A visitor's data export (desk-api.md, "Integrations"): one zip archive
//! with `conversation-<id>.json` per conversation and the files themselves
//! under `files/<id>/<name>`.
//!
//! Choices worth knowing about:
//! - The archive is written to an anonymous temporary file (deleted when
//!   closed), one file at a time, on a blocking thread; the response then
//!   streams it. No request holds more than one chunk of a file in memory.
//! - JSON entries are deflated; files are stored as they are when already
//!   compressed (images, video, PDF, office documents), deflated otherwise.
//! - Private notes are agents' notes about the visitor: exported, in a part
//!   of their own (`private_notes`), never mixed with the messages.
//! - Attachments carry their id, their path in the archive, and a URL
//!   valid 7 days (desk-api.md, "Attachments").

use std::io::{Seek, Write};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::domain::time::format_ms;
use crate::domain::{Attachment, Message};
use crate::files::{Signer, Variant};
use crate::service::rights::{Export, ExportedConversation, RightsService};
use crate::service::ServiceError;

/// How long the attachments' URLs in an export stay valid.
const URL_TTL_SECS: i64 = 7 * 24 * 3600;

/// The file name of an export of the visitor of `conversation`.
pub fn archive_name(conversation: crate::domain::ConversationId) -> String {
    format!("visitor-{conversation}.zip")
}

/// Where an attachment's bytes are in the archive.
pub fn file_path(attachment: &Attachment) -> String {
    format!("files/{}/{}", attachment.id, attachment.name)
}

/// `conversation-<id>.json`: one conversation as exported.
pub fn conversation_json(
    export: &Export,
    conversation: &ExportedConversation,
    signer: &Signer,
) -> Value {
    let room = &conversation.room;
    let now_secs = export.at_ms / 1000;
    let message = |m: &Message| message_json(m, signer, now_secs);
    json!({
        "exported_at": format_ms(export.at_ms),
        "conversation_id": room.id,
        "channel_id": room.channel_id,
        "state": room.state.as_str(),
        "created_at": format_ms(room.created_at_ms),
        "verified": room.verified,
        "identity": export.identity,
        "visitor": conversation.context.as_ref().map(|c| json!({
            "name": c.name,
            "email": c.email,
            "url": c.url,
            "title": c.title,
            "referrer": c.referrer,
            "language": c.language,
            "time_zone": c.time_zone,
            "utc_offset_minutes": c.utc_offset_minutes,
            "user_agent": c.user_agent,
        })),
        "prechat": room.prechat.as_ref().map(|p| json!({
            "name": p.name, "email": p.email, "question": p.question,
        })),
        "rating": room.rating.as_ref().map(|r| json!({
            "rating": r.rating,
            "comment": r.comment,
            "created_at": format_ms(r.created_at_ms),
        })),
        "messages": conversation.messages.iter().map(message).collect::<Vec<_>>(),
        "private_notes": {
            "about": "Agents' private notes about the visitor: never shown to the visitor.",
            "items": conversation.notes.iter().map(message).collect::<Vec<_>>(),
        },
    })
}

fn message_json(m: &Message, signer: &Signer, now_secs: i64) -> Value {
    json!({
        "id": m.id,
        "seq": m.seq,
        "kind": m.sender_kind.as_str(),
        "sender_name": m.sender_name,
        "content": m.content,
        "sent_at": format_ms(m.sent_at_ms),
        "state": m.state.as_str(),
        "read_at": m.read_at_ms.map(format_ms),
        "edited_at": m.edited_at_ms.map(format_ms),
        "deleted": m.deleted,
        "notice": m.notice,
        "quick_replies": m.quick_replies.iter()
            .map(|q| json!({"title": q.title, "payload": q.payload}))
            .collect::<Vec<_>>(),
        "postback": m.postback,
        "attachments": m.attachments.iter().map(|a| json!({
            "id": a.id,
            "name": a.name,
            "size": a.size,
            "content_type": a.content_type,
            "file": file_path(a),
            "url": signer.url(a.id.0, &a.name, Variant::File, now_secs, URL_TTL_SECS),
        })).collect::<Vec<_>>(),
    })
}

/// Whether a file's bytes are compressed already (deflating them again
/// costs time and saves nothing).
fn compressed(content_type: &str) -> bool {
    !(content_type.starts_with("text/")
        || content_type == "image/bmp"
        || content_type == "image/svg+xml"
        || content_type == "application/json")
}

/// Writes the archive of `export` to a temporary file and returns it,
/// rewound. Files are read from the file store one at a time.
pub async fn archive(
    export: Export,
    rights: &RightsService,
    signer: &Signer,
) -> Result<std::fs::File, ServiceError> {
    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    let internal = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("export: {e}"));
    let temp = tempfile::tempfile().map_err(|e| internal(&e))?;
    let mut zip = zip::ZipWriter::new(temp);
    let deflated = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(true);
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    let mut written = std::collections::HashSet::new();
    for conversation in &export.conversations {
        let body = conversation_json(&export, conversation, signer);
        let text = serde_json::to_vec_pretty(&body).map_err(|e| internal(&e))?;
        let name = format!("conversation-{}.json", conversation.room.id);
        // Small writes to a local file: done in place.
        zip = tokio::task::spawn_blocking(move || -> Result<_, zip::result::ZipError> {
            zip.start_file(name, deflated)?;
            zip.write_all(&text)?;
            Ok(zip)
        })
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?;
        for attachment in conversation.files() {
            if !written.insert(attachment.id) {
                continue;
            }
            let mut bytes = match rights.file(attachment).await {
                Ok(bytes) => bytes,
                Err(ServiceError::NotFound(_)) => continue,
                Err(err) => {
                    tracing::warn!(%err, id = %attachment.id, "an exported file is missing");
                    continue;
                }
            };
            let options = if compressed(&attachment.content_type) {
                stored
            } else {
                deflated
            };
            let path = file_path(attachment);
            zip = tokio::task::spawn_blocking(move || -> Result<_, zip::result::ZipError> {
                zip.start_file(path, options)?;
                Ok(zip)
            })
            .await
            .map_err(|e| internal(&e))?
            .map_err(|e| internal(&e))?;
            while let Some(chunk) = bytes.next().await {
                let chunk = chunk.map_err(|e| internal(&e))?;
                zip = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                    zip.write_all(&chunk)?;
                    Ok(zip)
                })
                .await
                .map_err(|e| internal(&e))?
                .map_err(|e| internal(&e))?;
            }
        }
    }
    tokio::task::spawn_blocking(move || -> Result<std::fs::File, zip::result::ZipError> {
        let mut file = zip.finish()?;
        file.rewind()?;
        Ok(file)
    })
    .await
    .map_err(|e| internal(&e))?
    .map_err(|e| internal(&e))
}

/// An audit log entry (`GET /audit`).
pub fn audit_entry(entry: &crate::domain::rights::AuditEntry) -> Value {
    use crate::domain::rights::AuditActor;
    let actor = match &entry.actor {
        AuditActor::Agent { id, name } => json!({"kind": "agent", "uuid": id, "name": name}),
        AuditActor::Retention => json!({"kind": "retention", "uuid": null, "name": null}),
    };
    json!({
        "uuid": entry.id,
        "at": format_ms(entry.at_ms),
        "action": entry.action.as_str(),
        "actor": actor,
        "conversations": entry.conversations,
        "detail": serde_json::from_str::<Value>(&entry.detail).unwrap_or(Value::Null),
    })
}

/// A tenant's settings (`GET /tenant`).
pub fn tenant(settings: &crate::domain::rights::TenantSettings) -> Value {
    json!({
        "uuid": settings.id,
        "name": settings.name,
        "retention_days": settings.retention.map(|d| d.get()),
    })
}

#[cfg(test)]
mod tests {
    use super::compressed;

    #[test]
    fn text_is_deflated_and_compressed_formats_stored() {
        assert!(!compressed("text/plain"));
        assert!(compressed("image/png"));
        assert!(compressed("application/pdf"));
        assert!(compressed("video/mp4"));
    }
}
