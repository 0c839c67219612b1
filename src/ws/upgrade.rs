//! The WebSocket upgrade, done here rather than by `warp::ws()` so each
//! socket gets a [`WebSocketConfig`] of our choosing. warp 0.4 leaves
//! tungstenite's 128 KiB read buffer in place, and tungstenite zero-fills
//! that whole buffer before every read: 128 KiB of resident memory per idle
//! socket, and a 128 KiB memset per frame received. STOMP frames are small
//! and bounded, so a few KiB is plenty.

use std::future::Future;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::http::{header, HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::error::ApiError;

pub type WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Read buffer per socket: a CONNECT with its token, or a SEND of a typical
/// message, fits in one read; a larger frame takes a few reads.
const READ_BUFFER: usize = 1024;

/// Bytes of outgoing frames gathered before a write, when not flushed sooner.
const WRITE_BUFFER: usize = 8 * 1024;

/// A valid upgrade request, ready to be accepted.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Matches a WebSocket upgrade request (RFC 6455, 4.2.1); any other request
/// to the route gets a JSON 400.
pub fn upgrade(
) -> impl Filter<Extract = (Result<Upgrade, ApiError>,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .map(|headers: HeaderMap, on_upgrade: Option<OnUpgrade>| {
            let has = |name: header::HeaderName, token: &str| {
                headers.get_all(name).iter().any(|v| {
                    v.to_str().is_ok_and(|v| {
                        v.split(',')
                            .any(|part| part.trim().eq_ignore_ascii_case(token))
                    })
                })
            };
            let refused =
                || ApiError::invalid_data("this endpoint expects a WebSocket upgrade (version 13)");
            if !has(header::CONNECTION, "upgrade")
                || !has(header::UPGRADE, "websocket")
                || !has(header::SEC_WEBSOCKET_VERSION, "13")
            {
                return Err(refused());
            }
            match (headers.get(header::SEC_WEBSOCKET_KEY), on_upgrade) {
                (Some(key), Some(on_upgrade)) => Ok(Upgrade {
                    key: key.clone(),
                    on_upgrade,
                }),
                _ => Err(refused()),
            }
        })
}

impl Upgrade {
    /// Answers 101 (with `protocol` as the sub-protocol, if any) and runs
    /// `session` on the socket once the connection has switched.
    pub fn accept<F, U>(
        self,
        max_message: usize,
        protocol: Option<&'static str>,
        session: F,
    ) -> Response
    where
        F: FnOnce(WebSocket) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Frames queue here until the session flushes (once per turn),
            // or until this much is waiting.
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    session(socket).await;
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocol),
            );
        }
        response.into_response()
    }
}
