//! Supervision (role admin): every visitor room of the tenant in one list
//! ("All", filtered by state, channel, assignee and label with a plain GET form),
//! any of them read-only, and assigning or transferring one to an agent.
//! Reading marks nothing read, sends no typing and tells the visitor
//! nothing; the services enforce the role (403 for anyone else).

use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::pages::{self, Access};
use super::views::*;
use super::{redirect, render, Form, Request, Session};
use crate::domain::{AgentId, ChannelId, RoomId, RoomState};
use crate::error::ApiError;
use crate::service::error::{Conflict, ServiceError};
use crate::state::App;
use crate::store::RoomFilter;

/// Rooms per page of the All list.
const ALL_PAGE: u32 = 50;

/// GET /console/all?state=&channel=&assignee=&label=&page=
pub async fn all(app: &App, req: &Request, s: &Session) -> Result<Response, ApiError> {
    s.caller.require_admin()?;
    let state = req.query("state").and_then(RoomState::parse);
    let channel = req
        .query("channel")
        .and_then(|c| c.parse::<ChannelId>().ok());
    let assignee = req
        .query("assignee")
        .and_then(|a| a.parse::<Uuid>().ok())
        .map(AgentId);
    let label = req
        .query("label")
        .and_then(|l| l.parse::<crate::domain::LabelId>().ok());
    let page = req
        .query("page")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0)
        .min(10_000);
    let filter = RoomFilter {
        state,
        channel,
        assignee,
        label,
    };
    let rooms = app
        .services
        .rooms
        .all_rooms(&s.caller, filter, Some(ALL_PAGE), Some(page * ALL_PAGE))
        .await?;
    let names = pages::names(app, s).await?;
    let channels = app.services.channels.list(&s.caller).await?;
    let ids: Vec<RoomId> = rooms.items.iter().map(|r| r.room().id).collect();
    let given = app.services.rooms.visitor_names(&s.caller, &ids).await?;
    let me = s.caller.id().0;
    let rows = rooms
        .items
        .iter()
        .map(|live| {
            let room = live.room();
            let mut row = RoomRow::new(live, me, &names, "");
            if let Some(name) = given.get(&room.id) {
                row.name.clone_from(name);
                row.initials = initials(name);
            }
            AllRow {
                channel: room
                    .channel_id
                    .and_then(|c| channels.iter().find(|x| x.id == c))
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                assignee: room.assignee.and_then(|a| names.get(&a.0).cloned()),
                row,
            }
        })
        .collect();
    let mut agents: Vec<Choice> = names
        .iter()
        .map(|(id, name)| Choice {
            id: id.to_string(),
            name: name.clone(),
        })
        .collect();
    agents.sort_by_key(|a| a.name.to_lowercase());
    let selected = |v: Option<String>| v.unwrap_or_default();
    let query = |p: u32| {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(st) = state {
            q.push(("state", st.as_str().to_string()));
        }
        if let Some(c) = channel {
            q.push(("channel", c.to_string()));
        }
        if let Some(a) = assignee {
            q.push(("assignee", a.0.to_string()));
        }
        if let Some(l) = label {
            q.push(("label", l.to_string()));
        }
        if p > 0 {
            q.push(("page", p.to_string()));
        }
        serde_urlencoded::to_string(q).unwrap_or_default()
    };
    let total = rooms.filtered.max(0) as u64;
    let page_view = AllPage {
        chrome: pages::chrome(
            app,
            s,
            "All conversations".into(),
            "all",
            "/console/all".into(),
        )
        .await?,
        csrf: s.csrf.clone(),
        states: PRESENCE_STATES,
        room_states: ROOM_STATES,
        rows,
        total,
        state: selected(state.map(|s| s.as_str().to_string())),
        channel: selected(channel.map(|c| c.to_string())),
        assignee: selected(assignee.map(|a| a.0.to_string())),
        channels: channels
            .iter()
            .map(|c| Choice {
                id: c.id.to_string(),
                name: c.name.clone(),
            })
            .collect(),
        agents,
        label: selected(label.map(|l| l.to_string())),
        labels: app
            .services
            .labels
            .list(&s.caller)
            .await?
            .iter()
            .map(|l| Choice {
                id: l.id.to_string(),
                name: l.name.as_str().to_string(),
            })
            .collect(),
        filtered: state.is_some() || channel.is_some() || assignee.is_some() || label.is_some(),
        prev: page.checked_sub(1).map(query),
        next: (u64::from(page + 1) * u64::from(ALL_PAGE) < total).then(|| query(page + 1)),
    };
    render(StatusCode::OK, &page_view)
}

/// GET /console/all/<room>: any visitor room of the tenant, read-only.
pub async fn conversation(
    app: &App,
    req: &Request,
    s: &Session,
    id: RoomId,
) -> Result<Response, ApiError> {
    s.caller.require_admin()?;
    let names = pages::names(app, s).await?;
    let conversation = pages::conversation(app, req, s, id, &names, Access::Supervised).await?;
    let page = SupervisePage {
        chrome: pages::chrome(
            app,
            s,
            conversation.name.clone(),
            "all",
            Access::Supervised.url(id),
        )
        .await?,
        conversation,
        notice: notice(req.query("notice")),
        csrf: s.csrf.clone(),
        reactions: QUICK_REACTIONS,
        states: PRESENCE_STATES,
    };
    render(StatusCode::OK, &page)
}

/// POST /console/all/<room>/assign `user_uuid`: the agent joins and becomes
/// its assignee (a queued room leaves the queue; an open one's former
/// assignee leaves).
pub async fn assign(app: &App, s: &Session, id: RoomId, form: &Form) -> Result<Response, ApiError> {
    s.caller.require_admin()?;
    let back = Access::Supervised.url(id);
    let Some(to) = form.get("user_uuid").and_then(|u| u.parse::<Uuid>().ok()) else {
        return Ok(redirect(&format!("{back}?notice=invalid")));
    };
    match app.services.rooms.assign(&s.caller, id, to).await {
        Ok(_) => Ok(redirect(&format!("{back}?notice=assigned#latest"))),
        Err(ServiceError::Conflict(Conflict::AlreadyAnswered)) => {
            Ok(redirect(&format!("{back}?notice=taken#latest")))
        }
        // Not an agent of the tenant, or a room closed meanwhile.
        Err(ServiceError::InvalidField { .. } | ServiceError::Conflict(_)) => {
            Ok(redirect(&format!("{back}?notice=invalid#latest")))
        }
        Err(err) => Err(err.into()),
    }
}
