//! Uploading and fetching attachments (desk-api.md, "Attachments"):
//! `POST /chatplugin.upload` (visitor token, mounted with the chat plugin's
//! CORS), `POST /api/chatd/1.0/users/me/rooms/<room>/attachments` (agent
//! token) and `GET /files/<id>/<name>` / `GET /files/<id>/thumbnail`
//! (signed URL, no header). Uploads are `multipart/form-data` with one part
//! named `file`, streamed to the file store as they arrive (never the
//! JSON body limit, never whole in memory); they parse, call the
//! attachment service once, and render.

use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::multipart::{FormData, Part};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::respond;
use crate::domain::{Attachment, AttachmentId, RoomId};
use crate::error::ApiError;
use crate::files::{percent_encode, Variant};
use crate::filters::{origin, token, with_app};
use crate::service::attachments::UploadBody;
use crate::state::App;
use crate::wire::shapes;

/// Bytes a multipart body may have beyond its file (boundaries, headers).
const FORM_OVERHEAD: u64 = 64 * 1024;

/// `POST /chatplugin.upload`.
#[utoipa::path(post, path = "/chatplugin.upload", tag = "visitor",
    summary = "Upload a file (sent later with `/chatplugin.send`)",
    request_body(content = shapes::Upload, content_type = "multipart/form-data"),
    responses((status = 201, body = crate::wire::AttachmentJson),
        (status = 401, body = shapes::ErrorBody), (status = 403, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody),
        (status = 413, body = shapes::ErrorBody, description = "`file-too-large`"),
        (status = 415, body = shapes::ErrorBody, description = "`file-type-not-allowed`"),
        (status = 429, body = shapes::ErrorBody)),
    security(("bearer" = [])))]
pub fn visitor_upload(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path("chatplugin.upload")
        .and(warp::path::end())
        .and(warp::post())
        .and(with_app(app))
        .and(token())
        .and(origin())
        .and(declared_length())
        .and(form())
        .then(
            |app: App, token: Option<String>, origin: Option<String>, length, form| async move {
                respond(
                    async {
                        let visitor = &app.services.visitor;
                        let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
                        let (name, body) = file_part(&app, length, form).await?;
                        let attachment = app
                            .services
                            .attachments
                            .upload_as_visitor(&caller, &name, body)
                            .await?;
                        Ok(created(&app, &attachment))
                    }
                    .await,
                )
            },
        )
}

/// `POST /api/chatd/1.0/users/me/rooms/<room>/attachments`.
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/attachments", tag = "messages",
    summary = "Upload a file into a room (sent later with a message)",
    params(("room" = Uuid, Path)),
    request_body(content = shapes::Upload, content_type = "multipart/form-data"),
    responses((status = 201, body = crate::wire::AttachmentJson),
        (status = 403, body = shapes::ErrorBody),
        (status = 413, body = shapes::ErrorBody, description = "`file-too-large`"),
        (status = 415, body = shapes::ErrorBody, description = "`file-type-not-allowed`")))]
pub fn agent_upload(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "chatd" / "1.0" / "users" / "me" / "rooms" / String / "attachments")
        .and(warp::post())
        .and(with_app(app))
        .and(token())
        .and(declared_length())
        .and(form())
        .then(
            |room: String, app: App, token: Option<String>, length, form| async move {
                respond(
                    async {
                        let agents = &app.services.agents;
                        // A malformed room id is an unknown room, once the
                        // caller is known (an anonymous caller learns nothing).
                        let Ok(room) = room.parse::<RoomId>() else {
                            agents.authenticate(token.as_deref()).await?;
                            return Err(ApiError::not_found_resource("unknown-room", "room"));
                        };
                        let (caller, read) = agents.authenticate_at(token.as_deref(), room).await?;
                        caller.require_scope(crate::domain::application::Scope::MessagesWrite)?;
                        let (name, body) = file_part(&app, length, form).await?;
                        let attachment = app
                            .services
                            .attachments
                            .upload_as_agent(&caller, read, &name, body)
                            .await?;
                        Ok(created(&app, &attachment))
                    }
                    .await,
                )
            },
        )
}

#[derive(Deserialize)]
struct Signed {
    expires: Option<i64>,
    signature: Option<String>,
}

/// `GET /files/<id>/<name>` and `GET /files/<id>/thumbnail`.
#[utoipa::path(method(get, head), path = "/files/{id}/{name}", tag = "files",
    summary = "An attachment's bytes, by its signed URL (`name` = `thumbnail`: its thumbnail)",
    params(("id" = Uuid, Path), ("name" = String, Path, description = "The file's name, or `thumbnail`"),
        ("expires" = i64, Query, description = "Unix seconds"), ("signature" = String, Query)),
    // Each type a file may be served with is listed by `openapi::document`
    // (from `files::served_types`); the annotation names one.
    responses((status = 200, description = "The file, served with the type judged at its upload: an image, MP4 or WebM video, PDF, an office document or plain text (a thumbnail: JPEG)",
            content_type = "text/plain", body = inline(shapes::FileBytes)),
        (status = 403, body = shapes::ErrorBody, description = "an expired or altered URL"),
        (status = 404, body = shapes::ErrorBody)),
    security(()))]
