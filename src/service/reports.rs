//! Reports: a tenant's figures over a period (conversations per day, first
//! response and resolution times, the share answered within a target,
//! ratings, when conversations start), for the console's Reports page, its
//! CSV export and `GET /reports`. The arithmetic is `domain::report`; here
//! are the rules:
//!
//! - Admins see the whole tenant, filtered by channel and agent as asked.
//! - An agent sees its own figures only: without an `agent` it gets its
//!   own, and naming another agent is refused (403), by every door.
//! - A channel or agent filter names one of the caller's tenant, or the
//!   request is refused (400 naming the field) and nothing is read.
//! - A report reads at most [`MAX_CONVERSATIONS`] conversations; a period
//!   holding more is refused (400) rather than counted in part.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::error::ServiceError;
use super::{Caller, Parts};
use crate::domain::report::{self, Report, ReportFieldError, ReportPeriod};
use crate::domain::time::now_ms;
use crate::domain::{Agent, AgentId, Channel, ChannelId};
use crate::store::{AgentStore, ChannelStore, ReportScope, ReportStore};

/// The most conversations one report reads.
pub const MAX_CONVERSATIONS: u32 = 500_000;
/// The period when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;
/// The target of "answered within" when none is given, in seconds.
pub const DEFAULT_TARGET_SECS: u32 = 60;

/// Why an agent's report of another agent is refused.
const OWN_FIGURES_ONLY: &str = "an agent sees its own figures only";

/// What a report is asked for; `None` takes the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRequest {
    /// The first day (default: 29 days before `to`).
    pub from: Option<NaiveDate>,
    /// The last day, included (default: today in `time_zone`).
    pub to: Option<NaiveDate>,
    /// The days' time zone (default: UTC).
    pub time_zone: Option<Tz>,
    pub channel: Option<ChannelId>,
    pub agent: Option<AgentId>,
    /// "Answered within" this many seconds (default: 60).
    pub target_secs: Option<u32>,
}

impl From<ReportFieldError> for ServiceError {
    fn from(e: ReportFieldError) -> Self {
        ServiceError::field(e.field, e.message)
    }
}

impl ReportRequest {
    /// The request of query parameters `from`, `to`, `tz`, `channel`,
    /// `agent` and `target` (`get` answers a parameter's value, `None` when
    /// absent or empty): 400 naming the first one that is malformed.
    pub fn parse<'a>(get: impl Fn(&'static str) -> Option<&'a str>) -> Result<Self, ServiceError> {
        let id = |name: &'static str| -> Result<Option<uuid::Uuid>, ServiceError> {
            get(name)
                .map(|raw| {
                    raw.trim()
                        .parse::<uuid::Uuid>()
                        .map_err(|_| ServiceError::field(name, format!("{name} must be a UUID")))
                })
                .transpose()
        };
        Ok(ReportRequest {
            from: get("from")
                .map(|d| report::parse_date("from", d))
                .transpose()?,
            to: get("to").map(|d| report::parse_date("to", d)).transpose()?,
            time_zone: get("tz").map(report::parse_time_zone).transpose()?,
            channel: id("channel")?.map(ChannelId),
            agent: id("agent")?.map(AgentId),
            target_secs: get("target").map(report::parse_target).transpose()?,
        })
    }
}

/// A report, with the filters it was made with.
#[derive(Debug, Clone)]
pub struct TenantReport {
    pub report: Report,
    pub channel: Option<Channel>,
    pub agent: Option<Agent>,
}

/// What the report's filters offer the caller.
#[derive(Debug, Clone)]
pub struct ReportChoices {
    pub channels: Vec<Channel>,
    /// The tenant's agents (admins); empty for an agent, who sees its own.
    pub agents: Vec<Agent>,
}

pub struct ReportService {
    store: Arc<dyn ReportStore>,
    channels: Arc<dyn ChannelStore>,
    agents: Arc<dyn AgentStore>,
}

