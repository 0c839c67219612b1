//! The links in visitors' emails (`service::email`): `GET /email/open`
//! reopens the conversation in the widget on the page the visitor chatted
//! from (a redirect carrying a fresh resume token in the fragment, which
//! the widget picks up), `GET /email/unsubscribe` stops the conversation's
//! offline emails and says so on a small page. Both are signed; a link
//! whose signature does not match is refused (403) and changes nothing.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::with_app;
use crate::outbox::mail::escape_html;
use crate::service::email::{LinkParams, Reopen};
use crate::service::ServiceError;
use crate::state::App;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let params = warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .map(|raw: String| serde_urlencoded::from_str::<LinkParams>(&raw).ok());
    let open = warp::path!("email" / "open")
        .and(warp::get())
        .and(with_app(app.clone()))
        .and(params)
        .then(open);
    let unsubscribe = warp::path!("email" / "unsubscribe")
        .and(warp::get())
        .and(with_app(app))
        .and(params)
        .then(unsubscribe);
    open.or(unsubscribe).unify()
}

/// A small page of one heading and one line.
fn page(status: StatusCode, title: &str, line: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;max-width:32em;\
         margin:3em auto;padding:0 1em\"><h1 style=\"font-size:1.3em\">{t}</h1><p>{l}</p></body></html>",
        t = escape_html(title),
        l = escape_html(line)
    );
    let mut reply = warp::reply::html(html).into_response();
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        "cache-control",
        warp::http::HeaderValue::from_static("no-store"),
    );
    reply
}

fn refused(err: ServiceError) -> Response {
    match err {
        ServiceError::InvalidToken => page(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "Check that you copied the whole link from the email.",
        ),
        ServiceError::NotFound(_) => page(
            StatusCode::NOT_FOUND,
            "Conversation not found",
            "This conversation no longer exists.",
        ),
        err => {
            tracing::warn!(%err, "an email link failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "Something went wrong on our side.",
            )
        }
    }
}

fn bad_link() -> Response {
    refused(ServiceError::InvalidToken)
}

/// GET /email/open?t&ch&c&s: to the conversation's page, the widget resuming it.
async fn open(app: App, params: Option<LinkParams>) -> Response {
    let Some(params) = params else {
        return bad_link();
    };
    match app.services.email.reopen(&params).await {
        Ok((_, Reopen::Page(url))) => {
            let mut reply = warp::reply().into_response();
            *reply.status_mut() = StatusCode::SEE_OTHER;
            match warp::http::HeaderValue::from_str(&url) {
                Ok(location) => {
                    reply.headers_mut().insert("location", location);
                    reply.headers_mut().insert(
                        "cache-control",
                        warp::http::HeaderValue::from_static("no-store"),
                    );
                    reply
                }
                Err(_) => page(
                    StatusCode::OK,
                    "Your conversation is waiting",
                    "Open the website where you chatted to continue.",
                ),
            }
        }
        Ok((_, Reopen::NoPage)) => page(
            StatusCode::OK,
            "Your conversation is waiting",
            "Open the website where you chatted to continue.",
        ),
        Err(err) => refused(err),
    }
}

/// GET /email/unsubscribe?t&ch&c&s: no more offline emails for this conversation.
async fn unsubscribe(app: App, params: Option<LinkParams>) -> Response {
    let Some(params) = params else {
        return bad_link();
    };
    match app.services.email.unsubscribe(&params).await {
        Ok(()) => page(
            StatusCode::OK,
            "You are unsubscribed",
            "You will get no more emails about this conversation.",
        ),
        Err(err) => refused(err),
    }
}
