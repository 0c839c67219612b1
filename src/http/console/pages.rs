//! The agent's pages: login and logout, the inbox (queue, my rooms, team
//! rooms, closed rooms), a conversation, colleagues, presence; and the
//! forms that change them. Each form posts, calls one service, and
//! redirects (303) to the page that shows the result.

use std::collections::HashMap;

use uuid::Uuid;
use warp::http::header::{self, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;

use super::session::{self, LOGIN_COOKIE, SESSION_COOKIE};
use super::views::*;
use super::{asset_version, redirect, render, Form, Request, Session};
use crate::auth::random_secret;
use crate::domain::{
    AgentId, AttachmentId, LiveRoom, MessageId, PresenceState, RoomId, RoomKind, RoomState,
    RoomSummary, SenderKind,
};
use crate::error::ApiError;
use crate::service::error::{Conflict, Missing, ServiceError};
use crate::service::messages::Listing;
use crate::service::presence::PresenceChange;
use crate::service::rooms::RoomRef;
use crate::state::App;
use crate::store::RoomFilter;

/// Messages per page of a conversation.
const PAGE: u32 = 50;
/// How long a console login lasts: a working day and then some (the API's
/// default token lifetime is an hour).
const SESSION_SECS: i64 = 12 * 3600;
/// Rooms per page of the inbox's lists (my rooms and closed rooms share it).
const ROOMS_PAGE: u32 = 100;

/// The agent of the session cookie, if it is still valid.
pub async fn session(app: &App, req: &Request) -> Result<Option<Session>, ApiError> {
    let Some(token) = req.cookies.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    // People only: an application token in the cookie is no session.
    match app.services.agents.authenticate_person(Some(token)).await {
        Ok(caller) => Ok(Some(Session {
            caller,
            csrf: session::csrf_token(token),
            token: token.clone(),
        })),
        Err(ServiceError::InvalidToken) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn set_cookie(response: &mut Response, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// GET /console/login
pub fn login_form(
    app: &App,
    req: &Request,
    error: Option<(StatusCode, String)>,
) -> Result<Response, ApiError> {
    let _ = app;
    let login_token = random_secret(32);
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let page = LoginPage {
        login_token: login_token.clone(),
        error,
        email: req.form().get("email").unwrap_or_default().to_string(),
        version: asset_version(),
    };
    let mut response = render(status, &page)?;
    set_cookie(
        &mut response,
        session::cookie(LOGIN_COOKIE, &login_token, 3600, "Strict", req.secure),
    );
    Ok(response)
}

/// POST /console/login: email and password; sets the session cookie.
pub async fn login(app: &App, req: &Request) -> Result<Response, ApiError> {
    let form = req.form();
    if !session::login_token_ok(
        req.cookies.get(LOGIN_COOKIE).map(String::as_str),
        form.get("csrf"),
    ) {
        return login_form(
            app,
            req,
            Some((
                StatusCode::FORBIDDEN,
                "This login form had expired. Please try again.".into(),
            )),
        );
    }
    let email = form.get("email").unwrap_or_default().trim().to_string();
    let password = form.get("password").unwrap_or_default().to_string();
    // The API's login: the same budgets of failures.
    match app
        .services
        .agents
        .login(&email, password, Some(SESSION_SECS), req.ip)
        .await
    {
        Ok(login) => {
            let mut response = redirect("/console/inbox");
            let max_age = (login.expires_secs - login.issued_secs).max(0) as u64;
            set_cookie(
                &mut response,
                session::cookie(SESSION_COOKIE, &login.token, max_age, "Lax", req.secure),
            );
            set_cookie(
                &mut response,
                session::cookie(LOGIN_COOKIE, "", 0, "Strict", req.secure),
            );
            Ok(response)
        }
        Err(ServiceError::WrongCredentials) => login_form(
            app,
            req,
            Some((StatusCode::UNAUTHORIZED, "Wrong email or password.".into())),
        ),
        Err(err @ ServiceError::RateLimited { .. }) => {
            let err = ApiError::from(err);
            let mut page = login_form(
                app,
                req,
                Some((
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed logins. Wait a minute, then try again.".into(),
                )),
            )?;
            if let Some(secs) = err.retry_after_secs() {
                page.headers_mut()
                    .insert(warp::http::header::RETRY_AFTER, secs.into());
            }
            Ok(page)
        }
        Err(err) => Err(err.into()),
    }
}

/// POST /console/logout: revokes the session and forgets the cookie.
pub async fn logout(app: &App, req: &Request) -> Result<Response, ApiError> {
    if let Some(s) = session(app, req).await? {
        if !session::csrf_ok(&s.token, req.form().get("csrf")) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This form has expired. Reload the page and try again.",
            ));
        }
        app.services.agents.logout(&s.token).await?;
    }
    let mut response = redirect("/console/login");
    set_cookie(
        &mut response,
        session::cookie(SESSION_COOKIE, "", 0, "Lax", req.secure),
    );
    Ok(response)
}

/// The frame of a page for this agent.
pub(super) async fn chrome(
    app: &App,
    s: &Session,
    title: String,
    nav: &'static str,
    back: String,
) -> Result<Chrome, ApiError> {
    let me = &s.caller;
    let presence = app.services.presence.get(me, me.id()).await?;
    Ok(Chrome {
        title,
        nav,
        me_id: me.id().0.to_string(),
        me_name: me.agent.display_name.clone(),
        is_admin: me.is_admin(),
        token: s.token.clone(),
        presence: presence.presence.state,
        back,
        version: asset_version(),
    })
}

/// Agent names by id.
pub(super) async fn names(app: &App, s: &Session) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(app
        .services
        .agents
        .colleagues(&s.caller)
        .await?
        .into_iter()
        .map(|c| (c.id.0, c.display_name))
        .collect())
}

