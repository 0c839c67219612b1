//! Rate limits (governor's GCRA): per client IP for authenticate and login,
//! per conversation for sends.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::domain::ConversationId;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub struct Limits {
    pub authenticate: Keyed<IpAddr>,
    pub login: Keyed<IpAddr>,
    pub send: Keyed<ConversationId>,
    /// Visitor context writes per conversation.
    pub context: Keyed<ConversationId>,
}

pub struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    rejected: prometheus::IntCounter,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota, name: &str, metrics: &Metrics) -> Self {
        Keyed {
            limiter: RateLimiter::keyed(quota),
            rejected: metrics.rate_limited.with_label_values(&[name]),
        }
    }

    /// Ok, or the 429 to answer with its Retry-After.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.limiter.check_key(key).map_err(|not_until| {
            self.rejected.inc();
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(wait.max(Duration::from_millis(1)))
        })
    }

    /// Forgets keys whose budget is full again, so memory tracks active clients only.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

impl Limits {
    pub fn new(config: &Config, metrics: &Metrics) -> Limits {
        let per_minute = |n: u32, burst: u32| Quota::per_minute(nz(n)).allow_burst(nz(burst));
        Limits {
            authenticate: Keyed::new(
                per_minute(config.authenticate_per_minute, config.authenticate_burst),
                "authenticate",
                metrics,
            ),
            login: Keyed::new(
                per_minute(config.login_per_minute, config.login_per_minute),
                "login",
                metrics,
            ),
            send: Keyed::new(
                Quota::per_second(nz(config.send_per_second)).allow_burst(nz(config.send_burst)),
                "send",
                metrics,
            ),
            context: Keyed::new(
                per_minute(config.context_per_minute, config.context_per_minute),
                "context",
                metrics,
            ),
        }
    }

    pub fn forget_idle(&self) {
        self.authenticate.forget_idle();
        self.login.forget_idle();
        self.send.forget_idle();
        self.context.forget_idle();
    }
}
