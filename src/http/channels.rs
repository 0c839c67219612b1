//! Airy-style channel administration (agent-api.md, "Channels"): admin token,
//! and only the admin's own tenant's channels are visible (a foreign id is 404).

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{body, json_object, required_uuid, respond, token, with_app};
use crate::app::App;
use crate::auth::AgentClaims;
use crate::domain::{time::now_ms, Channel, ChannelId, OriginPattern};
use crate::error::ApiError;

type Handler = fn(
    App,
    AgentClaims,
    Map<String, Value>,
) -> futures_util::future::BoxFuture<'static, Result<Response, ApiError>>;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let route = move |name: &'static str, handler: Handler| {
        warp::path(name)
            .and(warp::path::end())
            .and(warp::post())
            .and(with_app(app.clone()))
            .and(token())
            .and(body(app.config.max_body_bytes))
            .then(
                move |app: App, token: Option<String>, body: Bytes| async move {
                    respond(
                        async {
                            let admin = super::auth::admin(&app, token.as_deref()).await?;
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

/// The admin's channel with this body's `channel_id`, or 404.
async fn own_channel(
    app: &App,
    admin: &AgentClaims,
    body: &Map<String, Value>,
) -> Result<Channel, ApiError> {
    let id: ChannelId = required_uuid(body, "channel_id")?;
    app.store
        .channel(id)
        .await?
        .filter(|c| c.tenant_id == admin.tenant)
        .ok_or_else(ApiError::unknown_channel)
}

/// POST /channels.chatplugin.connect: creates a channel.
async fn connect(
    app: App,
    admin: AgentClaims,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let name = string_field(&body, "name", 200)?
        .ok_or_else(|| ApiError::invalid_field("name", "name is required"))?;
    let channel = Channel {
        id: ChannelId::new(),
        tenant_id: admin.tenant,
        name,
        image_url: string_field(&body, "image_url", 2048)?,
        allowed_origins: origins_field(&body)?.unwrap_or_default(),
        connected: true,
        created_at_ms: now_ms(),
    };
    app.store.insert_channel(&channel).await?;
    Ok(json_reply(channel.to_json()))
}

/// POST /channels.chatplugin.disconnect: visitors of the channel get 404 from now on.
async fn disconnect(
    app: App,
    admin: AgentClaims,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let mut channel = own_channel(&app, &admin, &body).await?;
    channel.connected = false;
    app.store.update_channel(&channel).await?;
    app.channels.evict(channel.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /channels.list
async fn list(
    app: App,
    admin: AgentClaims,
    _body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let channels = app.store.channels(admin.tenant).await?;
    let data: Vec<Value> = channels.iter().map(Channel::to_json).collect();
    Ok(json_reply(json!({ "data": data })))
}

/// POST /channels.info
async fn info(
    app: App,
    admin: AgentClaims,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    Ok(json_reply(
        own_channel(&app, &admin, &body).await?.to_json(),
    ))
}

/// POST /channels.update: name, image_url and allowed_origins; absent fields keep their value.
async fn update(
    app: App,
    admin: AgentClaims,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let mut channel = own_channel(&app, &admin, &body).await?;
    if let Some(name) = string_field(&body, "name", 200)? {
        channel.name = name;
    }
    if body.contains_key("image_url") {
        channel.image_url = string_field(&body, "image_url", 2048)?;
    }
    if let Some(origins) = origins_field(&body)? {
        channel.allowed_origins = origins;
    }
    app.store.update_channel(&channel).await?;
    app.channels.evict(channel.id);
    Ok(json_reply(channel.to_json()))
}
