//! Webhook deliveries over HTTP (`reqwest`, rustls): one POST of an event's
//! body, signed by the Standard Webhooks specification. What to send where
//! (and what a failure means) is `service::webhooks`.

use std::time::{Duration, Instant};

use crate::domain::webhook::WebhookSecret;
use crate::store::Answer;

/// Longest part of a receiver's answer kept in the delivery log.
const MAX_BODY_CHARS: usize = 200;

/// Posts signed events.
pub struct WebhookSender {
    client: reqwest::Client,
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
    /// `timeout`, and which follows no redirects (a receiver answers itself).
    pub fn new(timeout: Duration) -> Result<WebhookSender, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chatgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(WebhookSender { client })
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
                    // The answer's body is not needed: drop it unread.
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
                error: Some(if err.is_timeout() {
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

/// The innermost cause of an error: what a person can act on.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
