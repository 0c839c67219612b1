//! The warp filters both doors use, the HTTP routes (`http`) and the
//! WebSocket handshakes (`ws`): the shared state, request headers, and the
//! caller's token. Here so that neither door imports the other for them.

use std::convert::Infallible;

use warp::Filter;

use crate::state::App;

/// Makes the app available to a handler.
pub fn with_app(app: App) -> impl Filter<Extract = (App,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// A header's value; absent or not valid text is `None`.
pub fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    warp::header::optional::<String>(name)
        .or(warp::any().map(|| None))
        .unify()
}

/// The `Origin` header, if any.
pub fn origin() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    optional_header("origin")
}

/// The token of `Authorization: Bearer <t>` (or a bare token), or of `X-Auth-Token`.
pub fn token() -> impl Filter<Extract = (Option<String>,), Error = Infallible> + Clone {
    optional_header("authorization")
        .and(optional_header("x-auth-token"))
        .map(|authorization: Option<String>, x_auth: Option<String>| {
            x_auth
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().to_string())
                .or_else(|| {
                    authorization
                        .as_deref()
                        .and_then(crate::auth::bearer)
                        .map(str::to_string)
                })
        })
}
