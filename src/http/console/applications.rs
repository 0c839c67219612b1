//! The applications admin page (role admin, checked by the service on
//! every call): the tenant's applications (bots), creating one (its token
//! shown once) and revoking one.

use askama::Template;
use warp::reply::Response;

use super::admin::chrome;
use super::views::{Chrome, PRESENCE_STATES};
use super::{redirect, render, Form, Session};
use crate::domain::application::Application;
use crate::domain::time::format_ms;
use crate::domain::AgentId;
use crate::error::ApiError;
use crate::service::applications::NewApplication;
use crate::state::App;

/// An application as its admin page lists it.
pub struct ApplicationRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    /// When it was revoked, or `None` while it works.
    pub revoked: Option<String>,
}

impl ApplicationRow {
    fn new(a: &Application) -> ApplicationRow {
        ApplicationRow {
            id: a.id.to_string(),
            name: a.name.clone(),
            scopes: a.scopes.names().join(", "),
            created: format_ms(a.created_at_ms),
            revoked: a.revoked_at_ms.map(format_ms),
        }
    }
}

/// GET /console/admin/applications
#[derive(Template)]
#[template(path = "console/applications.html")]
pub struct ApplicationsPage {
    pub chrome: Chrome,
    pub applications: Vec<ApplicationRow>,
    /// A new application's name and token: shown this once.
    pub created: Option<(String, String)>,
    pub error: Option<String>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

/// GET /console/admin/applications
pub async fn list(
    app: &App,
    s: &Session,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let chrome = chrome(
        app,
        s,
        "Applications",
        "applications",
        "/console/admin/applications".into(),
    )
    .await?;
    let applications = app.services.applications.list(&s.caller).await?;
    let status = super::form_status(&error);
    render(
        status,
        &ApplicationsPage {
            chrome,
            applications: applications.iter().map(ApplicationRow::new).collect(),
            created,
            error,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/applications `name`, `scopes` (one field per
/// scope): the page again, with the token shown once.
pub async fn create(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let new = NewApplication {
        name: form.get("name").unwrap_or("").to_string(),
        scopes: form.all("scopes").into_iter().map(str::to_string).collect(),
    };
    match app.services.applications.create(&s.caller, new).await {
        Ok(created) => {
            let shown = (created.application.name.clone(), created.token);
            list(app, s, Some(shown), None).await
        }
        Err(err) => list(app, s, None, Some(super::refusal(err)?)).await,
    }
}

/// POST /console/admin/applications/<id>/revoke
pub async fn revoke(app: &App, s: &Session, id: AgentId) -> Result<Response, ApiError> {
    app.services.applications.revoke(&s.caller, id).await?;
    Ok(redirect("/console/admin/applications"))
}
