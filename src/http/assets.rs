//! Pages and files served by the binary itself, and the health probes
//! (`/healthz`: the process is up; `/readyz`: it can serve).

use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::app::App;

const DEMO_PAGE: &str = include_str!("../../static/demo.html");

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
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
    let readyz = warp::path("readyz")
        .and(warp::path::end())
        .and(warp::get())
        .and(super::with_app(app.clone()))
        .then(readyz);
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(super::with_app(app))
        .map(|app: App| {
            app.metrics
                .sessions
                .with_label_values(&["visitor"])
                .set(app.hub.session_count() as i64);
            warp::reply::with_header(
                app.metrics.render(),
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )
            .into_response()
        });
    demo.or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
}

/// GET /readyz: 200 when the database and the bus answer, else 503 naming the failing part.
async fn readyz(app: App) -> Response {
    let (database, bus) = app.services.readiness().await;
    let part = |failure: &Option<String>| match failure {
        None => serde_json::json!("ok"),
        Some(e) => serde_json::json!(e),
    };
    let status = if database.is_none() && bus.is_none() {
        warp::http::StatusCode::OK
    } else {
        warp::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if status.is_success() { "ok" } else { "unavailable" },
        "database": part(&database),
        "bus": part(&bus),
    });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
