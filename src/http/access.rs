//! The access log: one span per request (its method and path, with any
//! token in the path redacted), and one line when it is answered, whose
//! level says who has something to do. A server error is the operator's
//! (ERROR); a client error (4xx) is the client's: logged at DEBUG and
//! counted in `chatgate_http_client_errors_total` by status and `error_id`,
//! so a flood of bad requests from anyone costs a counter, not a log line
//! each. Successes are DEBUG too.
//!
//! Nothing that authenticates is ever logged: no query string (the agent
//! socket takes `?token=`), no header, and in the path the token of a
//! logout (`DELETE /api/auth/0.1/token/<token>`) or anything else shaped
//! like a JWT becomes `<redacted>`.

use std::borrow::Cow;

use tracing::Span;
use warp::http::Method;
use warp::reply::Response;

use crate::error::ErrorId;
use crate::metrics::Metrics;

/// What replaces a token in a logged path.
pub const REDACTED: &str = "<redacted>";

/// The path whose tokens are logged as `<token>`.
const LOGOUT_PREFIX: &str = "/api/auth/0.1/token/";

/// The span of one request; events logged while it is served carry it.
pub fn span(method: &Method, path: &str) -> Span {
    tracing::info_span!("request", %method, path = %redact_path(path))
}

/// `path` with every token replaced by `<redacted>`.
pub fn redact_path(path: &str) -> Cow<'_, str> {
    if let Some(token) = path.strip_prefix(LOGOUT_PREFIX) {
        if !token.is_empty() {
            return Cow::Owned(format!("{LOGOUT_PREFIX}{REDACTED}"));
        }
    }
    if !path.split('/').any(looks_like_token) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(
        path.split('/')
            .map(|segment| {
                if looks_like_token(segment) {
                    REDACTED
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// A JWT: three base64url parts (percent-encoded or not) joined by dots,
/// long enough to carry a signature.
fn looks_like_token(segment: &str) -> bool {
    segment.len() >= 40
        && segment.split('.').count() == 3
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '%' | '='))
}

/// Logs an answered request at the level its status calls for, and counts
/// client errors.
pub fn finished(metrics: &Metrics, response: Response) -> Response {
    let status = response.status();
    let error_id = response
        .extensions()
        .get::<ErrorId>()
        .map_or("none", |e| e.0);
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error_id, "request failed");
    } else if status.is_client_error() {
        metrics
            .http_client_errors
            .with_label_values(&[status.as_str(), error_id])
            .inc();
        tracing::debug!(status = status.as_u16(), error_id, "client error");
    } else {
        tracing::debug!(status = status.as_u16(), "answered");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

    #[test]
    fn a_logout_path_loses_its_token_whatever_it_looks_like() {
        assert_eq!(
            redact_path(&format!("/api/auth/0.1/token/{JWT}")),
            "/api/auth/0.1/token/<redacted>"
        );
        assert_eq!(
            redact_path("/api/auth/0.1/token/not-even-a-jwt"),
            "/api/auth/0.1/token/<redacted>"
        );
    }

    #[test]
    fn a_jwt_anywhere_in_a_path_is_redacted_and_other_paths_are_kept() {
        assert_eq!(
            redact_path(&format!("/api/chatd/1.0/{JWT}/rooms")),
            "/api/chatd/1.0/<redacted>/rooms"
        );
        let plain = "/api/chatd/1.0/users/me/rooms/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/messages";
        assert_eq!(redact_path(plain), plain);
        assert_eq!(redact_path("/widget.js"), "/widget.js");
        assert_eq!(redact_path("/api/auth/0.1/token"), "/api/auth/0.1/token");
    }
}