pub fn download(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("files" / String / String)
        .and(warp::get().or(warp::head()).unify())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with_app(app))
        .then(
            |id: String, last: String, query: String, app: App| async move {
                respond(serve(app, id, last, query).await)
            },
        )
}

async fn serve(app: App, id: String, last: String, query: String) -> Result<Response, ApiError> {
    let signed: Signed = serde_urlencoded::from_str(&query).unwrap_or(Signed {
        expires: None,
        signature: None,
    });
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this file link is invalid or has expired",
        )
    };
    let (Ok(id), Some(expires), Some(signature)) =
        (id.parse::<AttachmentId>(), signed.expires, signed.signature)
    else {
        return Err(forbidden());
    };
    let variant = if last == "thumbnail" {
        Variant::Thumbnail
    } else {
        Variant::File
    };
    let (attachment, bytes) = app
        .services
        .attachments
        .download(id, variant, expires, &signature)
        .await?;
    let mut response =
        warp::reply::stream(Exclusive(std::sync::Mutex::new(Box::pin(bytes)))).into_response();
    let headers = response.headers_mut();
    let content_type = match variant {
        Variant::File => attachment.content_type.as_str(),
        Variant::Thumbnail => "image/jpeg",
    };
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if variant == Variant::File {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.size));
    }
    // Images open in the browser; everything else is saved, never shown.
    let disposition = if attachment.is_image() {
        "inline"
    } else {
        "attachment"
    };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{disposition}; filename*=UTF-8''{}",
        percent_encode(&attachment.name)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// A stream that is `Sync` because only its owner polls it (`&mut` access,
/// no locking): what `warp::reply::stream` asks of a body.
struct Exclusive<S>(std::sync::Mutex<S>);

impl<S: Stream + Unpin> Stream for Exclusive<S> {
    type Item = S::Item;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::pin::Pin::new(inner).poll_next(cx)
    }
}

/// The request's Content-Length, if it sent one.
fn declared_length() -> impl Filter<Extract = (Option<u64>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
}

/// The multipart form, any length (the file's size is enforced while it
/// streams); a body that is not `multipart/form-data` is a 400.
fn form(
) -> impl Filter<Extract = (Result<FormData, ApiError>,), Error = std::convert::Infallible> + Clone
{
    warp::multipart::form()
        .max_length(None)
        .map(Ok)
        .or(warp::any().map(|| {
            Err(ApiError::invalid_data(
                "send the file as multipart/form-data with one part named `file`",
            ))
        }))
        .unify()
}

/// The part named `file` of `form`: its file name and its bytes. A body
/// that declares more than the cap allows is refused before it is read.
async fn file_part(
    app: &App,
    length: Option<u64>,
    form: Result<FormData, ApiError>,
) -> Result<(String, UploadBody<'static>), ApiError> {
    let max = app.config.max_upload_bytes;
    if length.is_some_and(|n| n > max.saturating_add(FORM_OVERHEAD)) {
        return Err(crate::service::ServiceError::FileTooLarge(max).into());
    }
    let mut form = form?;
    let missing = || ApiError::invalid_data("a part named `file` is required");
    loop {
        let part: Part = match form.next().await {
            Some(Ok(part)) => part,
            Some(Err(e)) => {
                return Err(ApiError::invalid_data(format!(
                    "the multipart body could not be read: {e}"
                )))
            }
            None => return Err(missing()),
        };
        if part.name() == "file" {
            let name = part.filename().unwrap_or("file").to_string();
            let body = part.stream().map(|chunk| {
                chunk
                    .map(|mut buf| buf.copy_to_bytes(buf.remaining()))
                    .map_err(|e| e.to_string())
            });
            let idle = Duration::from_secs(app.config.body_read_timeout);
            return Ok((name, Box::pin(stalls_after(body, idle))));
        }
    }
}

/// `body`, ending with an error when no bytes come for `idle`: an upload
/// may take as long as it needs, but a client that stops sending does not
/// hold its connection and its half-written file for ever (a JSON body has
/// `CHATGATE_BODY_READ_TIMEOUT` in all; an upload has it between chunks).
fn stalls_after(
    body: impl Stream<Item = Result<Bytes, String>> + Send + Unpin + 'static,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, String>> + Send + 'static {
    futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            Err(_) => Some((Err(format!("no data for {} s", idle.as_secs())), None)),
        }
    })
    .fuse()
}

/// 201 with the attachment's JSON.
fn created(app: &App, attachment: &Attachment) -> Response {
    let (url, thumbnail_url) = app.services.attachments.urls(attachment);
    let body = crate::wire::attachment(attachment, url, thumbnail_url);
    warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response()
}

/// A file of ours (an export's archive, a temporary file) as a download:
/// streamed in chunks, saved by the browser under `name`, never shown.
pub fn file_download(file: std::fs::File, content_type: &'static str, name: &str) -> Response {
    use tokio::io::AsyncReadExt;
    let length = file.metadata().map(|m| m.len()).ok();
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    });
    let mut response =
        warp::reply::stream(Exclusive(std::sync::Mutex::new(Box::pin(chunks)))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        percent_encode(name)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
