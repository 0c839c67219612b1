//! Admin pages (role admin, checked by the services on every call):
//! channels (create, settings, the embed snippet, disconnect) and agents
//! (invite with a generated password shown once, role, disable), labels
//! (create, rename, recolour, delete), canned responses (list, create, edit, delete).

use askama::Template;
use serde_json::{json, Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;

use super::views::{Chip, Chrome, LabelAdminRow, LabelsPage, PRESENCE_STATES};
use super::{asset_version, redirect, render, Form, Request, Session};
use crate::auth::random_secret;
use crate::domain::{AgentId, CannedResponseId, Channel, ChannelId, LabelId};
use crate::error::ApiError;
use crate::service::agents::{AgentPatch, NewAgent};
use crate::service::canned::{CannedFields, CannedQuery};
use crate::service::labels::LabelFields;
use crate::state::App;

pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub connected: bool,
    pub assignment: &'static str,
}

impl ChannelRow {
    fn new(c: &Channel) -> ChannelRow {
        ChannelRow {
            id: c.id.0.to_string(),
            name: c.name.clone(),
            connected: c.connected,
            assignment: match c.routing.assignment.as_str() {
                "round_robin" => "Round robin",
                _ => "Manual",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "console/channels.html")]
pub struct ChannelsPage {
    pub chrome: Chrome,
    pub channels: Vec<ChannelRow>,
    pub error: Option<String>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

#[derive(Template)]
#[template(path = "console/channel.html")]
pub struct ChannelPage {
    pub chrome: Chrome,
    pub id: String,
    pub name: String,
    pub image_url: String,
    pub welcome_message: String,
    pub color: String,
    pub round_robin: bool,
    pub max_open: u32,
    /// The channel's bot (an application's id), or empty.
    pub bot: String,
    /// The tenant's live applications: the bot's choices.
    pub bots: Vec<(String, String)>,
    pub origins: String,
    pub connected: bool,
    pub snippet: String,
    pub desk: DeskForm,
    /// The widget offers email (desk-api.md, `email_fallback`)…
    pub email_fallback: bool,
    /// …which needs `CHATGATE_SMTP_URL`: without it the box says so.
    pub smtp_configured: bool,
    /// The secret the site signs its customers' ids with.
    pub identity_secret: String,
    /// Just rotated: the previous secret still verifies for a while.
    pub rotated: bool,
    pub error: Option<String>,
    pub saved: bool,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

/// The support-desk settings as the channel page's form shows them.
pub struct DeskForm {
    pub hours_on: bool,
    pub time_zone: String,
    /// (`mon`, `Monday`, `09:00-12:00, 13:00-17:30`)
    pub days: Vec<(&'static str, &'static str, String)>,
    /// One per line.
    pub closed_dates: String,
    pub away_message: String,
    /// (`name`, `Name`, `off|optional|required`)
    pub prechat: Vec<(&'static str, &'static str, &'static str)>,
    pub auto_close_hours: String,
    /// Every IANA zone name, for the time zone input's suggestions.
    pub zones: Vec<&'static str>,
}

const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

impl DeskForm {
    fn new(desk: &crate::domain::ChannelDesk) -> DeskForm {
        let hours = desk.business_hours.as_ref().map(|h| h.to_json());
        let days = crate::domain::desk::DAYS
            .iter()
            .zip(DAY_NAMES)
            .map(|(key, label)| {
                let ranges = hours
                    .as_ref()
                    .and_then(|h| h["weekly"][*key].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .map(|r| {
                        format!(
                            "{}-{}",
                            r[0].as_str().unwrap_or(""),
                            r[1].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                (*key, label, ranges)
            })
            .collect();
        DeskForm {
            hours_on: hours.is_some(),
            time_zone: hours
                .as_ref()
                .and_then(|h| h["time_zone"].as_str().map(str::to_string))
                .unwrap_or_else(|| "UTC".into()),
            days,
            closed_dates: hours
                .as_ref()
                .and_then(|h| h["closed_dates"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            away_message: desk.away_message.clone().unwrap_or_default(),
            prechat: crate::domain::desk::PRECHAT_FIELDS
                .iter()
                .zip(["Name", "Email", "Question"])
                .map(|(key, label)| (*key, label, desk.prechat.get(key).as_str()))
                .collect(),
            auto_close_hours: desk
                .auto_close_hours
                .map(|h| h.to_string())
                .unwrap_or_default(),
            zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        }
    }
}

/// The desk part of the channel page's form as the API's JSON fields
/// (the form has them when it carries `desk`): business hours as typed
/// (`09:00-12:00, 13:00-17:30` a day, dates one per line), validated by the
/// API's parser.
fn desk_fields(form: &Form, body: &mut Map<String, Value>) {
    if form.get("desk").is_none() {
        return;
    }
    let hours = if form.get("hours_on").is_some() {
        let weekly: Map<String, Value> = crate::domain::desk::DAYS
            .iter()
            .map(|day| {
                let ranges: Vec<Value> = form
                    .get(&format!("hours_{day}"))
                    .unwrap_or_default()
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(|r| match r.split_once(['-', '–']) {
                        Some((a, b)) => json!([a.trim(), b.trim()]),
                        None => json!([r]),
                    })
                    .collect();
                (day.to_string(), Value::Array(ranges))
            })
            .collect();
        let dates: Vec<Value> = form
            .get("closed_dates")
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|d| !d.is_empty())
            .map(|d| Value::String(d.to_string()))
            .collect();
        json!({
            "time_zone": form.get("time_zone").unwrap_or_default().trim(),
            "weekly": weekly,
            "closed_dates": dates,
        })
    } else {
        Value::Null
    };
    body.insert("business_hours".into(), hours);
    let away = form.get("away_message").unwrap_or_default().trim();
    body.insert(
        "away_message".into(),
        if away.is_empty() {
            Value::Null
        } else {
            Value::String(away.into())
        },
    );
    let prechat: Map<String, Value> = crate::domain::desk::PRECHAT_FIELDS
        .iter()
        .filter_map(|f| {
            form.get(&format!("prechat_{f}"))
                .map(|v| (f.to_string(), Value::String(v.to_string())))
        })
        .collect();
    body.insert("prechat".into(), Value::Object(prechat));
    // A checkbox sends nothing when unticked: the desk form always has it.
    body.insert(
        "email_fallback".into(),
        Value::Bool(form.get("email_fallback").is_some()),
    );
    let auto = form.get("auto_close_hours").unwrap_or_default().trim();
    body.insert(
        "auto_close_hours".into(),
        if auto.is_empty() {
            Value::Null
        } else {
            auto.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(auto.into()))
        },
    );
}

pub struct AgentAdminRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub admin: bool,
    pub disabled: bool,
    pub me: bool,
}

#[derive(Template)]
#[template(path = "console/agents.html")]
pub struct AgentsPage {
    pub chrome: Chrome,
    pub agents: Vec<AgentAdminRow>,
    /// The email and password of an agent just invited: shown this once.
    pub invited: Option<(String, String)>,
    pub error: Option<String>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

pub(super) async fn chrome(
    app: &App,
    s: &Session,
    title: &str,
    nav: &'static str,
    back: String,
) -> Result<Chrome, ApiError> {
    s.caller.require_admin()?;
    let presence = app.services.presence.get(&s.caller, s.caller.id()).await?;
    Ok(Chrome {
        title: title.to_string(),
        nav,
        me_id: s.caller.id().0.to_string(),
        me_name: s.caller.agent.display_name.clone(),
        is_admin: true,
        token: s.token.clone(),
        presence: presence.presence.state,
        back,
        version: asset_version(),
    })
}

/// GET /console/admin/channels
pub async fn channels(app: &App, s: &Session, error: Option<String>) -> Result<Response, ApiError> {
    let chrome = chrome(
        app,
        s,
        "Channels",
        "channels",
        "/console/admin/channels".into(),
    )
    .await?;
    let channels = app.services.channels.list(&s.caller).await?;
    let status = form_status(error.is_some());
    render(
        status,
        &ChannelsPage {
            chrome,
            channels: channels.iter().map(ChannelRow::new).collect(),
            error,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// The colour the widget shows for a channel that has none (`--c` in
/// widget/widget.css; a unit test keeps the two the same). The settings
/// page's colour picker shows it, since a picker cannot show "none".
pub const WIDGET_DEFAULT_COLOR: &str = "#4f46e5";

/// The form's channel settings as the API's JSON body, validated by the
/// same parser as `/channels.update`.
///
/// The colour is left as it is when the picker still holds the colour the
/// page showed (`color_shown`): saving other settings never turns "the
/// widget's default" into a stored colour.
fn settings(form: &Form) -> Result<crate::service::channels::ChannelSettings, ApiError> {
    let mut body = Map::new();
    let color_untouched = match (form.get("color"), form.get("color_shown")) {
        (Some(color), Some(shown)) => color.trim().eq_ignore_ascii_case(shown.trim()),
        _ => false,
    };
    for field in [
        "name",
        "image_url",
        "welcome_message",
        "color",
        "assignment",
        "bot",
    ] {
        if field == "color" && color_untouched {
            continue;
        }
        if let Some(value) = form.get(field) {
            let value = value.trim();
            body.insert(
                field.into(),
                if value.is_empty() && field != "name" {
                    Value::Null
                } else {
                    Value::String(value.to_string())
                },
            );
        }
    }
    if let Some(max) = form.get("max_open_per_agent") {
        body.insert(
            "max_open_per_agent".into(),
            max.trim()
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(max.to_string())),
        );
    }
    if let Some(origins) = form.get("allowed_origins") {
        body.insert(
            "allowed_origins".into(),
            origins
                .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
                .filter(|o| !o.trim().is_empty())
                .map(|o| Value::String(o.trim().to_string()))
                .collect(),
        );
    }
    desk_fields(form, &mut body);
    crate::http::channels::settings(&body)
}

/// POST /console/admin/channels: a new channel, then its settings page.
pub async fn create_channel(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let created = match settings(form) {
        Ok(settings) => app
            .services
            .channels
            .connect(&s.caller, settings)
            .await
            .map_err(ApiError::from),
        Err(err) => Err(err),
    };
    match created {
        Ok(channel) => Ok(redirect(&format!(
            "/console/admin/channels/{}",
            channel.id.0
        ))),
        Err(err) if err.status == StatusCode::BAD_REQUEST => {
            channels(app, s, Some(err.message)).await
        }
        Err(err) => Err(err),
    }
}

/// GET /console/admin/channels/<id>
pub async fn channel(
    app: &App,
    req: &Request,
    s: &Session,
    id: ChannelId,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let back = format!("/console/admin/channels/{}", id.0);
    let chrome = chrome(app, s, "Channel settings", "channels", back).await?;
    let c = app.services.channels.get(&s.caller, id).await?;
    let identity_secret = app.services.identity.secrets(&s.caller, id).await?.secret;
    let bots = app
        .services
        .applications
        .list(&s.caller)
        .await?
        .into_iter()
        .filter(|a| !a.is_revoked())
        .map(|a| (a.id.to_string(), a.name))
        .collect();
    let host = req
        .host
        .clone()
        .unwrap_or_else(|| "chat.example.com".into());
    let status = form_status(error.is_some());
    render(
        status,
        &ChannelPage {
            chrome,
            id: c.id.0.to_string(),
            // The scheme the admin reached the console with: http on a
            // bare local server, https behind a TLS proxy.
            snippet: format!(
                "<script src=\"{}://{host}/widget.js\" data-channel-id=\"{}\" async></script>",
                if req.secure { "https" } else { "http" },
                c.id.0
            ),
            name: c.name,
            image_url: c.image_url.unwrap_or_default(),
            welcome_message: c.look.welcome_message.unwrap_or_default(),
            color: c.look.color.unwrap_or_else(|| WIDGET_DEFAULT_COLOR.into()),
            round_robin: c.routing.assignment.as_str() == "round_robin",
            max_open: c.routing.max_open_per_agent,
            bot: c.routing.bot.map(|b| b.to_string()).unwrap_or_default(),
            bots,
            origins: c
                .allowed_origins
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            connected: c.connected,
            desk: DeskForm::new(&c.desk),
            email_fallback: c.look.email_fallback,
            smtp_configured: app.services.email.enabled(),
            identity_secret,
            rotated: req.query("rotated").is_some(),
            error,
            saved: req.query("saved").is_some(),
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/channels/<id>: saves the settings.
pub async fn update_channel(
    app: &App,
    req: &Request,
    s: &Session,
    id: ChannelId,
    form: &Form,
) -> Result<Response, ApiError> {
    let updated = match settings(form) {
        Ok(settings) => app
            .services
            .channels
            .update(&s.caller, id, settings)
            .await
            .map_err(ApiError::from),
        Err(err) => Err(err),
    };
    match updated {
        Ok(_) => Ok(redirect(&format!(
            "/console/admin/channels/{}?saved=1",
            id.0
        ))),
        Err(err) if err.status == StatusCode::BAD_REQUEST => {
            channel(app, req, s, id, Some(err.message)).await
        }
        Err(err) => Err(err),
    }
}

/// POST /console/admin/channels/<id>/disconnect
pub async fn disconnect_channel(
    app: &App,
    s: &Session,
    id: ChannelId,
) -> Result<Response, ApiError> {
    app.services.channels.disconnect(&s.caller, id).await?;
    Ok(redirect("/console/admin/channels"))
}

/// POST /console/admin/channels/<id>/identity: a new identity secret.
pub async fn rotate_identity_secret(
    app: &App,
    s: &Session,
    id: ChannelId,
) -> Result<Response, ApiError> {
    app.services.identity.rotate(&s.caller, id).await?;
    Ok(redirect(&format!(
        "/console/admin/channels/{}?rotated=1",
        id.0
    )))
}

/// GET /console/admin/agents
pub async fn agents(
    app: &App,
    s: &Session,
    invited: Option<(String, String)>,
) -> Result<Response, ApiError> {
    agents_page(app, s, invited, None).await
}

async fn agents_page(
    app: &App,
    s: &Session,
    invited: Option<(String, String)>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let chrome = chrome(app, s, "Agents", "agents", "/console/admin/agents".into()).await?;
    let mut agents: Vec<AgentAdminRow> = app
        .services
        .agents
        .list(&s.caller)
        .await?
        .into_iter()
        .map(|a| AgentAdminRow {
            me: a.id == s.caller.id(),
            id: a.id.0.to_string(),
            name: a.display_name,
            email: a.email,
            admin: a.role == crate::domain::Role::Admin,
            disabled: a.disabled,
        })
        .collect();
    agents.sort_by(|a, b| {
        a.disabled
            .cmp(&b.disabled)
            .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    let status = form_status(error.is_some());
    render(
        status,
        &AgentsPage {
            chrome,
            agents,
            invited,
            error,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/agents: invites an agent with a generated password,
/// shown on this page once (never stored in clear, never in a URL).
pub async fn invite_agent(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let password = random_secret(16);
    let new = NewAgent {
        email: form.get("email").unwrap_or_default().to_string(),
        display_name: form
            .get("display_name")
            .unwrap_or_default()
            .trim()
            .to_string(),
        password: password.clone(),
        role: form.get("role").map(str::to_string),
        avatar_url: None,
    };
    match app.services.agents.create(&s.caller, new).await {
        Ok(agent) => agents_page(app, s, Some((agent.email, password)), None).await,
        Err(err) => agents_page(app, s, None, Some(super::refusal(err)?)).await,
    }
}

/// POST /console/admin/agents/<id>: `role`, or `disabled` (true|false).
pub async fn update_agent(
    app: &App,
    s: &Session,
    id: AgentId,
    form: &Form,
) -> Result<Response, ApiError> {
    let patch = AgentPatch {
        role: form.get("role").map(str::to_string),
        disabled: form.get("disabled").map(|d| d == "true"),
        ..AgentPatch::default()
    };
    match app.services.agents.update(&s.caller, id, patch).await {
        Ok(_) => Ok(redirect("/console/admin/agents")),
        Err(err) => agents_page(app, s, None, Some(super::refusal(err)?)).await,
    }
}

/// GET /console/admin/labels: the tenant's labels (create, rename,
/// recolour, delete).
pub async fn labels(app: &App, s: &Session, error: Option<String>) -> Result<Response, ApiError> {
    let chrome = chrome(app, s, "Labels", "labels", "/console/admin/labels".into()).await?;
    let labels = app
        .services
        .labels
        .list(&s.caller)
        .await?
        .iter()
        .map(|l| LabelAdminRow {
            chip: Chip::new(&l.on_room()),
            color: l.color.as_str().to_string(),
        })
        .collect();
    let status = form_status(error.is_some());
    render(
        status,
        &LabelsPage {
            chrome,
            labels,
            error,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

fn label_fields(form: &Form) -> LabelFields {
    LabelFields {
        name: form.get("name").map(str::to_string),
        color: form.get("color").map(str::to_string),
    }
}

/// POST /console/admin/labels `name`, `color`.
pub async fn create_label(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    match app
        .services
        .labels
        .create(&s.caller, label_fields(form))
        .await
    {
        Ok(_) => Ok(redirect("/console/admin/labels")),
        Err(err) => labels(app, s, Some(super::refusal(err)?)).await,
    }
}

/// POST /console/admin/labels/<id> `name`, `color`.
pub async fn update_label(
    app: &App,
    s: &Session,
    id: LabelId,
    form: &Form,
) -> Result<Response, ApiError> {
    match app
        .services
        .labels
        .update(&s.caller, id, label_fields(form))
        .await
    {
        Ok(_) => Ok(redirect("/console/admin/labels")),
        Err(err) => labels(app, s, Some(super::refusal(err)?)).await,
    }
}

/// POST /console/admin/labels/<id>/delete: off every conversation too.
pub async fn delete_label(app: &App, s: &Session, id: LabelId) -> Result<Response, ApiError> {
    app.services.labels.delete(&s.caller, id).await?;
    Ok(redirect("/console/admin/labels"))
}

/// A canned response as its admin page lists it.
pub struct CannedRow {
    pub id: String,
    pub shortcut: String,
    pub title: String,
    /// The start of its text, on one line.
    pub preview: String,
}

/// What the canned-response form holds: as stored, or as the admin typed
/// it when it was refused.
#[derive(Default)]
pub struct CannedDraft {
    pub shortcut: String,
    pub title: String,
    pub content: String,
}

impl CannedDraft {
    fn from_form(form: &Form) -> CannedDraft {
        let get = |name: &str| form.get(name).unwrap_or_default().to_string();
        CannedDraft {
            shortcut: get("shortcut"),
            title: get("title"),
            content: get("content"),
        }
    }

    fn fields(&self) -> CannedFields {
        CannedFields {
            shortcut: Some(self.shortcut.clone()),
            title: Some(self.title.clone()),
            content: Some(self.content.clone()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/canned.html")]
pub struct CannedPage {
    pub chrome: Chrome,
    pub items: Vec<CannedRow>,
    pub draft: CannedDraft,
    pub max_chars: usize,
    pub error: Option<String>,
    pub saved: bool,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

#[derive(Template)]
#[template(path = "console/canned_edit.html")]
pub struct CannedEditPage {
    pub chrome: Chrome,
    pub id: String,
    /// As stored (the page's title), whatever the draft says.
    pub shortcut: String,
    pub draft: CannedDraft,
    pub max_chars: usize,
    pub error: Option<String>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

/// The first line of a text, cut at `max` characters with an ellipsis.
fn preview(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let cut: String = line.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    }
}

/// GET /console/admin/canned
pub async fn canned(app: &App, req: &Request, s: &Session) -> Result<Response, ApiError> {
    canned_page(
        app,
        s,
        CannedDraft::default(),
        None,
        req.query("saved").is_some(),
    )
    .await
}

async fn canned_page(
    app: &App,
    s: &Session,
    draft: CannedDraft,
    error: Option<String>,
    saved: bool,
) -> Result<Response, ApiError> {
    let chrome = chrome(
        app,
        s,
        "Canned responses",
        "canned",
        "/console/admin/canned".into(),
    )
    .await?;
    let page = app
        .services
        .canned
        .list(
            &s.caller,
            CannedQuery {
                limit: Some(crate::service::canned::MAX_LIMIT),
                ..CannedQuery::default()
            },
        )
        .await?;
    let status = form_status(error.is_some());
    render(
        status,
        &CannedPage {
            chrome,
            items: page
                .items
                .iter()
                .map(|c| CannedRow {
                    id: c.id.to_string(),
                    shortcut: c.shortcut.clone(),
                    title: c.title.clone(),
                    preview: preview(&c.content, 90),
                })
                .collect(),
            draft,
            max_chars: app.config.max_text_chars,
            error,
            saved,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// GET /console/admin/canned/<id>
pub async fn canned_edit(
    app: &App,
    s: &Session,
    id: CannedResponseId,
) -> Result<Response, ApiError> {
    canned_edit_page(app, s, id, None, None).await
}

async fn canned_edit_page(
    app: &App,
    s: &Session,
    id: CannedResponseId,
    draft: Option<CannedDraft>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let back = format!("/console/admin/canned/{id}");
    let chrome = chrome(app, s, "Edit canned response", "canned", back).await?;
    let stored = app.services.canned.get(&s.caller, id).await?;
    let status = form_status(error.is_some());
    render(
        status,
        &CannedEditPage {
            chrome,
            id: id.to_string(),
            draft: draft.unwrap_or_else(|| CannedDraft {
                shortcut: stored.shortcut.clone(),
                title: stored.title.clone(),
                content: stored.content.clone(),
            }),
            shortcut: stored.shortcut,
            max_chars: app.config.max_text_chars,
            error,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
        },
    )
}

/// POST /console/admin/canned: a new canned response; a refusal shows the
/// page again with what was typed.
pub async fn create_canned(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let draft = CannedDraft::from_form(form);
    match app.services.canned.create(&s.caller, draft.fields()).await {
        Ok(_) => Ok(redirect("/console/admin/canned?saved=1")),
        Err(err) => canned_page(app, s, draft, Some(super::refusal(err)?), false).await,
    }
}

/// POST /console/admin/canned/<id>: saves shortcut, title and text.
pub async fn update_canned(
    app: &App,
    s: &Session,
    id: CannedResponseId,
    form: &Form,
) -> Result<Response, ApiError> {
    let draft = CannedDraft::from_form(form);
    match app
        .services
        .canned
        .update(&s.caller, id, draft.fields())
        .await
    {
        Ok(_) => Ok(redirect("/console/admin/canned?saved=1")),
        Err(err) => {
            let error = super::refusal(err)?;
            canned_edit_page(app, s, id, Some(draft), Some(error)).await
        }
    }
}

/// POST /console/admin/canned/<id>/delete
pub async fn delete_canned(
    app: &App,
    s: &Session,
    id: CannedResponseId,
) -> Result<Response, ApiError> {
    app.services.canned.delete(&s.caller, id).await?;
    Ok(redirect("/console/admin/canned"))
}

/// An admin page's status: 400 when it shows a refused form again, else 200.
pub(super) fn form_status(refused: bool) -> StatusCode {
    if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    use super::{settings, Form, WIDGET_DEFAULT_COLOR};

    fn form(fields: &[(&str, &str)]) -> Form {
        Form(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_colour_left_as_the_page_showed_it_is_not_saved() {
        let untouched = settings(&form(&[
            ("name", "Shop"),
            ("color", "#4F46E5"),
            ("color_shown", "#4f46e5"),
        ]))
        .unwrap();
        assert_eq!(untouched.color, None, "kept as stored (none)");
        assert_eq!(untouched.name.as_deref(), Some("Shop"));

        let picked = settings(&form(&[("color", "#0f766e"), ("color_shown", "#4f46e5")])).unwrap();
        assert_eq!(picked.color, Some(Some("#0f766e".to_string())));

        let api_style = settings(&form(&[("color", "#0f766e")])).unwrap();
        assert_eq!(api_style.color, Some(Some("#0f766e".to_string())));
    }

    #[test]
    fn the_settings_page_default_colour_is_the_widgets() {
        let css = include_str!("../../../widget/widget.css");
        assert!(
            css.contains(&format!("--c: {WIDGET_DEFAULT_COLOR};")),
            "widget.css's default --c is not {WIDGET_DEFAULT_COLOR}"
        );
    }
}
