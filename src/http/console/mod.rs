//! `/console`: the agent console. Server-rendered pages (askama templates
//! under `templates/console/`) that work without JavaScript (forms post and
//! redirect with 303), enhanced by `static/console.js`, which listens on the
//! agent event socket and refreshes what changed. Every page and form calls
//! the same services as the REST API.
//!
//! - `session`: the session cookie and CSRF tokens.
//! - `pages`: login, inbox, conversation (as a member, or read-only: a
//!   queued room read before answering), colleagues, presence.
//! - `admin`: channels, agents, labels and canned responses (role admin).
//! - `webhooks`: the tenant's webhook endpoints and their delivery logs (role admin).
//! - `applications`: the tenant's applications (bots): create (the token
//!   shown once), revoke (role admin).
//! - `reports`: the Reports page (charts drawn as SVG here) and its CSV
//!   export (admins: the tenant; agents: their own figures).
//! - `supervise`: every visitor room of the tenant, read-only, and
//!   assigning one (role admin).
//! - `views`: what the templates show (rows built from service results).
//!
//! Every reply carries the console's security headers (`headers`): a CSP
//! without inline script, `nosniff`, a strict referrer policy, no framing.
//! Pages are `no-store`; assets are served under a versioned URL with an
//! ETag.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use warp::http::header::{self, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::server::PeerAddr;
use super::{body, client_ip, optional_header, with_app};
use crate::error::ApiError;
use crate::service::Caller;
use crate::state::App;

mod admin;
mod applications;
pub mod markdown;
mod pages;
mod reports;
mod rights;
pub mod session;
mod supervise;
mod views;
mod webhooks;

use pages::Access;

