//! Airy-style channel administration (agent-api.md, "Channels"): admin token,
//! and only the admin's own tenant's channels are visible (a foreign id is 404).

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{body, json_object, required_uuid, respond, token, with_app};
use crate::domain::{
    Assignment, BusinessHours, ChannelDesk, ChannelId, ChannelLook, OriginPattern, PrechatForm,
    Routing,
};
use crate::error::ApiError;
use crate::service::channels::ChannelSettings;
use crate::service::Caller;
use crate::state::App;
use crate::wire::shapes;

type Handler = fn(
    App,
    Caller,
    Map<String, Value>,
) -> futures_util::future::BoxFuture<'static, Result<Response, ApiError>>;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let route = move |name: &'static str, handler: Handler| {
        warp::path(name)
            .and(warp::path::end())
            .and(warp::post())
            .and(with_app(app.clone()))
            .and(token())
            .and(body(&app))
            .then(
                move |app: App, token: Option<String>, body: Bytes| async move {
                    respond(
                        async {
                            let admin = app.services.agents.admin(token.as_deref()).await?;
                            let body = json_object(&body, true)?;
                            handler(app, admin, body).await
                        }
                        .await,
                    )
                },
            )
    };
    route("channels.chatplugin.connect", |a, c, b| {
        Box::pin(connect(a, c, b))
    })
    .or(route("channels.chatplugin.disconnect", |a, c, b| {
        Box::pin(disconnect(a, c, b))
    }))
    .unify()
    .or(route("channels.list", |a, c, b| Box::pin(list(a, c, b))))
    .unify()
    .or(route("channels.info", |a, c, b| Box::pin(info(a, c, b))))
    .unify()
    .or(route("channels.update", |a, c, b| {
        Box::pin(update(a, c, b))
    }))
    .unify()
    .or(route("channels.identity.rotate", |a, c, b| {
        Box::pin(rotate_identity(a, c, b))
    }))
    .unify()
}

/// A channel as admins see it, with its identity secret.
async fn with_secret(
    app: &App,
    admin: &Caller,
    channel: &crate::domain::Channel,
) -> Result<Value, ApiError> {
    let secrets = app.services.identity.secrets(admin, channel.id).await?;
    Ok(with_secrets(channel, &secrets))
}

fn with_secrets(
    channel: &crate::domain::Channel,
    secrets: &crate::domain::identity::IdentitySecrets,
) -> Value {
    let mut json = crate::wire::channel::channel(channel);
    json["identity_secret"] = json!(secrets.secret);
    json
}

/// POST /channels.identity.rotate: a new identity secret for the channel
/// (the previous one still verifies for `CHATGATE_IDENTITY_SECRET_GRACE`).
#[utoipa::path(post, path = "/channels.identity.rotate", tag = "channels",
    summary = "A new identity secret (the previous one verifies for a grace period)", request_body = shapes::ChannelRef,
    responses((status = 200, body = shapes::Channel)))]
async fn rotate_identity(
    app: App,
    admin: Caller,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let id: ChannelId = required_uuid(&body, "channel_id")?;
    let channel = app.services.channels.get(&admin, id).await?;
    let secrets = app.services.identity.rotate(&admin, id).await?;
    Ok(json_reply(with_secrets(&channel, &secrets)))
}

fn json_reply(value: Value) -> Response {
    warp::reply::json(&value).into_response()
}

use warp::Reply;

fn string_field(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        )),
        Some(Value::String(s)) if s.chars().count() > max => Err(ApiError::invalid_field(
            field,
            format!("{field} is longer than {max} characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_field(
            field,
            format!("{field} must be a string"),
        )),
    }
}

fn origins_field(body: &Map<String, Value>) -> Result<Option<Vec<OriginPattern>>, ApiError> {
    let invalid = |msg: String| ApiError::invalid_field("allowed_origins", msg);
    match body.get("allowed_origins") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() > 100 => {
            Err(invalid("at most 100 allowed origins".into()))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => OriginPattern::parse(s).map_err(invalid),
                _ => Err(invalid("allowed_origins must be a list of strings".into())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid("allowed_origins must be a list of strings".into())),
    }
}

/// A field that `null` (or an empty string) clears: `Some(None)`.
fn clearable(
    body: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<Option<String>>, ApiError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(_) => Ok(Some(string_field(body, field, max)?)),
    }
}

/// `image_url`: an http(s) URL (the widget shows it as an image), or null.
fn image_url(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let url = string_field(body, "image_url", crate::domain::url::MAX_URL_LEN)?;
    match url {
        Some(url) if !crate::domain::url::is_web_url(&url) => Err(ApiError::invalid_field(
            "image_url",
            "image_url must be an http or https URL",
        )),
        url => Ok(url),
    }
}

pub(crate) fn settings(body: &Map<String, Value>) -> Result<ChannelSettings, ApiError> {
    let color = clearable(body, "color", 7)?
        .map(|c| c.map(|c| ChannelLook::parse_color(&c)).transpose())
        .transpose()
        .map_err(|m| ApiError::invalid_field("color", m))?;
    let assignment = match body.get("assignment") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_str().and_then(Assignment::parse).ok_or_else(|| {
            ApiError::invalid_field("assignment", "assignment must be manual or round_robin")
        })?),
    };
    let max_open_per_agent = match body.get("max_open_per_agent") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=Routing::MAX_OPEN_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "max_open_per_agent",
                        "max_open_per_agent must be a whole number from 1 to 100",
                    )
                })?,
        ),
    };
    let desk = desk_settings(body)?;
    let email_fallback = match body.get("email_fallback") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(on)) => Some(*on),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "email_fallback",
                "email_fallback must be true or false",
            ))
        }
    };
    let bot = match body.get("bot") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(
            v.as_str()
                .and_then(|s| s.parse::<crate::domain::AgentId>().ok())
                .ok_or_else(|| {
                    ApiError::invalid_field("bot", "bot must be null or an application's uuid")
                })?,
        )),
    };
    Ok(ChannelSettings {
        bot,
        business_hours: desk.business_hours,
        away_message: desk.away_message,
        prechat: desk.prechat,
        auto_close_hours: desk.auto_close_hours,
        name: string_field(body, "name", 200)?,
        image_url: if body.contains_key("image_url") {
            Some(image_url(body)?)
        } else {
            None
        },
        allowed_origins: origins_field(body)?,
        welcome_message: clearable(body, "welcome_message", ChannelLook::MAX_WELCOME_CHARS)?,
        color,
        assignment,
        max_open_per_agent,
        email_fallback,
    })
}

