//! Rate limits (governor's GCRA): per client IP for authenticate, per
//! conversation for sends; and budgets of failed logins (per account and
//! client IP, and per client IP), which count only failures.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::domain::ConversationId;
use crate::metrics::Metrics;

pub struct Limits {
    pub authenticate: Keyed<IpAddr>,
    /// Failed logins per (account email, client IP).
    pub login_failures: FailureBudget<(String, IpAddr)>,
    /// Failed logins per client IP, whatever the account.
    pub login_ip_failures: FailureBudget<IpAddr>,
    pub send: Keyed<ConversationId>,
    /// Visitor context writes per conversation.
    pub context: Keyed<ConversationId>,
    /// Transcript requests per client IP (so the form cannot relay mail).
    pub transcript: Keyed<IpAddr>,
}

/// A refusal: the key's budget is spent until `retry_after` has passed
/// (a 429 with `Retry-After` at the doors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
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
    pub fn check(&self, key: &K) -> Result<(), RateLimited> {
        self.limiter.check_key(key).map_err(|not_until| {
            self.rejected.inc();
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateLimited {
                retry_after: wait.max(Duration::from_millis(1)),
            }
        })
    }

    /// Forgets keys whose budget is full again, so memory tracks active clients only.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A budget of failures per key: at most `per_minute` of them in any
/// minute (a sliding window: the times of the key's failures of the last
/// minute are kept, so the `per_minute + 1`th within a minute of the first
/// is refused however they were spread). An attempt reserves a failure
/// before it runs and gives it back when it succeeds, so successes never
/// count, and concurrent attempts cannot overrun the budget while they run.
/// Memory follows the failures of the last minute, which the cost of a
/// password check bounds.
pub struct FailureBudget<K: Hash + Eq + Clone> {
    per_minute: usize,
    /// Per key, when its failures of the last minute happened, oldest first.
    failures: Mutex<HashMap<K, VecDeque<Instant>>>,
    rejected: prometheus::IntCounter,
}

const MINUTE: Duration = Duration::from_secs(60);

impl<K: Hash + Eq + Clone> FailureBudget<K> {
    fn new(per_minute: u32, name: &str, metrics: &Metrics) -> Self {
        FailureBudget {
            per_minute: per_minute.max(1) as usize,
            failures: Mutex::new(HashMap::new()),
            rejected: metrics.rate_limited.with_label_values(&[name]),
        }
    }

    /// Takes one failure from `key`'s budget, or answers the 429 (with when
    /// to retry: when its oldest failure is a minute old) if none is left.
    pub fn reserve(&self, key: &K) -> Result<(), RateLimited> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let times = failures.entry(key.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            let oldest = times.front().copied().unwrap_or(now);
            drop(failures);
            self.rejected.inc();
            let wait = (oldest + MINUTE).saturating_duration_since(now);
            return Err(RateLimited {
                retry_after: wait.max(Duration::from_millis(1)),
            });
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives back a failure `reserve` took: the attempt did not fail.
    pub fn refund(&self, key: &K) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = failures.get_mut(key) {
            times.pop_back();
            if times.is_empty() {
                failures.remove(key);
            }
        }
    }

    /// Forgets keys without a failure in the last minute.
    pub fn forget_idle(&self) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < MINUTE)
        });
        failures.shrink_to_fit();
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
            login_failures: FailureBudget::new(config.login_failures_per_minute, "login", metrics),
            login_ip_failures: FailureBudget::new(
                config.login_ip_failures_per_minute,
                "login_ip",
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
            transcript: Keyed::new(
                Quota::with_period(
                    std::time::Duration::from_secs(3600) / config.transcripts_per_ip_hour.max(1),
                )
                .expect("a positive period")
                .allow_burst(nz(config.transcripts_per_ip_hour)),
                "transcript",
                metrics,
            ),
        }
    }

    pub fn forget_idle(&self) {
        self.authenticate.forget_idle();
        self.login_failures.forget_idle();
        self.login_ip_failures.forget_idle();
        self.send.forget_idle();
        self.context.forget_idle();
        self.transcript.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_budget_refuses_the_attempt_after_the_last_failure_it_allows() {
        let metrics = Metrics::new();
        let budget = FailureBudget::new(3, "test", &metrics);
        for _ in 0..3 {
            budget.reserve(&"key").unwrap();
        }
        let refused = budget.reserve(&"key").unwrap_err();
        let wait = refused.retry_after;
        assert!(wait > Duration::from_secs(50) && wait <= MINUTE, "{wait:?}");
        // Another key has its own budget.
        budget.reserve(&"other").unwrap();
    }

    #[test]
    fn refunded_attempts_never_use_up_the_budget() {
        let metrics = Metrics::new();
        let budget = FailureBudget::new(2, "test", &metrics);
        for _ in 0..100 {
            budget.reserve(&"key").unwrap();
            budget.refund(&"key");
        }
        budget.reserve(&"key").unwrap();
        budget.reserve(&"key").unwrap();
        assert!(budget.reserve(&"key").is_err());
    }
}