/// The console's Content-Security-Policy: no inline script, no framing, and
/// connections (fetch, the event socket) only to this server. `'self'` alone
/// does not cover `ws:`/`wss:` in every browser, so the socket's origin is
/// named too: see [`csp`].
const CSP_BEFORE_CONNECT: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: https:; connect-src 'self'";
const CSP_AFTER_CONNECT: &str = "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The CSP of a reply to a request that named `host`: `connect-src` allows
/// `'self'` and the WebSocket origin of that host (`wss://` only when the
/// browser came over https; both when we cannot tell, as behind a TLS
/// proxy that does not say so). A Host that is not a plain `name[:port]`
/// (it could smuggle directives into the header) names nothing: `'self'` only.
pub fn csp(host: Option<&str>, secure: bool) -> String {
    let host = host.map(str::trim).filter(|h| {
        !h.is_empty()
            && h.len() <= 260
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    let sockets = match (host, secure) {
        (None, _) => String::new(),
        (Some(h), true) => format!(" wss://{h}"),
        (Some(h), false) => format!(" ws://{h} wss://{h}"),
    };
    format!("{CSP_BEFORE_CONNECT}{sockets}{CSP_AFTER_CONNECT}")
}

const CONSOLE_JS: &str = include_str!("../../../static/console.js");
const CONSOLE_CSS: &str = include_str!("../../../static/console.css");

/// One console request, as the handlers need it.
pub struct Request {
    pub method: Method,
    /// The path below `/console/`, without a trailing slash.
    pub path: String,
    pub query: HashMap<String, String>,
    pub cookies: HashMap<String, String>,
    pub host: Option<String>,
    /// Whether the browser reached us over https (cookies get `Secure`).
    pub secure: bool,
    pub ip: IpAddr,
    pub if_none_match: Option<String>,
    pub body: Bytes,
}

impl Request {
    /// The urlencoded form of a POST body.
    pub fn form(&self) -> Form {
        Form(serde_urlencoded::from_bytes(&self.body).unwrap_or_default())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// A posted form's fields (a repeated name keeps every value).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("console")
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(optional_header("cookie"))
        .and(browser_host(app.clone()))
        .and(secure(app.clone()))
        .and(client_ip(app.clone()))
        .and(optional_header("if-none-match"))
        .and(body(&app))
        .and(with_app(app))
        .then(
            |tail: warp::path::Tail,
             method: Method,
             query: String,
             cookie: Option<String>,
             host: Option<String>,
             secure: bool,
             ip: IpAddr,
             if_none_match: Option<String>,
             body: Bytes,
             app: App| async move {
                let request = Request {
                    method,
                    path: tail.as_str().trim_end_matches('/').to_string(),
                    query: serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    cookies: session::parse_cookies(cookie.as_deref()),
                    host,
                    secure,
                    ip,
                    if_none_match,
                    body,
                };
                let mut response = match dispatch(&app, &request).await {
                    Ok(response) => response,
                    Err(err) => error_page(&err),
                };
                headers(&mut response, &request);
                response
            },
        )
}

/// The host the browser asked for: a trusted proxy's `X-Forwarded-Host`
/// (first value), or the `Host` header (a proxy may have rewritten it to
/// its upstream's).
fn browser_host(app: App) -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(optional_header("x-forwarded-host"))
        .and(optional_header("host"))
        .map(
            move |peer: Option<PeerAddr>, forwarded: Option<String>, host: Option<String>| {
                let trusted = peer.is_some_and(|p| app.config.trusted_proxies.contains(&p.0.ip()));
                let forwarded = forwarded
                    .filter(|_| trusted)
                    .and_then(|f| f.split(',').next().map(|h| h.trim().to_string()))
                    .filter(|h| !h.is_empty());
                forwarded.or(host)
            },
        )
}

/// Whether the browser's connection is https: configured, or said by a
/// trusted proxy's `X-Forwarded-Proto`.
fn secure(app: App) -> impl Filter<Extract = (bool,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(optional_header("x-forwarded-proto"))
        .map(move |peer: Option<PeerAddr>, proto: Option<String>| {
            let trusted = peer.is_some_and(|p| app.config.trusted_proxies.contains(&p.0.ip()));
            app.config.console_secure_cookie
                || (trusted && proto.is_some_and(|p| p.eq_ignore_ascii_case("https")))
        })
}

use std::convert::Infallible;

async fn dispatch(app: &App, req: &Request) -> Result<Response, ApiError> {
    let segments: Vec<&str> = if req.path.is_empty() {
        Vec::new()
    } else {
        req.path.split('/').collect()
    };
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    match (segments.as_slice(), get, post) {
        (["assets", file], true, _) => Ok(asset(req, file)),
        ([], true, _) => Ok(redirect("/console/inbox")),
        (["login"], true, _) => pages::login_form(app, req, None),
        (["login"], _, true) => pages::login(app, req).await,
        (["logout"], _, true) => pages::logout(app, req).await,
        _ => {
            let Some(session) = pages::session(app, req).await? else {
                return Ok(match get {
                    true => redirect("/console/login"),
                    false => forbidden_page("Your session has ended. Log in again."),
                });
            };
            if post {
                let form = req.form();
                if !session::csrf_ok(&session.token, form.get("csrf")) {
                    return Ok(forbidden_page(
                        "This form has expired (missing or wrong CSRF token). Reload the page and try again.",
                    ));
                }
                route_post(app, req, &session, &segments, &form).await
            } else if get {
                route_get(app, req, &session, &segments).await
            } else {
                Err(ApiError::not_found())
            }
        }
    }
}

async fn route_get(
    app: &App,
    req: &Request,
    s: &Session,
    segments: &[&str],
) -> Result<Response, ApiError> {
    match segments {
        ["inbox"] => pages::inbox(app, req, s, None).await,
        ["rooms", room] => pages::inbox(app, req, s, Some(parse_id(room)?)).await,
        ["rooms", room, "messages"] => {
            pages::messages_fragment(app, req, s, parse_id(room)?, Access::Member).await
        }
        ["queue", room] => pages::queued(app, req, s, parse_id(room)?).await,
        ["queue", room, "messages"] => {
            pages::messages_fragment(app, req, s, parse_id(room)?, Access::Queued).await
        }
        ["all"] => supervise::all(app, req, s).await,
        ["all", room] => supervise::conversation(app, req, s, parse_id(room)?).await,
        ["all", room, "messages"] => {
            pages::messages_fragment(app, req, s, parse_id(room)?, Access::Supervised).await
        }
        ["all", room, "export"] => rights::export(app, s, parse_id(room)?).await,
        ["all", room, "erase"] => rights::confirm_erase(app, s, parse_id(room)?).await,
        ["admin", "data"] => rights::data(app, req, s, None).await,
        ["fragments", "lists"] => pages::lists_fragment(app, req, s).await,
        ["colleagues"] => pages::colleagues(app, s).await,
        ["admin", "channels"] => admin::channels(app, s, None).await,
        ["admin", "channels", id] => admin::channel(app, req, s, parse_id(id)?, None).await,
        ["admin", "agents"] => admin::agents(app, s, None).await,
        ["admin", "labels"] => admin::labels(app, s, None).await,
        ["labels.css"] => pages::labels_css(app, s).await,
        ["admin", "canned"] => admin::canned(app, req, s).await,
        ["admin", "canned", id] => admin::canned_edit(app, s, parse_id(id)?).await,
        ["admin", "webhooks"] => {
            webhooks::list(app, s, None, None, webhooks::Typed::default()).await
        }
        ["admin", "applications"] => applications::list(app, s, None, None).await,
        ["admin", "webhooks", id] => webhooks::log(app, s, parse_id(id)?).await,
        ["reports"] => reports::page(app, req, s).await,
        ["reports.csv"] => reports::csv(app, req, s).await,
        _ => Err(ApiError::not_found()),
    }
}

async fn route_post(
    app: &App,
    req: &Request,
    s: &Session,
    segments: &[&str],
    form: &Form,
) -> Result<Response, ApiError> {
    match segments {
        ["queue", room, "answer"] => pages::answer(app, s, parse_id(room)?).await,
        ["all", room, "assign"] => supervise::assign(app, s, parse_id(room)?, form).await,
        ["all", room, "erase"] => rights::erase(app, s, parse_id(room)?).await,
        ["admin", "data"] => rights::set_retention(app, req, s, form).await,
        ["rooms"] => pages::create_room(app, s, form).await,
        ["rooms", room, "messages"] => pages::reply(app, s, parse_id(room)?, form).await,
        ["rooms", room, "state"] => pages::set_state(app, s, parse_id(room)?, form).await,
        ["rooms", room, "transfer"] => pages::transfer(app, s, parse_id(room)?, form).await,
        ["rooms", room, "members"] => pages::add_member(app, s, parse_id(room)?, form).await,
        ["rooms", room, "members", user, "remove"] => {
            pages::remove_member(app, s, parse_id(room)?, parse_id(user)?).await
        }
        ["rooms", room, "messages", msg, action] => {
            pages::message_action(app, s, parse_id(room)?, parse_id(msg)?, action, form).await
        }
        ["presence"] => pages::presence(app, s, form).await,
        ["admin", "channels"] => admin::create_channel(app, s, form).await,
        ["admin", "channels", id] => admin::update_channel(app, req, s, parse_id(id)?, form).await,
        ["admin", "channels", id, "identity"] => {
            admin::rotate_identity_secret(app, s, parse_id(id)?).await
        }
        ["admin", "channels", id, "disconnect"] => {
            admin::disconnect_channel(app, s, parse_id(id)?).await
        }
        ["admin", "agents"] => admin::invite_agent(app, s, form).await,
        ["admin", "agents", id] => admin::update_agent(app, s, parse_id(id)?, form).await,
        ["admin", "labels"] => admin::create_label(app, s, form).await,
        ["admin", "labels", id] => admin::update_label(app, s, parse_id(id)?, form).await,
        ["admin", "labels", id, "delete"] => admin::delete_label(app, s, parse_id(id)?).await,
        ["rooms", room, "labels"] => pages::set_labels(app, s, parse_id(room)?, form).await,
        ["rooms", room, "block"] => pages::set_blocked(app, s, parse_id(room)?, form).await,
        ["admin", "canned"] => admin::create_canned(app, s, form).await,
        ["admin", "canned", id] => admin::update_canned(app, s, parse_id(id)?, form).await,
        ["admin", "canned", id, "delete"] => admin::delete_canned(app, s, parse_id(id)?).await,
        ["admin", "webhooks"] => webhooks::create(app, s, form).await,
        ["admin", "applications"] => applications::create(app, s, form).await,
        ["admin", "applications", id, "revoke"] => {
            applications::revoke(app, s, parse_id(id)?).await
        }
        ["admin", "webhooks", id, "enable"] => {
            webhooks::set_enabled(app, s, parse_id(id)?, true).await
        }
        ["admin", "webhooks", id, "disable"] => {
            webhooks::set_enabled(app, s, parse_id(id)?, false).await
        }
        ["admin", "webhooks", id, "delete"] => webhooks::delete(app, s, parse_id(id)?).await,
        ["admin", "webhooks", id, "deliveries", delivery, "redeliver"] => {
            webhooks::redeliver(app, s, parse_id(id)?, parse_id(delivery)?).await
        }
        _ => Err(ApiError::not_found()),
    }
}

/// The logged-in agent of a console request.
pub struct Session {
    pub caller: Caller,
    pub token: String,
    pub csrf: String,
}

/// A path segment as an id; anything else is "not found".
/// What to tell the agent when the service refused a form: the message of
/// a refusal the agent can correct (an invalid field, a conflict); any
/// other error becomes the error page.
fn refusal(err: crate::service::ServiceError) -> Result<String, ApiError> {
    use crate::service::ServiceError as E;
    let correctable = matches!(
        err,
        E::InvalidField { .. } | E::Invalid(_) | E::DuplicateUser(_) | E::Conflict(_)
    );
    let err = ApiError::from(err);
    if correctable {
        Ok(err.message)
    } else {
        Err(err)
    }
}

fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// 303 See Other: where a form's browser goes next.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = warp::reply::with_status(warp::reply::html(body), status).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page shown again with a form's error is a 400; without one, a 200.
pub fn form_status(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// Renders a template into a page (500 if it cannot render).
pub fn render(status: StatusCode, page: &impl askama::Template) -> Result<Response, ApiError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(html(status, body))
}

fn forbidden_page(message: &str) -> Response {
    let err = ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
    error_page(&err)
}

/// An error as a page: the status, and a message the agent can act on.
fn error_page(err: &ApiError) -> Response {
    let page = views::ErrorPage {
        status: err.status.as_u16(),
        message: match err.status {
            StatusCode::NOT_FOUND => "This page does not exist, or is not yours to see.".into(),
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong on our side.".into(),
            _ => err.message.clone(),
        },
    };
    let body = askama::Template::render(&page).unwrap_or_else(|_| "error".into());
    let mut response = html(err.status, body);
    response
        .extensions_mut()
        .insert(crate::error::ErrorId(err.error_id));
    response
}

/// The console's security headers, on every reply.
fn headers(response: &mut Response, req: &Request) {
    let h = response.headers_mut();
    let policy = HeaderValue::from_str(&csp(req.host.as_deref(), req.secure))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Short content hashes of the assets: their URLs change with their content.
pub fn asset_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(CONSOLE_JS);
        hash.update(CONSOLE_CSS);
        hash.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// GET /console/assets/console.js|console.css?v=<version>
fn asset(req: &Request, file: &str) -> Response {
    let (body, content_type) = match file {
        "console.js" => (CONSOLE_JS, "text/javascript; charset=utf-8"),
        "console.css" => (CONSOLE_CSS, "text/css; charset=utf-8"),
        _ => return error_page(&ApiError::not_found()),
    };
    let etag = format!("\"{}\"", asset_version());
    let mut response = if req.if_none_match.as_deref() == Some(etag.as_str()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(body.into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    // A versioned URL never changes; an unversioned one is revalidated.
    let cache = if req.query("v") == Some(asset_version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
