//! Data rights in the console (admins): "Export data" and "Erase visitor"
//! on a supervised visitor conversation (the erasure confirmed on a page of
//! its own, a plain form with the CSRF token, so it works without
//! JavaScript), and the "Data" admin page: the tenant's retention and its
//! audit log. The rules are `service::rights`'.

use warp::http::StatusCode;
use warp::reply::Response;

use super::admin::{chrome, form_status};
use super::views::{notice, AuditRow, DataPage, ErasePage, PRESENCE_STATES};
use super::{redirect, render, Form, Request, Session};
use crate::domain::rights::{AuditActor, RetentionDays, MAX_RETENTION_DAYS};
use crate::domain::time::format_ms;
use crate::domain::RoomId;
use crate::error::ApiError;
use crate::state::App;

/// Audit entries the data page shows (the newest).
const AUDIT_SHOWN: u32 = 100;

/// GET /console/all/<room>/export: the visitor's archive, downloaded.
pub async fn export(app: &App, s: &Session, id: RoomId) -> Result<Response, ApiError> {
    let services = &app.services;
    let export = services.rights.export(&s.caller, id).await?;
    let file = crate::wire::export::archive(export, &services.rights, &services.signer).await?;
    Ok(crate::http::files::file_download(
        file,
        "application/zip",
        &crate::wire::export::archive_name(id),
    ))
}

/// GET /console/all/<room>/erase: the confirmation.
pub async fn confirm_erase(app: &App, s: &Session, id: RoomId) -> Result<Response, ApiError> {
    let room = app.services.rooms.supervised_room(&s.caller, id).await?;
    let back = format!("/console/all/{id}/erase");
    let chrome = chrome(app, s, "Erase visitor", "all", back).await?;
    let name = app
        .services
        .rooms
        .visitor_names(&s.caller, &[id])
        .await?
        .remove(&id)
        .unwrap_or_else(|| "this visitor".to_string());
    render(
        StatusCode::OK,
        &ErasePage {
            chrome,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
            id: id.to_string(),
            name,
            verified: room.room().verified,
        },
    )
}

/// POST /console/all/<room>/erase: erases the visitor, back to the
/// conversation (its shell).
pub async fn erase(app: &App, s: &Session, id: RoomId) -> Result<Response, ApiError> {
    app.services.rights.erase(&s.caller, id).await?;
    Ok(redirect(&format!("/console/all/{id}?notice=erased")))
}

/// GET /console/admin/data: retention and the audit log.
pub async fn data(
    app: &App,
    req: &Request,
    s: &Session,
    error: Option<(String, String)>,
) -> Result<Response, ApiError> {
    let chrome = chrome(
        app,
        s,
        "Data & privacy",
        "data",
        "/console/admin/data".into(),
    )
    .await?;
    let rights = &app.services.rights;
    let settings = rights.settings(&s.caller).await?;
    let log = rights.audit_log(&s.caller, AUDIT_SHOWN, 0).await?;
    let entries = log
        .items
        .iter()
        .map(|e| AuditRow {
            at: when(e.at_ms),
            action: match e.action {
                crate::domain::rights::AuditAction::VisitorErased => "Erased",
                crate::domain::rights::AuditAction::VisitorExported => "Exported",
            },
            actor: match &e.actor {
                AuditActor::Agent { name, .. } => name.clone(),
                AuditActor::Retention => "Retention".to_string(),
            },
            conversations: e.conversations.iter().map(ToString::to_string).collect(),
            detail: detail(&e.detail),
        })
        .collect();
    let (retention_days, error) = match error {
        Some((typed, message)) => (typed, Some(message)),
        None => (
            settings
                .retention
                .map(|d| d.get().to_string())
                .unwrap_or_default(),
            None,
        ),
    };
    render(
        form_status(error.is_some()),
        &DataPage {
            chrome,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
            retention_days,
            max_days: MAX_RETENTION_DAYS,
            error,
            notice: notice(req.query("notice")),
            entries,
            total: log.total,
        },
    )
}

/// POST /console/admin/data `retention_days` (empty: off).
pub async fn set_retention(
    app: &App,
    req: &Request,
    s: &Session,
    form: &Form,
) -> Result<Response, ApiError> {
    let typed = form.get("retention_days").unwrap_or("").trim().to_string();
    let retention = if typed.is_empty() {
        None
    } else {
        match typed.parse::<i64>().ok().and_then(RetentionDays::parse) {
            Some(days) => Some(days),
            None => {
                let message = format!(
                    "Retention must be a whole number of days, 1 to {MAX_RETENTION_DAYS}, or empty for never."
                );
                return data(app, req, s, Some((typed, message))).await;
            }
        }
    };
    app.services
        .rights
        .set_retention(&s.caller, retention)
        .await?;
    Ok(redirect("/console/admin/data?notice=retention"))
}

/// `2026-12-06 10:37:30 UTC`.
fn when(ms: i64) -> String {
    let iso = format_ms(ms);
    match (iso.get(..10), iso.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => iso,
    }
}

/// An entry's counts in words: "2 conversations, 14 messages, 1 file".
fn detail(raw: &str) -> String {
    let Ok(serde_json::Value::Object(counts)) = serde_json::from_str(raw) else {
        return String::new();
    };
    ["conversations", "messages", "notes", "files"]
        .iter()
        .filter_map(|key| {
            let n = counts.get(*key)?.as_u64()?;
            let word = if n == 1 {
                key.trim_end_matches('s')
            } else {
                key
            };
            Some(format!("{n} {word}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_as_words() {
        assert_eq!(
            super::detail(r#"{"conversations":1,"messages":14,"notes":0,"files":1}"#),
            "1 conversation, 14 messages, 0 notes, 1 file"
        );
        assert_eq!(super::detail("not json"), "");
    }
}
