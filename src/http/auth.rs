//! Agent login and logout (`/api/auth/0.1/token`, wazo-auth's shape), and the
//! checks other agent routes use.

use std::net::IpAddr;

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{body, client_ip, json_object, respond, with_app};
use crate::app::App;
use crate::auth::{verify_password, AgentClaims, TokenKind};
use crate::domain::{time::format_ms, Role, SessionId};
use crate::error::ApiError;

/// Longest agent token a login may ask for: 10 days.
const MAX_EXPIRATION_SECS: i64 = 10 * 86_400;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let login = warp::path!("api" / "auth" / "0.1" / "token")
        .and(warp::post())
        .and(with_app(app.clone()))
        .and(client_ip(app.clone()))
        .and(super::optional_header("authorization"))
        .and(body(app.config.max_body_bytes))
        .then(login);
    let logout = warp::path!("api" / "auth" / "0.1" / "token" / String)
        .and(warp::delete())
        .and(with_app(app))
        .then(logout);
    login.or(logout).unify()
}

/// Verifies an agent token and that its session is still active.
pub async fn agent(app: &App, token: Option<&str>) -> Result<AgentClaims, ApiError> {
    let claims = token
        .and_then(|t| app.tokens.verify_agent(t))
        .ok_or_else(ApiError::invalid_token)?;
    if !app
        .store
        .session_active(claims.sid, crate::domain::time::now_ms())
        .await?
    {
        return Err(ApiError::invalid_token());
    }
    Ok(claims)
}

/// Like `agent`, and the agent must be an admin (403 otherwise).
pub async fn admin(app: &App, token: Option<&str>) -> Result<AgentClaims, ApiError> {
    let claims = agent(app, token).await?;
    if claims.role != Role::Admin {
        return Err(ApiError::forbidden());
    }
    Ok(claims)
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

/// POST /api/auth/0.1/token: HTTP Basic login, returns an agent token.
async fn login(app: App, ip: IpAddr, authorization: Option<String>, body: Bytes) -> Response {
    respond(
        async {
            app.limits.login.check(&ip)?;
            let wrong = || ApiError::unauthorized("wrong email or password");
            let (email, password) =
                basic_credentials(authorization.as_deref()).ok_or_else(wrong)?;
            let body = json_object(&body, true)?;
            let expiration = match body.get("expiration") {
                None | Some(Value::Null) => app.config.agent_token_ttl as i64,
                Some(v) => v
                    .as_i64()
                    .filter(|n| (1..=MAX_EXPIRATION_SECS).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "expiration",
                            format!(
                                "expiration must be an integer from 1 to {MAX_EXPIRATION_SECS}"
                            ),
                        )
                    })?,
            };
            let agent = app.store.agent_by_email(&email).await?;
            // Hashing runs whether or not the email exists, so timing does not
            // reveal which emails are agents.
            let hash = agent.as_ref().map(|a| a.password_hash.clone());
            let ok = tokio::task::spawn_blocking(move || match hash {
                Some(hash) => verify_password(&password, &hash),
                None => {
                    let _ = verify_password(&password, dummy_hash());
                    false
                }
            })
            .await
            .map_err(ApiError::internal)?;
            let agent = agent.filter(|_| ok).ok_or_else(wrong)?;
            let issued = crate::auth::now_secs();
            let expires = issued + expiration;
            let session = SessionId::new();
            app.store
                .create_session(session, agent.id, expires * 1000)
                .await?;
            let token = app.tokens.agent(&AgentClaims {
                typ: TokenKind::Agent,
                sub: agent.id,
                tenant: agent.tenant_id,
                sid: session,
                role: agent.role,
                iat: issued,
                exp: expires,
            });
            Ok(warp::reply::json(&json!({"data": {
                "token": token,
                "expires_at": format_ms(expires * 1000),
                "utc_expires_at": format_ms(expires * 1000),
                "issued_at": format_ms(issued * 1000),
                "utc_issued_at": format_ms(issued * 1000),
                "session_uuid": session,
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
async fn logout(token: String, app: App) -> Response {
    respond(
        async {
            let claims = app
                .tokens
                .verify_agent(&token)
                .ok_or_else(ApiError::invalid_token)?;
            if !app.store.revoke_session(claims.sid).await? {
                return Err(ApiError::invalid_token());
            }
            Ok(StatusCode::NO_CONTENT)
        }
        .await,
    )
}

/// A hash of a random password, verified against when the email is unknown
/// so both failures cost the same.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        crate::auth::hash_password(&crate::auth::random_secret(20)).unwrap_or_default()
    })
}