impl ReportService {
    pub fn new(parts: &Parts) -> ReportService {
        ReportService {
            store: parts.store.clone(),
            channels: parts.store.clone(),
            agents: parts.store.clone(),
        }
    }

    /// The report `request` asks for, as the caller may see it.
    pub async fn report(
        &self,
        caller: &Caller,
        request: &ReportRequest,
    ) -> Result<TenantReport, ServiceError> {
        let agent = match (caller.is_admin(), request.agent) {
            (_, Some(id)) if id == caller.id() => Some(id),
            (true, agent) => agent,
            (false, None) => Some(caller.id()),
            (false, Some(_)) => return Err(ServiceError::Forbidden(OWN_FIGURES_ONLY)),
        };
        let time_zone = request.time_zone.unwrap_or(Tz::UTC);
        let now = now_ms();
        let to = match request.to {
            Some(to) => to,
            None => today(time_zone, now),
        };
        let period = match request.from {
            Some(from) => ReportPeriod::new(from, to, time_zone)?,
            None => ReportPeriod::ending(to, DEFAULT_DAYS, time_zone)?,
        };
        let target_secs = request.target_secs.unwrap_or(DEFAULT_TARGET_SECS);
        let tenant = caller.tenant();
        let channel = match request.channel {
            Some(id) => Some(self.channels.channel(tenant, id).await?.ok_or_else(|| {
                ServiceError::field("channel", "channel must be a channel of your tenant")
            })?),
            None => None,
        };
        let agent = match agent {
            Some(id) => Some(self.agents.agent(tenant, id).await?.ok_or_else(|| {
                ServiceError::field("agent", "agent must be an agent of your tenant")
            })?),
            None => None,
        };
        let (from_ms, to_ms) = period.bounds_ms();
        let scope = ReportScope {
            tenant,
            from_ms,
            to_ms,
            channel: channel.as_ref().map(|c| c.id),
            agent: agent.as_ref().map(|a| a.id),
        };
        let facts = self
            .store
            .report_facts(&scope, MAX_CONVERSATIONS + 1)
            .await?;
        if facts.len() > MAX_CONVERSATIONS as usize {
            return Err(ServiceError::field(
                "from",
                format!(
                    "the period holds more than {MAX_CONVERSATIONS} conversations: choose a shorter one, or a channel"
                ),
            ));
        }
        Ok(TenantReport {
            report: Report::compute(period, target_secs, now, &facts),
            channel,
            agent,
        })
    }

    /// The channels and agents the report's filters offer the caller.
    pub async fn choices(&self, caller: &Caller) -> Result<ReportChoices, ServiceError> {
        let channels = self.channels.channels(caller.tenant()).await?;
        let agents = if caller.is_admin() {
            self.agents.agents(caller.tenant()).await?
        } else {
            Vec::new()
        };
        Ok(ReportChoices { channels, agents })
    }
}

/// Today's date in `time_zone` at `now_ms`.
fn today(time_zone: Tz, now_ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&time_zone)
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_its_parameters_and_names_the_bad_one() {
        let params = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &'static str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        let ok = ReportRequest::parse(params(&[
            ("from", "2026-01-01"),
            ("to", "2026-01-31"),
            ("tz", "Europe/Paris"),
            ("target", "120"),
        ]))
        .unwrap();
        assert_eq!(ok.from, NaiveDate::from_ymd_opt(2026, 1, 1));
        assert_eq!(ok.target_secs, Some(120));
        assert_eq!(ok.time_zone, Some(chrono_tz::Europe::Paris));
        for (pairs, field) in [
            (&[("from", "yesterday")][..], "from"),
            (&[("to", "2026-02-30")][..], "to"),
            (&[("channel", "nope")][..], "channel"),
            (&[("agent", "42")][..], "agent"),
            (&[("target", "0")][..], "target"),
            (&[("tz", "Nowhere/Else")][..], "tz"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = pairs;
            match ReportRequest::parse(params(pairs)) {
                Err(ServiceError::InvalidField { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
    }
}
