//! HTTP routes (warp filters). One file per area; each endpoint is a
//! function whose doc line names its route. Handlers return
//! `Result<_, ApiError>`; `respond` turns both arms into a reply, and
//! `error::recover` handles warp's own rejections. The filters this door
//! shares with `ws` (state, headers, token) live in `crate::filters` and are
//! re-exported here; `routes` mounts the `ws` handshakes, and `ws` never
//! imports `http`.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::error::{recover, ApiError};
pub use crate::filters::{optional_header, origin, token, with_app};
use crate::state::App;
use server::PeerAddr;

pub mod access;
pub mod assets;
pub mod auth;
pub mod channels;
pub mod chatd;
pub mod chatplugin;
pub mod console;
pub mod email;
pub mod files;
pub mod openapi;
pub mod server;

/// Every route of the server.
pub fn routes(
    app: App,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + Send + Sync + 'static {
    // Each area is boxed: one nested type for the whole tree is deeper than
    // the compiler's trait solver follows in release builds.
    let visitor = chatplugin::routes(app.clone())
        .or(crate::ws::visitor::route(app.clone()))
        .unify()
        .boxed();
    let admin = auth::routes(app.clone())
        .or(channels::routes(app.clone()))
        .unify()
        .or(email::routes(app.clone()))
        .unify()
        .or(openapi::routes())
        .unify()
        .boxed();
    let files = files::agent_upload(app.clone())
        .or(files::download(app.clone()))
        .unify()
        .boxed();
    let agents = files
        .or(chatd::routes(app.clone()))
        .unify()
        .or(crate::ws::agent::route(app.clone()))
        .unify()
        .boxed();
    let metrics = app.metrics.clone();
    let served = visitor
        .or(admin)
        .unify()
        .or(agents)
        .unify()
        .or(assets::routes(app.clone()).boxed())
        .unify()
        .or(console::routes(app).boxed())
        .unify()
        .recover(recover)
        .unify();
    // The full path is read first (it consumes nothing) for the `Allow`
    // header of a 405.
    warp::path::full()
        .and(served)
        .map(|path: warp::path::FullPath, reply: Response| with_allow(path.as_str(), reply))
        // Not `warp::trace::request()`: it logs the path (tokens included)
        // and a WARN line for every 4xx. The span is opened by `server`.
        .map(move |reply: Response| access::finished(&metrics, reply))
}

/// Every route `routes` serves outside `/api/chatd/1.0` (whose routes are
/// `chatd`'s table), as `(method, path)` with `{name}` for a captured
/// segment: each is described in `/api/openapi.json` (a test compares).
/// Keep it beside the router: a route added without its description
/// fails that test.
const SERVED: &[(&str, &str)] = &[
    ("POST", "/chatplugin.authenticate"),
    ("POST", "/chatplugin.resumeToken"),
    ("POST", "/chatplugin.send"),
    ("POST", "/chatplugin.rate"),
    ("POST", "/chatplugin.conversations"),
    ("POST", "/chatplugin.transcript"),
    ("POST", "/chatplugin.upload"),
    ("GET", "/ws.chatplugin"),
    ("POST", "/api/auth/0.1/token"),
    ("DELETE", "/api/auth/0.1/token/{token}"),
    ("POST", "/channels.chatplugin.connect"),
    ("POST", "/channels.chatplugin.disconnect"),
    ("POST", "/channels.list"),
    ("POST", "/channels.info"),
    ("POST", "/channels.update"),
    ("POST", "/channels.identity.rotate"),
    ("POST", "/api/chatd/1.0/users/me/rooms/{room}/attachments"),
    ("GET", "/files/{id}/{name}"),
    ("HEAD", "/files/{id}/{name}"),
    ("GET", "/api/websocketd/"),
    ("GET", "/widget.js"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/docs"),
];

/// Routes served for people's browsers, not API clients, and so not in
/// the description: the console (session cookie and CSRF), the demo page,
/// and the signed links of emails.
pub const NOT_API: &[&str] = &["/console", "/demo", "/email/open", "/email/unsubscribe"];

/// Every API route served, as `(method, path)`: [`SERVED`] and the agent
/// API's table.
pub fn served() -> Vec<(String, String)> {
    SERVED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .chain(chatd::endpoints())
        .collect()
}

/// A 405 names the methods its path takes (`Allow`, as RFC 9110 asks),
/// from [`served`].
fn with_allow(path: &str, mut reply: Response) -> Response {
    if reply.status() != warp::http::StatusCode::METHOD_NOT_ALLOWED {
        return reply;
    }
    let allowed = allowed_methods(path);
    if let Ok(value) = warp::http::HeaderValue::from_str(&allowed.join(", ")) {
        if !allowed.is_empty() {
            reply.headers_mut().insert(warp::http::header::ALLOW, value);
        }
    }
    reply
}

/// The methods [`served`] lists for `path` (a `{name}` matches any one
/// segment), in a stable order.
pub fn allowed_methods(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<String> = served()
        .into_iter()
        .filter(|(_, pattern)| {
            let pattern: Vec<&str> = pattern.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(want, got)| want.starts_with('{') || want == got)
        })
        .map(|(method, _)| method)
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// Both arms of a handler's result as a response.
pub fn respond<T: Reply>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(reply) => reply.into_response(),
        Err(err) => err.into_response(),
    }
}

