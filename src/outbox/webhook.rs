//! Webhook deliveries over HTTP (`reqwest`, rustls): one POST of an event's
//! body, signed by the Standard Webhooks specification. What to send where
//! (and what a failure means) is `service::webhooks`.
//!
//! Unless the operator allows private targets, a delivery connects only to
//! public addresses: an IP literal is judged before anything is sent, and
//! a DNS name by the addresses the client's own resolver
//! ([`PublicOnly`]) finds for the connection, so a name pointing inside, or
//! rebound to an inside address after the endpoint was saved, is refused
//! rather than reached. Redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook::{is_public_address, WebhookSecret};
use crate::store::Answer;

/// Longest part of a receiver's answer kept in the delivery log.
const MAX_BODY_CHARS: usize = 200;

/// Posts signed events.
pub struct WebhookSender {
    client: reqwest::Client,
    /// Whether non-public addresses may be reached.
    allow_private: bool,
}

/// A connection refused because its address is not public.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0} is not a public address")]
pub struct NotPublic(pub IpAddr);

/// The resolver of the webhook client: a name resolves only if every
/// address it has is public (one inside address refuses the name, so a
/// round-robin of inside and outside answers cannot slip through). The
/// hosts of the proxies the environment names (`HTTPS_PROXY`...) are the
/// operator's own and resolve as they are.
struct PublicOnly {
    proxies: Vec<String>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let trusted = self.proxies.iter().any(|p| p.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !trusted {
                if let Some(inside) = addrs.iter().find(|a| !is_public_address(a.ip())) {
                    return Err(Box::new(NotPublic(inside.ip())) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The hosts of the proxies the environment names, which reqwest uses.
fn proxy_hosts() -> Vec<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|var| std::env::var(var).ok())
    .filter_map(|raw| {
        let raw = if raw.contains("://") {
            raw
        } else {
            format!("http://{raw}")
        };
        url::Url::parse(&raw)
            .ok()?
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    })
    .collect()
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// A 2xx: delivered.
    pub delivered: bool,
    /// What went wrong, when it was not delivered.
    pub error: Option<String>,
    pub answer: Answer,
}

impl WebhookSender {
    /// A sender whose every request (connect, send, answer) ends within
    /// `timeout`, which follows no redirects (a receiver answers itself, and
    /// a 3xx is a failure), and which reaches only public addresses unless
    /// `allow_private`.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<WebhookSender, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chatgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(16);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly {
                proxies: proxy_hosts(),
            }));
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(WebhookSender {
            client,
            allow_private,
        })
    }

    /// An IP literal host that may not be reached (names are the
    /// resolver's to judge).
    fn refused_literal(&self, url: &str) -> Option<NotPublic> {
        if self.allow_private {
            return None;
        }
        let ip = match reqwest::Url::parse(url).ok()?.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!is_public_address(ip)).then_some(NotPublic(ip))
    }

    /// POSTs `body` to `url` with the headers `webhook-id: id`,
    /// `webhook-timestamp` (now, Unix seconds) and `webhook-signature`.
    pub async fn post(
        &self,
        url: &str,
        secret: &WebhookSecret,
        id: &str,
        body: &str,
        now_ms: i64,
    ) -> Posted {
        if let Some(refused) = self.refused_literal(url) {
            return Posted {
                delivered: false,
                error: Some(refused.to_string()),
                answer: Answer {
                    status: None,
                    duration_ms: 0,
                },
            };
        }
        let timestamp = now_ms.div_euclid(1000);
        let signature = secret.sign(id, timestamp, body);
        let started = Instant::now();
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_string())
            .send()
            .await;
        let took = || i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match sent {
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    // The answer's body is not needed, but read to its end
                    // (up to `MAX_DRAINED` bytes) the connection goes back to
                    // the pool; dropped unread, it was closed, and every
                    // event to a receiver answering a page paid a new one.
                    drain(response).await;
                    return Posted {
                        delivered: true,
                        error: None,
                        answer: Answer {
                            status: Some(status.as_u16()),
                            duration_ms: took(),
                        },
                    };
                }
                let text = start_of_body(response).await;
                Posted {
                    delivered: false,
                    error: Some(format!("HTTP {}: {}", status.as_u16(), text.trim())),
                    answer: Answer {
                        status: Some(status.as_u16()),
                        duration_ms: took(),
                    },
                }
            }
            Err(err) => Posted {
                delivered: false,
                error: Some(if let Some(refused) = not_public(&err) {
                    refused.to_string()
                } else if err.is_timeout() {
                    "timed out".to_string()
                } else if err.is_connect() {
                    format!("cannot connect: {}", root_cause(&err))
                } else {
                    format!("request failed: {}", root_cause(&err))
                }),
                answer: Answer {
                    status: None,
                    duration_ms: took(),
                },
            },
        }
    }
}

/// Most bytes of a 2xx answer read only to keep its connection: a longer
/// answer costs its connection instead.
const MAX_DRAINED: usize = 256 * 1024;

/// Reads an answer's body to its end (within the request's timeout), or
/// stops after `MAX_DRAINED` bytes.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_DRAINED {
            return;
        }
    }
}

/// The start of a refusal's body, for the log: at most a few hundred
/// bytes are read, whatever the receiver sends.
async fn start_of_body(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes)
        .chars()
        .take(MAX_BODY_CHARS)
        .collect()
}

/// The refusal of a non-public address somewhere in an error's causes.
fn not_public<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a NotPublic> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<NotPublic>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

/// The innermost cause of an error: what a person can act on.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
