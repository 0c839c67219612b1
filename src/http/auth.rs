//! Agent login and logout (`/api/auth/0.1/token`, wazo-auth's shape).

use std::net::IpAddr;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{body, client_ip, parse_json, respond, with_app};
use crate::domain::time::format_ms;
use crate::error::ApiError;
use crate::state::App;
use crate::wire::shapes;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let login = warp::path!("api" / "auth" / "0.1" / "token")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(client_ip(app.clone()))
        .and(super::optional_header("authorization"))
        .and(body(&app))
        .then(login);
    // The token is read as the path's tail: warp logs a `String` path
    // parameter at TRACE, and a token must never reach the log.
    let logout = warp::path!("api" / "auth" / "0.1" / "token" / ..)
        .and(warp::path::tail())
        .and(warp::delete())
        .and(with_app(app))
        .then(logout);
    login.or(logout).unify()
}

fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    let encoded = header?.trim().strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (email, password) = decoded.split_once(':')?;
    Some((email.to_string(), password.to_string()))
}

/// The body of a login: `{"expiration"?: seconds}`; other fields (the SDK's
/// `backend`) are ignored.
#[derive(Deserialize, Default)]
struct LoginBody {
    expiration: Option<i64>,
}

/// POST /api/auth/0.1/token: HTTP Basic login, returns an agent token.
#[utoipa::path(post, path = "/api/auth/0.1/token", tag = "auth",
    summary = "Log in with HTTP Basic `email:password`: an agent token",
    request_body(content = shapes::LoginBody, description = "Optional"),
    responses((status = 200, body = shapes::TokenReply),
        (status = 401, body = shapes::ErrorBody, description = "wrong credentials (the same for an unknown email)"),
        (status = 429, body = shapes::ErrorBody, description = "too many failed logins")),
    security(("basic" = [])))]
async fn login(app: App, ip: IpAddr, authorization: Option<String>, body: Bytes) -> Response {
    respond(
        async {
            let (email, password) = basic_credentials(authorization.as_deref())
                .ok_or_else(|| ApiError::unauthorized("wrong email or password"))?;
            let body: LoginBody = parse_json(&body, true)?;
            let login = app
                .services
                .agents
                .login(&email, password, body.expiration, ip)
                .await?;
            let agent = &login.agent;
            Ok(warp::reply::json(&json!({"data": {
                "token": login.token,
                "expires_at": format_ms(login.expires_secs * 1000),
                "utc_expires_at": format_ms(login.expires_secs * 1000),
                "issued_at": format_ms(login.issued_secs * 1000),
                "utc_issued_at": format_ms(login.issued_secs * 1000),
                "session_uuid": login.session,
                "acl": [],
                "metadata": {
                    "uuid": agent.id,
                    "tenant_uuid": agent.tenant_id,
                    "display_name": agent.display_name,
                    "role": agent.role.as_str(),
                },
            }})))
        }
        .await,
    )
}

/// DELETE /api/auth/0.1/token/<token>: logout.
#[utoipa::path(delete, path = "/api/auth/0.1/token/{token}", tag = "auth",
    summary = "Revoke a token (logout)", params(("token" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 401, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody)),
    security(()))]
async fn logout(tail: warp::path::Tail, app: App) -> Response {
    respond(
        async {
            let token = tail.as_str();
            if token.is_empty() {
                // `/api/auth/0.1/token` itself: a login's path, POST only.
                return Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    "method not allowed on this path",
                ));
            }
            if token.contains('/') {
                return Err(ApiError::not_found());
            }
            app.services.agents.logout(token).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        .await,
    )
}