/// The request body, at most `CHATGATE_MAX_BODY_BYTES` (413
/// `payload-too-large` above), with or without a Content-Length, complete
/// within `CHATGATE_BODY_READ_TIMEOUT` of when reading it begins (408
/// `request-timeout` after; hyper then closes the connection, since the
/// body was not read to its end). Every handler reads its body here.
pub fn body(app: &App) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    let limit = app.config.max_body_bytes;
    let deadline = Duration::from_secs(app.config.body_read_timeout);
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length: Option<u64>, stream| async move {
            if length.is_some_and(|n| n > limit as u64) {
                return Err(warp::reject::custom(ApiError::payload_too_large(limit)));
            }
            match tokio::time::timeout(deadline, collect(stream, limit)).await {
                Ok(collected) => collected.map_err(warp::reject::custom),
                Err(_) => Err(warp::reject::custom(ApiError::body_timeout(deadline))),
            }
        })
}

async fn collect<S, B>(stream: S, limit: usize) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk =
            chunk.map_err(|e| ApiError::invalid_data(format!("cannot read body: {e}")))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

/// Parses a body as a JSON object. An empty body is `{}` when `empty_ok`.
pub fn json_object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, ApiError> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_data("the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid_data(format!("malformed JSON: {e}"))),
    }
}

/// Parses a body as the JSON of `T` (400 `invalid-data` naming the problem).
/// An empty body is `{}` when `empty_ok`.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    empty_ok: bool,
) -> Result<T, ApiError> {
    let body: &[u8] = if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => {
            let mut de = serde_json::Deserializer::from_slice(body);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                let message = e.into_inner().to_string();
                // serde names a missing field in backticks: `content`.
                let field = match (field.as_str(), message.split('`').nth(1)) {
                    (".", Some(missing)) => missing.to_string(),
                    _ => field,
                };
                ApiError::invalid_field(&field, format!("{field}: {message}"))
            })
        }
        Ok(_) => Err(ApiError::invalid_data("the body must be a JSON object")),
        Err(e) => Err(ApiError::invalid_data(format!("malformed JSON: {e}"))),
    }
}

/// An optional UUID field; present but not a UUID string is 400 naming the field.
pub fn uuid_field<T: std::str::FromStr>(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<T>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid_field(field, format!("{field} must be a UUID"))),
        Some(_) => Err(ApiError::invalid_field(
            field,
            format!("{field} must be a UUID string"),
        )),
    }
}

/// A required UUID field.
pub fn required_uuid<T: std::str::FromStr>(
    map: &Map<String, Value>,
    field: &str,
) -> Result<T, ApiError> {
    uuid_field(map, field)?
        .ok_or_else(|| ApiError::invalid_field(field, format!("{field} is required")))
}

/// The client's IP: the socket peer, or the first `X-Forwarded-For` hop when
/// the peer is a trusted proxy.
pub fn client_ip(app: App) -> impl Filter<Extract = (IpAddr,), Error = Infallible> + Clone {
    warp::ext::optional::<PeerAddr>()
        .and(optional_header("x-forwarded-for"))
        .map(move |peer: Option<PeerAddr>, forwarded: Option<String>| {
            let peer = peer.map(|p| p.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
            if app.config.trusted_proxies.contains(&peer) {
                if let Some(ip) = forwarded
                    .as_deref()
                    .and_then(|f| f.split(',').next())
                    .and_then(|hop| hop.trim().parse().ok())
                {
                    return ip;
                }
            }
            peer
        })
}
