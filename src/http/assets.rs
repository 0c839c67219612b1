//! Pages and files served by the binary itself, and the liveness probe.

use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::app::App;

const DEMO_PAGE: &str = include_str!("../../static/demo.html");

pub fn routes(_app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let demo = warp::path("demo")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(DEMO_PAGE, header::CONTENT_TYPE, "text/html; charset=utf-8")
                .into_response()
        });
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ok"})).into_response());
    demo.or(healthz).unify()
}