/// The support-desk settings (desk-api.md, "Support desk"): absent keeps,
/// `null` clears (the form: all off), anything invalid is a 400 naming it.
fn desk_settings(body: &Map<String, Value>) -> Result<ChannelSettings, ApiError> {
    // The message names the field too: the console shows only the message.
    let setting = |e: crate::domain::desk::SettingError| {
        ApiError::invalid_field(&e.field, format!("{}: {}", e.field, e.message))
    };
    let business_hours = match body.get("business_hours") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(BusinessHours::parse(v).map_err(setting)?)),
    };
    let auto_close_hours = match body.get("auto_close_hours") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=ChannelDesk::MAX_AUTO_CLOSE_HOURS).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "auto_close_hours",
                        "auto_close_hours must be null or a whole number of hours from 1 to 720",
                    )
                })?,
        )),
    };
    Ok(ChannelSettings {
        business_hours,
        away_message: clearable(body, "away_message", ChannelDesk::MAX_AWAY_CHARS)?,
        prechat: body
            .get("prechat")
            .map(PrechatForm::parse)
            .transpose()
            .map_err(setting)?,
        auto_close_hours,
        ..Default::default()
    })
}

/// POST /channels.chatplugin.connect: creates a channel.
#[utoipa::path(post, path = "/channels.chatplugin.connect", tag = "channels",
    summary = "Create a channel (admin)", request_body = shapes::ChannelSettings,
    responses((status = 200, body = shapes::Channel)))]
async fn connect(app: App, admin: Caller, body: Map<String, Value>) -> Result<Response, ApiError> {
    let channel = app
        .services
        .channels
        .connect(&admin, settings(&body)?)
        .await?;
    Ok(json_reply(with_secret(&app, &admin, &channel).await?))
}

/// POST /channels.chatplugin.disconnect: visitors of the channel get 404 from now on.
#[utoipa::path(post, path = "/channels.chatplugin.disconnect", tag = "channels",
    summary = "Disconnect a channel: its visitors get 404 from now on (admin)", request_body = shapes::ChannelRef,
    responses((status = 204, description = "disconnected")))]
async fn disconnect(
    app: App,
    admin: Caller,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let id: ChannelId = required_uuid(&body, "channel_id")?;
    app.services.channels.disconnect(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /channels.list
#[utoipa::path(post, path = "/channels.list", tag = "channels",
    summary = "The tenant's channels (admin)",
    responses((status = 200, body = shapes::ChannelList)))]
async fn list(app: App, admin: Caller, _body: Map<String, Value>) -> Result<Response, ApiError> {
    let channels = app.services.channels.list(&admin).await?;
    let mut data: Vec<Value> = Vec::with_capacity(channels.len());
    for channel in &channels {
        data.push(with_secret(&app, &admin, channel).await?);
    }
    Ok(json_reply(json!({ "data": data })))
}

/// POST /channels.info
#[utoipa::path(post, path = "/channels.info", tag = "channels",
    summary = "One channel (admin)", request_body = shapes::ChannelRef,
    responses((status = 200, body = shapes::Channel)))]
async fn info(app: App, admin: Caller, body: Map<String, Value>) -> Result<Response, ApiError> {
    let id: ChannelId = required_uuid(&body, "channel_id")?;
    let channel = app.services.channels.get(&admin, id).await?;
    Ok(json_reply(with_secret(&app, &admin, &channel).await?))
}

/// POST /channels.update: any of the settings of `settings`; absent fields keep their value.
#[utoipa::path(post, path = "/channels.update", tag = "channels",
    summary = "Change a channel's settings (admin)", request_body = shapes::ChannelSettings,
    responses((status = 200, body = shapes::Channel)))]
async fn update(app: App, admin: Caller, body: Map<String, Value>) -> Result<Response, ApiError> {
    let id: ChannelId = required_uuid(&body, "channel_id")?;
    let channel = app
        .services
        .channels
        .update(&admin, id, settings(&body)?)
        .await?;
    Ok(json_reply(with_secret(&app, &admin, &channel).await?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::settings;
    use crate::fuzz;
    use crate::http::{json_object, required_uuid};

    const KEYS: &[&str] = &[
        "channel_id",
        "name",
        "image_url",
        "allowed_origins",
        "welcome_message",
        "color",
        "assignment",
        "max_open_per_agent",
        "business_hours",
        "away_message",
        "prechat",
        "auto_close_hours",
        "bot",
    ];

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn channel_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            let map = match json_object(&body, true) {
                Ok(map) => map,
                Err(err) => {
                    fuzz::assert_client_error(&err);
                    return Ok(());
                }
            };
            if let Err(err) = settings(&map) {
                fuzz::assert_client_error(&err);
            }
            if let Err(err) = required_uuid::<crate::domain::ChannelId>(&map, "channel_id") {
                fuzz::assert_client_error(&err);
            }
        }
    }
}