/// Most conversations a filter or a search shows.
const FOUND_PAGE: u32 = 50;

/// The inbox's filters (`label`, `channel`, `assignee`, `state`) and search
/// (`q`) as the request gives them; unknown values are ignored.
async fn inbox_filters(
    app: &App,
    req: &Request,
    s: &Session,
    names: &HashMap<Uuid, String>,
) -> Result<(InboxFilters, RoomFilter, Option<String>), ApiError> {
    let label = req
        .query("label")
        .and_then(|v| v.parse::<crate::domain::LabelId>().ok());
    let channel = req
        .query("channel")
        .and_then(|v| v.parse::<crate::domain::ChannelId>().ok());
    let assignee = req
        .query("assignee")
        .and_then(|v| v.parse::<Uuid>().ok())
        .map(crate::domain::AgentId);
    let state = req.query("state").and_then(RoomState::parse);
    let q = req
        .query("q")
        .map(|q| q.trim().chars().take(200).collect::<String>())
        .filter(|q| !q.is_empty());
    let filter = RoomFilter {
        state,
        channel,
        assignee,
        label,
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(l) = label {
        query.push(("label", l.to_string()));
    }
    if let Some(c) = channel {
        query.push(("channel", c.to_string()));
    }
    if let Some(a) = assignee {
        query.push(("assignee", a.0.to_string()));
    }
    if let Some(st) = state {
        query.push(("state", st.as_str().to_string()));
    }
    if let Some(q) = &q {
        query.push(("q", q.clone()));
    }
    let labels = app.services.labels.list(&s.caller).await?;
    let channels = app.services.channels.names(&s.caller).await?;
    let mut agents: Vec<Choice> = names
        .iter()
        .map(|(id, name)| Choice {
            id: id.to_string(),
            name: name.clone(),
        })
        .collect();
    agents.sort_by_key(|a| a.name.to_lowercase());
    let shown = InboxFilters {
        label: label.map(|l| l.to_string()).unwrap_or_default(),
        channel: channel.map(|c| c.to_string()).unwrap_or_default(),
        assignee: assignee.map(|a| a.0.to_string()).unwrap_or_default(),
        state: state.map(|s| s.as_str().to_string()).unwrap_or_default(),
        q: q.clone().unwrap_or_default(),
        labels: labels
            .iter()
            .map(|l| Choice {
                id: l.id.to_string(),
                name: l.name.as_str().to_string(),
            })
            .collect(),
        channels: channels
            .into_iter()
            .map(|(id, name)| Choice {
                id: id.to_string(),
                name,
            })
            .collect(),
        agents,
        active: filter != RoomFilter::default() || q.is_some(),
        query: serde_urlencoded::to_string(query).unwrap_or_default(),
    };
    Ok((shown, filter, q))
}

/// The conversations matching the inbox's filters (in SQL: the agent's
/// rooms, or for `state=queued` the queue of the channel), or those with a
/// message matching the search (the agent API's message search).
async fn found(
    app: &App,
    s: &Session,
    filter: RoomFilter,
    q: Option<String>,
) -> Result<Vec<LiveRoom>, ApiError> {
    let rooms = &app.services.rooms;
    if let Some(q) = q {
        let listing = Listing {
            limit: Some(FOUND_PAGE),
            search: Some(q),
            ..Listing::default()
        };
        let hits = app
            .services
            .messages
            .search(&s.caller, &listing, false)
            .await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for m in hits.items {
            if !seen.insert(m.conversation_id) {
                continue;
            }
            let Ok(room) = rooms.member_room(&s.caller, m.conversation_id).await else {
                continue;
            };
            let matches = filter
                .label
                .is_none_or(|l| room.labels.iter().any(|x| x.id == l))
                && filter.channel.is_none_or(|c| room.channel_id == Some(c))
                && filter.assignee.is_none_or(|a| room.assignee == Some(a));
            if !matches {
                continue;
            }
            let mut live = rooms.live(RoomSummary::bare(room)).await;
            // The matching message is the row's preview.
            live.summary.last_message = Some(m);
            out.push(live);
        }
        return Ok(out);
    }
    if filter.state == Some(RoomState::Queued) {
        if filter.label.is_some() || filter.assignee.is_some() {
            return Ok(Vec::new());
        }
        return Ok(rooms.queue(&s.caller, filter.channel).await?);
    }
    Ok(rooms
        .list(&s.caller, &[], filter, Some(FOUND_PAGE), Some(0))
        .await?
        .items)
}

/// The queue, and one page of the agent's rooms split into open visitor
/// rooms, team rooms and closed rooms; with filters or a search, the
/// matching conversations instead.
async fn lists(
    app: &App,
    req: &Request,
    s: &Session,
    names: &HashMap<Uuid, String>,
    current: &str,
    closed_page: u32,
) -> Result<Lists, ApiError> {
    let me = s.caller.id().0;
    let row = |live: LiveRoom| RoomRow::new(&live, me, names, current);
    let (filters, filter, q) = inbox_filters(app, req, s, names).await?;
    if filters.active {
        let mut found: Vec<RoomRow> = found(app, s, filter, q)
            .await?
            .into_iter()
            .map(row)
            .collect();
        given_names(app, s, found.iter_mut()).await?;
        return Ok(Lists {
            queue: Vec::new(),
            mine: Vec::new(),
            team: Vec::new(),
            closed: Vec::new(),
            closed_prev: None,
            closed_next: None,
            filters,
            found,
        });
    }
    let mut queue = app
        .services
        .rooms
        .queue(&s.caller, None)
        .await?
        .into_iter()
        .map(row)
        .collect::<Vec<_>>();
    // Open rooms (visitor and team) and one page of closed rooms, each
    // paged by its own state so that closed pages are exact.
    let open = app
        .services
        .rooms
        .list(
            &s.caller,
            &[],
            RoomFilter {
                state: Some(RoomState::Open),
                ..RoomFilter::default()
            },
            Some(ROOMS_PAGE),
            Some(0),
        )
        .await?;
    let mut mine = Vec::new();
    let mut team = Vec::new();
    for item in open.items {
        let r = row(item);
        match r.kind {
            RoomKind::Agent | RoomKind::Application => team.push(r),
            RoomKind::Visitor => mine.push(r),
        }
    }
    let closed_rooms = app
        .services
        .rooms
        .list(
            &s.caller,
            &[],
            RoomFilter {
                state: Some(RoomState::Closed),
                ..RoomFilter::default()
            },
            Some(ROOMS_PAGE),
            Some(closed_page * ROOMS_PAGE),
        )
        .await?;
    let total = closed_rooms.filtered;
    let mut closed = closed_rooms.items.into_iter().map(row).collect::<Vec<_>>();
    given_names(app, s, queue.iter_mut().chain(&mut mine).chain(&mut closed)).await?;
    Ok(Lists {
        filters,
        found: Vec::new(),
        queue,
        mine,
        team,
        closed,
        closed_prev: closed_page.checked_sub(1),
        closed_next: (u64::from(closed_page + 1) * u64::from(ROOMS_PAGE) < total as u64)
            .then_some(closed_page + 1),
    })
}

/// The names visitors gave, instead of "Visitor 1a2b3".
async fn given_names<'r>(
    app: &App,
    s: &Session,
    rows: impl Iterator<Item = &'r mut RoomRow>,
) -> Result<(), ApiError> {
    let mut rows: Vec<&mut RoomRow> = rows.collect();
    let visitor_rooms: Vec<RoomId> = rows
        .iter()
        .filter(|r| r.kind == RoomKind::Visitor)
        .map(|r| r.room_id)
        .collect();
    let given = app
        .services
        .rooms
        .visitor_names(&s.caller, &visitor_rooms)
        .await?;
    for r in rows.iter_mut() {
        if let Some(name) = given.get(&r.room_id) {
            r.name = name.clone();
            r.initials = crate::http::console::views::initials(name);
        }
    }
    Ok(())
}

