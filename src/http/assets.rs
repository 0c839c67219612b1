//! Pages and files served by the binary itself, and the health probes
//! (`/healthz`: the process is up; `/readyz`: it can serve).
//!
//! `/widget.js` is the chat widget of `widget/`: its script (minified by
//! `build.rs`) and styles (stripped of comments and white space here) are
//! embedded at compile time, joined and compressed (gzip and brotli) once, on a blocking thread at startup;
//! each request then picks the smallest encoding the client accepts.

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::state::App;
use crate::wire::shapes;

const DEMO_PAGE: &str = include_str!("../../static/demo.html");
/// widget/widget.js as build.rs minified it.
const WIDGET_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.min.js"));
const WIDGET_CSS: &str = include_str!("../../widget/widget.css");
/// Where widget.js takes its styles (a JSON string literal replaces it).
const CSS_SLOT: &str = "\"__CHATGATE_CSS__\"";
/// The URL never changes: a short freshness, then revalidation by ETag.
const WIDGET_CACHE: &str = "public, max-age=300, stale-while-revalidate=86400";

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    // Compress the widget now, off the async threads (brotli at its best
    // quality takes a while), rather than in the first visitor's request.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(|| {
            widget();
        });
    }
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
    let widget = warp::path("widget.js")
        .and(warp::path::end())
        .and(warp::get())
        .and(super::optional_header("accept-encoding"))
        .and(super::optional_header("if-none-match"))
        .map(|accept: Option<String>, etag: Option<String>| {
            widget_response(accept.as_deref(), etag.as_deref())
        });
    widget
        .or(demo)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
}

/// GET /readyz: 200 when the database and the bus answer, else 503 naming the failing part.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    summary = "Ready: the database and the bus answer",
    responses((status = 200, body = shapes::Readiness), (status = 503, body = shapes::Readiness, description = "a part is down")),
    security(()))]
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

/// The widget as served, in each encoding.
pub struct Widget {
    pub plain: Bytes,
    pub gzip: Bytes,
    pub brotli: Bytes,
    /// Hash of the plain body; the ETag of each encoding derives from it.
    tag: String,
}

/// The widget, built on first use.
pub fn widget() -> &'static Widget {
    static WIDGET: OnceLock<Widget> = OnceLock::new();
    WIDGET.get_or_init(|| {
        let css = serde_json::to_string(&minify_css(WIDGET_CSS)).unwrap_or_default();
        let plain = WIDGET_JS.replacen(CSS_SLOT, &css, 1).into_bytes();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let gzip = gzip
            .write_all(&plain)
            .and_then(|()| gzip.finish())
            .unwrap_or_default();
        let mut brotli = Vec::new();
        {
            let mut writer = brotli::CompressorWriter::new(&mut brotli, 4096, 11, 22);
            let _ = writer.write_all(&plain);
        }
        Widget {
            tag: format!("{:016x}", fnv1a(&plain)),
            plain: Bytes::from(plain),
            gzip: Bytes::from(gzip),
            brotli: Bytes::from(brotli),
        }
    })
}

/// GET /widget.js: the smallest encoding the client accepts, or 304 when its
/// copy is current.
fn widget_response(accept_encoding: Option<&str>, if_none_match: Option<&str>) -> Response {
    let widget = widget();
    let accepts = |coding: &str| {
        accept_encoding.is_some_and(|list| {
            list.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                parts
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(coding))
                    && !parts.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.trim().parse::<f32>().ok())
                            .is_some_and(|q| q == 0.0)
                    })
            })
        })
    };
    let (body, encoding, etag) = if accepts("br") && !widget.brotli.is_empty() {
        (
            widget.brotli.clone(),
            Some("br"),
            format!("\"{}-br\"", widget.tag),
        )
    } else if accepts("gzip") && !widget.gzip.is_empty() {
        (
            widget.gzip.clone(),
            Some("gzip"),
            format!("\"{}-gz\"", widget.tag),
        )
    } else {
        (widget.plain.clone(), None, format!("\"{}\"", widget.tag))
    };
    // Any encoding of the current content is current.
    let fresh = if_none_match.is_some_and(|list| {
        list.split(',').map(str::trim).any(|t| {
            let t = t.trim_start_matches("W/").trim_matches('"');
            t == "*" || t.split('-').next() == Some(widget.tag.as_str())
        })
    });
    let mut response = if fresh {
        let mut r = Response::new(Default::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(body.into())
    };
    let headers = response.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, "text/javascript; charset=utf-8");
    set(header::CACHE_CONTROL, WIDGET_CACHE);
    set(header::ETAG, &etag);
    set(header::VARY, "Accept-Encoding");
    set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if let (Some(encoding), false) = (encoding, fresh) {
        set(header::CONTENT_ENCODING, encoding);
    }
    response
}

/// Drops comments and the white space CSS does not need.
fn minify_css(source: &str) -> String {
    let mut text = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    text.push_str(rest);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let tight = |c: char| matches!(c, '{' | '}' | ';' | ',' | '>');
    let mut chars = collapsed.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' '
            && (out.ends_with(tight)
                || out.ends_with(':')
                || chars.peek().is_some_and(|&n| tight(n)))
        {
            continue;
        }
        if c == '}' && out.ends_with(';') {
            out.pop();
        }
        out.push(c);
    }
    out
}

/// FNV-1a, 64 bits: a content hash that is the same on every instance.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_embeds_its_styles_and_fits_the_size_budget() {
        let widget = widget();
        let plain = std::str::from_utf8(&widget.plain).unwrap();
        assert!(!plain.contains("__CHATGATE_CSS__"));
        assert!(plain.contains(".lc{"));
        assert!(
            widget.gzip.len() <= 16 * 1024,
            "gzip: {} bytes",
            widget.gzip.len()
        );
        assert!(widget.brotli.len() < widget.gzip.len());
    }

    #[test]
    fn css_minifier_keeps_descendant_combinators_and_calc() {
        let css =
            "/* x */ .open .lc .i1 { opacity: 0; height: calc(100vh - 2px); }\n a, b > c { x: y }";
        assert_eq!(
            minify_css(css),
            ".open .lc .i1{opacity:0;height:calc(100vh - 2px)}a,b>c{x:y}"
        );
    }

    #[test]
    fn current_copy_gets_304_in_any_encoding() {
        let tag = format!("\"{}-gz\"", widget().tag);
        let r = widget_response(Some("br"), Some(&tag));
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = widget_response(Some("gzip;q=0, br;q=0"), Some("\"stale\""));
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