fn closed_page(req: &Request) -> u32 {
    req.query("closed_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
        .min(10_000)
}

/// How an agent sees a conversation: as a member (writes, marks read), or
/// read-only: a queued room before answering it, or any visitor room of
/// the tenant as an admin supervising. Read-only marks nothing read, sends
/// no typing and tells the visitor nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Member,
    Queued,
    Supervised,
}

impl Access {
    /// The conversation's page (and, with `/messages`, its fragments).
    pub fn url(self, id: RoomId) -> String {
        match self {
            Access::Member => format!("/console/rooms/{}", id.0),
            Access::Queued => format!("/console/queue/{}", id.0),
            Access::Supervised => format!("/console/all/{}", id.0),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Access::Member => "member",
            Access::Queued => "queued",
            Access::Supervised => "supervised",
        }
    }
}

/// GET /console/inbox, GET /console/rooms/<room> and GET
/// /console/queue/<room>: the lists, and the conversation when one is open
/// (a member's is marked read as it is shown; a queued one is read-only).
pub async fn inbox(
    app: &App,
    req: &Request,
    s: &Session,
    room: Option<RoomId>,
) -> Result<Response, ApiError> {
    inbox_with(app, req, s, room, Access::Member).await
}

/// GET /console/queue/<room>: a queued conversation, read before answering.
/// Once it is answered: the agent's own room, or the inbox saying another
/// agent was first.
pub async fn queued(
    app: &App,
    req: &Request,
    s: &Session,
    room: RoomId,
) -> Result<Response, ApiError> {
    match app.services.rooms.queued_room(&s.caller, room).await {
        Ok(_) => inbox_with(app, req, s, Some(room), Access::Queued).await,
        Err(ServiceError::NotFound(_)) => {
            match app.services.rooms.member_room(&s.caller, room).await {
                Ok(_) => Ok(redirect(&room_latest(room))),
                Err(ServiceError::NotFound(_)) => Ok(redirect("/console/inbox?notice=unqueued")),
                Err(err) => Err(err.into()),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// The name the visitor of `room` gave, if any.
async fn given_name(app: &App, s: &Session, room: RoomId) -> Result<Option<String>, ApiError> {
    Ok(app
        .services
        .rooms
        .visitor_names(&s.caller, &[room])
        .await?
        .remove(&room))
}

async fn inbox_with(
    app: &App,
    req: &Request,
    s: &Session,
    room: Option<RoomId>,
    access: Access,
) -> Result<Response, ApiError> {
    let names = names(app, s).await?;
    let conversation = match room {
        Some(id) => Some(conversation(app, req, s, id, &names, access).await?),
        None => None,
    };
    let current = room.map(|r| r.0.to_string()).unwrap_or_default();
    let lists = lists(app, req, s, &names, &current, closed_page(req)).await?;
    let title = match &conversation {
        Some(c) => c.name.clone(),
        None => "Inbox".to_string(),
    };
    let back = match room {
        Some(r) => access.url(r),
        None => "/console/inbox".into(),
    };
    let page = InboxPage {
        chrome: chrome(app, s, title, "inbox", back).await?,
        lists,
        conversation,
        notice: notice(req.query("notice")),
        csrf: s.csrf.clone(),
        reactions: QUICK_REACTIONS,
        states: PRESENCE_STATES,
    };
    render(StatusCode::OK, &page)
}

pub(super) async fn conversation(
    app: &App,
    req: &Request,
    s: &Session,
    id: RoomId,
    names: &HashMap<Uuid, String>,
    access: Access,
) -> Result<Conversation, ApiError> {
    let me = &s.caller;
    let before_seq = req.query("before_seq").and_then(|v| v.parse().ok());
    let live = match access {
        Access::Member => {
            let room = app.services.rooms.member_room(me, id).await?;
            if before_seq.is_none() {
                app.services.rooms.read(me, id, None).await?;
            }
            app.services.rooms.live(RoomSummary::bare(room)).await
        }
        Access::Queued => app.services.rooms.queued_room(me, id).await?,
        Access::Supervised => app.services.rooms.supervised_room(me, id).await?,
    };
    let room = live.room().clone();
    let is_visitor = room.kind == RoomKind::Visitor;
    let (messages, older) = messages(app, s, id, before_seq, None, is_visitor, access).await?;
    let transfer_to = if is_visitor && access == Access::Member {
        app.services
            .presence
            .list(me, &[])
            .await?
            .into_iter()
            .filter(|p| {
                p.presence.agent_id != me.id()
                    && p.presence.state == PresenceState::Available
                    && p.connected
            })
            .filter_map(|p| {
                let id = p.presence.agent_id.0;
                names.get(&id).map(|n| Choice {
                    id: id.to_string(),
                    name: n.clone(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let members = room
        .agents()
        .iter()
        .filter_map(|a| names.get(&a.0).cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let labels: Vec<Chip> = room.labels.iter().map(Chip::new).collect();
    let label_choices = if is_visitor && access == Access::Member {
        app.services
            .labels
            .list(me)
            .await?
            .iter()
            .map(|l| LabelChoice {
                on: room.labels.iter().any(|x| x.id == l.id),
                chip: Chip::new(&l.on_room()),
            })
            .collect()
    } else {
        Vec::new()
    };
    let is_team = !is_visitor && access == Access::Member;
    let (member_list, add_choices) = if is_team {
        let member_list = room
            .agents()
            .iter()
            .map(|a| Choice {
                id: a.0.to_string(),
                // A disabled colleague is no longer among the names.
                name: names
                    .get(&a.0)
                    .cloned()
                    .unwrap_or_else(|| "Former agent".into()),
            })
            .collect();
        let mut add_choices: Vec<Choice> = names
            .iter()
            .filter(|(id, _)| !room.has_member(**id))
            .map(|(id, name)| Choice {
                id: id.to_string(),
                name: name.clone(),
            })
            .collect();
        add_choices.sort_by_key(|a| a.name.to_lowercase());
        (member_list, add_choices)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut row = RoomRow::new(&live, me.id().0, names, "");
    // The name the visitor gave, for canned responses' `{{visitor.name}}`
    // (empty when none: never the placeholder the list shows).
    let mut visitor_name = String::new();
    let visitor = if is_visitor {
        let context = match app.services.rooms.visitor_context(me, id).await {
            Ok(context) => Some(context),
            // A supervisor outside the room may not be shown its context.
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_))
                if access == Access::Supervised =>
            {
                None
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(name) = context.as_ref().and_then(|c| c.name.as_ref()) {
            row.name = name.clone();
            visitor_name = name.clone();
        }
        if let Some(name) = given_name(app, s, id).await? {
            row.name = name.clone();
            visitor_name = name;
        }
        // The name the pre-chat form asked for, when nothing else named them.
        if let Some(name) = room.prechat.as_ref().and_then(|p| p.name.as_ref()) {
            if visitor_name.is_empty() {
                row.name = name.clone();
                visitor_name = name.clone();
            }
        }
        context.map(|c| {
            crate::http::console::views::VisitorPanel::new(c, crate::domain::time::now_ms())
        })
    } else {
        None
    };
    // Whom a supervisor may hand it to: every enabled agent but the assignee.
    let assign_to = if access == Access::Supervised && room.state != RoomState::Closed {
        let mut agents: Vec<Choice> = names
            .iter()
            .filter(|(id, _)| room.assignee.map(|a| a.0) != Some(**id))
            .map(|(id, name)| Choice {
                id: id.to_string(),
                name: name.clone(),
            })
            .collect();
        agents.sort_by_key(|a| a.name.to_lowercase());
        agents
    } else {
        Vec::new()
    };
    let channel_name = match room.channel_id {
        Some(channel) if access == Access::Member => app
            .services
            .canned
            .channel_name(me, channel)
            .await?
            .unwrap_or_default(),
        _ => String::new(),
    };
    Ok(Conversation {
        fill_visitor: visitor_name,
        fill_agent: me.agent.display_name.clone(),
        fill_channel: channel_name,
        mode: access.as_str(),
        readonly: access != Access::Member,
        url: access.url(id),
        is_member: room.has_member(me.id().0),
        assignee: room.assignee.and_then(|a| names.get(&a.0).cloned()),
        assign_to,
        visitor,
        prechat: room.prechat.clone(),
        id: id.0.to_string(),
        name: row.name,
        is_visitor,
        state: row.state,
        is_closed: row.state == RoomState::Closed,
        rating: row.rating.clone(),
        verified: row.verified,
        blocked: room.blocked,
        visitor_connected: row.visitor_connected,
        last_seq: messages.last().map_or(0, |m| m.seq),
        messages,
        older,
        transfer_to,
        members,
        is_team,
        me: me.id().0.to_string(),
        member_list,
        add_choices,
        max_upload_bytes: app.config.max_upload_bytes,
        labels,
        label_choices,
    })
}

/// A page of messages, oldest first: the newest (before `before_seq`), or
/// those after `after_seq`. Returns the `before_seq` of the next older page.
async fn messages(
    app: &App,
    s: &Session,
    id: RoomId,
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    visitor_room: bool,
    access: Access,
) -> Result<(Vec<MessageRow>, Option<i64>), ApiError> {
    let listing = Listing {
        limit: Some(PAGE),
        ascending: after_seq.is_some(),
        before_seq,
        after_seq,
        ..Listing::default()
    };
    let rooms = &app.services.rooms;
    let page = match access {
        Access::Member => app.services.messages.list(&s.caller, id, &listing).await?,
        Access::Queued => rooms.queued_messages(&s.caller, id, &listing).await?,
        Access::Supervised => rooms.supervised_messages(&s.caller, id, &listing).await?,
    };
    let me = s.caller.id().0;
    // The visitor's messages carry the name the site gave, if it gave one.
    let visitor_name = if visitor_room {
        app.services
            .rooms
            .visitor_names(&s.caller, &[id])
            .await?
            .remove(&id)
    } else {
        None
    };
    let mut rows: Vec<MessageRow> = page
        .items
        .iter()
        .map(|m| {
            let mut row = MessageRow::new(m, me, visitor_room);
            row.readonly = access != Access::Member;
            if !m.deleted {
                row.attachments = m
                    .attachments
                    .iter()
                    .map(|a| {
                        let (url, thumbnail) = app.services.attachments.urls(a);
                        AttachmentRow::new(a, url, thumbnail)
                    })
                    .collect();
            }
            if let (SenderKind::Visitor, Some(name)) = (m.sender_kind, &visitor_name) {
                row.sender.clone_from(name);
            }
            row
        })
        .collect();
    if after_seq.is_none() {
        rows.reverse();
    }
    crate::http::console::views::arrange(&mut rows, crate::domain::time::now_ms());
    let older = match rows.first() {
        Some(first) if after_seq.is_none() && first.seq > 1 && page.items.len() as u32 == PAGE => {
            Some(first.seq)
        }
        _ => None,
    };
    Ok((rows, older))
}

/// GET /console/rooms/<room>/messages?before_seq=|after_seq=: the messages
/// as HTML, for the page's script (older pages, new messages, a changed one).
pub async fn messages_fragment(
    app: &App,
    req: &Request,
    s: &Session,
    id: RoomId,
    access: Access,
) -> Result<Response, ApiError> {
    let visitor_room = match access {
        Access::Member => {
            app.services.rooms.member_room(&s.caller, id).await?.kind == RoomKind::Visitor
        }
        // Only visitor rooms are queued or supervised.
        Access::Queued => app
            .services
            .rooms
            .queued_room(&s.caller, id)
            .await
            .map(|_| true)?,
        Access::Supervised => app
            .services
            .rooms
            .supervised_room(&s.caller, id)
            .await
            .map(|_| true)?,
    };
    let number = |name| req.query(name).and_then(|v| v.parse::<i64>().ok());
    let (messages, older) = messages(
        app,
        s,
        id,
        number("before_seq"),
        number("after_seq"),
        visitor_room,
        access,
    )
    .await?;
    let page = MessagesFragment {
        messages,
        csrf: s.csrf.clone(),
        older,
        url: access.url(id),
        reactions: QUICK_REACTIONS,
    };
    render(StatusCode::OK, &page)
}

/// GET /console/fragments/lists?current=<room>: the inbox's lists as HTML,
/// refreshed by the page's script when an event says they changed.
pub async fn lists_fragment(app: &App, req: &Request, s: &Session) -> Result<Response, ApiError> {
    let names = names(app, s).await?;
    let current = req.query("current").unwrap_or_default().to_string();
    let lists = lists(app, req, s, &names, &current, closed_page(req)).await?;
    render(
        StatusCode::OK,
        &ListsFragment {
            lists,
            csrf: s.csrf.clone(),
        },
    )
}

/// GET /console/colleagues: every agent's presence; start a team room.
pub async fn colleagues(app: &App, s: &Session) -> Result<Response, ApiError> {
    let me = &s.caller;
    let names = names(app, s).await?;
    let mut agents: Vec<AgentRow> = app
        .services
        .presence
        .list(me, &[])
        .await?
        .into_iter()
        .filter_map(|p| {
            let id = p.presence.agent_id;
            let name = names.get(&id.0)?.clone();
            Some(AgentRow {
                id: id.0.to_string(),
                initials: initials(&name),
                name,
                state: p.presence.state,
                connected: p.connected,
                me: id == me.id(),
            })
        })
        .collect();
    agents.sort_by(|a, b| {
        b.me.cmp(&a.me)
            .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    let page = ColleaguesPage {
        chrome: chrome(
            app,
            s,
            "Colleagues".into(),
            "colleagues",
            "/console/colleagues".into(),
        )
        .await?,
        agents,
        csrf: s.csrf.clone(),
        states: PRESENCE_STATES,
    };
    render(StatusCode::OK, &page)
}

fn room_url(id: RoomId) -> String {
    format!("/console/rooms/{}", id.0)
}

/// A conversation, scrolled to its newest message even without script
/// (the fragment names the anchor after the last message).
fn room_latest(id: RoomId) -> String {
    format!("/console/rooms/{}#latest", id.0)
}

/// POST /console/queue/<room>/answer: the agent takes the visitor; if
/// another agent was first, back to the inbox saying so.
pub async fn answer(app: &App, s: &Session, id: RoomId) -> Result<Response, ApiError> {
    match app.services.rooms.answer(&s.caller, id).await {
        Ok(_) => Ok(redirect(&room_latest(id))),
        Err(ServiceError::Conflict(Conflict::AlreadyAnswered)) => {
            Ok(redirect("/console/inbox?notice=taken"))
        }
        Err(err) => Err(err.into()),
    }
}

/// POST /console/rooms/<room>/messages: the reply box (with the members it
/// mentions, `mentions` fields; one who is not a member: back saying so).
pub async fn reply(app: &App, s: &Session, id: RoomId, form: &Form) -> Result<Response, ApiError> {
    let content = form.get("content").unwrap_or_default().to_string();
    // The files uploaded for it (the page's script adds a field per file).
    let Ok(attachments) = form
        .all("attachments")
        .into_iter()
        .map(str::parse::<AttachmentId>)
        .collect::<Result<Vec<_>, _>>()
    else {
        return Ok(redirect(&format!("{}?notice=invalid", room_url(id))));
    };
    if content.trim().is_empty() && attachments.is_empty() {
        return Ok(redirect(&format!("{}?notice=empty", room_url(id))));
    }
    let Ok(mentions) = form
        .all("mentions")
        .into_iter()
        .map(str::parse::<Uuid>)
        .collect::<Result<Vec<_>, _>>()
    else {
        return Ok(redirect(&format!("{}?notice=invalid", room_url(id))));
    };
    let sent = if form.get("private").is_some() {
        // A private note: text only (the page hides the paperclip).
        if !attachments.is_empty() || !mentions.is_empty() {
            return Ok(redirect(&format!("{}?notice=invalid", room_url(id))));
        }
        app.services
            .messages
            .note(&s.caller, RoomRef::Id(id), content)
            .await
    } else {
        app.services
            .messages
            .post(
                &s.caller,
                RoomRef::Id(id),
                content,
                None,
                Vec::new(),
                mentions,
                attachments,
            )
            .await
    };
    match sent {
        Ok(_) => Ok(redirect(&room_latest(id))),
        Err(ServiceError::InvalidField { .. } | ServiceError::InvalidAttachment) => {
            Ok(redirect(&format!("{}?notice=invalid", room_url(id))))
        }
        Err(err) => Err(err.into()),
    }
}

/// POST /console/rooms/<room>/members: adds a colleague to an agent room.
pub async fn add_member(
    app: &App,
    s: &Session,
    id: RoomId,
    form: &Form,
) -> Result<Response, ApiError> {
    let Some(user) = form.get("user_uuid").and_then(|u| u.parse::<Uuid>().ok()) else {
        return Ok(redirect(&format!("{}?notice=invalid", room_url(id))));
    };
    match app.services.rooms.add_member(&s.caller, id, user).await {
        Ok(_) => Ok(redirect(&room_latest(id))),
        Err(ServiceError::InvalidField { .. } | ServiceError::Conflict(_)) => {
            Ok(redirect(&format!("{}?notice=invalid", room_url(id))))
        }
        Err(err) => Err(err.into()),
    }
}

/// POST /console/rooms/<room>/members/<user>/remove: removes a member of an
/// agent room, or leaves it (the agent's own id: back to the inbox).
pub async fn remove_member(
    app: &App,
    s: &Session,
    id: RoomId,
    user: Uuid,
) -> Result<Response, ApiError> {
    app.services
        .rooms
        .remove_member(&s.caller, id, user)
        .await?;
    if user == s.caller.id().0 {
        return Ok(redirect("/console/inbox?notice=left"));
    }
    Ok(redirect(&room_latest(id)))
}

/// POST /console/rooms/<room>/state: close or reopen.
pub async fn set_state(
    app: &App,
    s: &Session,
    id: RoomId,
    form: &Form,
) -> Result<Response, ApiError> {
    let state = crate::service::rooms::requested_state(form.get("state").unwrap_or_default())?;
    app.services.rooms.set_state(&s.caller, id, state).await?;
    Ok(redirect(&room_latest(id)))
}

/// POST /console/rooms/<room>/labels `label` (repeated): the room's
/// labels become those checked.
pub async fn set_labels(
    app: &App,
    s: &Session,
    id: RoomId,
    form: &Form,
) -> Result<Response, ApiError> {
    let labels = form
        .all("label")
        .into_iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    match app
        .services
        .labels
        .set_room_labels(&s.caller, RoomRef::Id(id), labels)
        .await
    {
        Ok(_) => Ok(redirect(&format!(
            "/console/rooms/{}?notice=labelled#latest",
            id.0
        ))),
        Err(ServiceError::InvalidField { .. }) => Ok(redirect(&format!(
            "/console/rooms/{}?notice=invalid#latest",
            id.0
        ))),
        Err(err) => Err(err.into()),
    }
}

/// POST /console/rooms/<id>/block (`blocked=true|false`): blocks or
/// unblocks the room's visitor, then back to the page it was on.
pub async fn set_blocked(
    app: &App,
    s: &Session,
    id: RoomId,
    form: &Form,
) -> Result<Response, ApiError> {
    let blocked = form.get("blocked") == Some("true");
    app.services
        .identity
        .set_blocked(&s.caller, RoomRef::Id(id), blocked)
        .await?;
    // Back to the room's page in the mode it was open in (a fixed set).
    let page = match form.get("back") {
        Some("queue") => "queue",
        Some("all") => "all",
        _ => "rooms",
    };
    let notice = if blocked { "blocked" } else { "unblocked" };
    Ok(redirect(&format!(
        "/console/{page}/{}?notice={notice}#latest",
        id.0
    )))
}

/// GET /console/labels.css: each label's chip colours (the console's CSP
/// allows stylesheets from the console only, no inline style).
pub async fn labels_css(app: &App, s: &Session) -> Result<Response, ApiError> {
    let mut css = String::new();
    for l in app.services.labels.list(&s.caller).await? {
        css.push_str(&format!(
            ".{}{{--chip:{};--chip-text:{}}}\n",
            chip_class(l.id),
            l.color.as_str(),
            l.color.text_color()
        ));
    }
    let mut response = warp::reply::Reply::into_response(css);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// POST /console/rooms/<room>/transfer: to another agent, who joins; we leave.
pub async fn transfer(
    app: &App,
    s: &Session,
    id: RoomId,
    form: &Form,
) -> Result<Response, ApiError> {
    let Some(to) = form.get("user_uuid").and_then(|u| u.parse::<Uuid>().ok()) else {
        return Ok(redirect(&format!("{}?notice=invalid", room_url(id))));
    };
    app.services.rooms.transfer(&s.caller, id, to).await?;
    Ok(redirect("/console/inbox?notice=transferred"))
}

/// POST /console/rooms/<room>/messages/<message>/(edit|delete|react|unreact)
pub async fn message_action(
    app: &App,
    s: &Session,
    room: RoomId,
    message: MessageId,
    action: &str,
    form: &Form,
) -> Result<Response, ApiError> {
    let messages = &app.services.messages;
    let emoji = form.get("emoji").unwrap_or_default();
    let result = match action {
        "edit" => {
            let content = form.get("content").unwrap_or_default().to_string();
            messages
                .change(&s.caller, room, message, Some(content))
                .await
                .map(|_| ())
        }
        "delete" => messages
            .change(&s.caller, room, message, None)
            .await
            .map(|_| ()),
        "react" => messages
            .add_reaction(&s.caller, room, message, emoji)
            .await
            .map(|_| ()),
        "unreact" => {
            messages
                .remove_reaction(&s.caller, room, message, emoji)
                .await
        }
        _ => return Err(ApiError::not_found()),
    };
    match result {
        Ok(()) => {}
        // Reacting twice, or removing a reaction already gone: nothing to do.
        Err(
            ServiceError::Conflict(Conflict::ReactionAlreadyExists)
            | ServiceError::NotFound(Missing::Reaction),
        ) => {}
        Err(ServiceError::InvalidField { .. } | ServiceError::Invalid(_)) => {
            return Ok(redirect(&format!("{}?notice=invalid", room_url(room))))
        }
        Err(err) => return Err(err.into()),
    }
    Ok(redirect(&format!("{}#m-{}", room_url(room), message.0)))
}

/// POST /console/rooms: a team room with the chosen agents.
pub async fn create_room(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let users: Vec<Uuid> = form
        .all("users")
        .into_iter()
        .filter_map(|u| u.parse().ok())
        .collect();
    let name = form
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .map(str::to_string);
    let (room, _) = app.services.rooms.create(&s.caller, name, users).await?;
    Ok(redirect(&room_latest(room.room().id)))
}

/// POST /console/presence: the agent's own state, from any page.
pub async fn presence(app: &App, s: &Session, form: &Form) -> Result<Response, ApiError> {
    let change = PresenceChange::parse(form.get("state").unwrap_or_default(), None)?;
    app.services
        .presence
        .set(&s.caller, AgentId(s.caller.id().0), change)
        .await?;
    let back = form
        .get("back")
        .filter(|b| b.starts_with("/console/") && !b.starts_with("//") && !b.contains("\\"))
        .unwrap_or("/console/inbox");
    Ok(redirect(back))
}
