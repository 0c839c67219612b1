//! Reports (the console's Reports page, `GET /reports`): a tenant's figures
//! over a period of days, computed here from one row of facts per visitor
//! conversation started in it. Pure: the store reads the facts, the service
//! checks who may see what, and this module does the arithmetic, so every
//! figure is a unit test.
//!
//! Definitions (the README's "Reports" says the same to users):
//! - A conversation belongs to the day (and hour, and weekday) it started
//!   on, in the report's time zone; a period is whole days, `from` and `to`
//!   included.
//! - First response time: from the conversation's start (its first visitor
//!   message) to the first message of an agent (or application) in it;
//!   notes and system notices do not count.
//! - Resolution time: from the start to the close, for conversations that
//!   are closed now (a reopened one counts from its latest close).
//! - Answered within target: of the conversations whose outcome is known
//!   (answered, or not answered while closed or waiting longer than the
//!   target), the share answered within `target` seconds.
//! - Medians and 90th percentiles interpolate linearly between the two
//!   nearest values (as PostgreSQL's `percentile_cont`).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::Tz;

/// The longest period one report covers, in days.
pub const MAX_DAYS: i64 = 366;
/// The longest target of "answered within", in seconds (a day).
pub const MAX_TARGET_SECS: u32 = 86_400;
/// The weekdays of the heatmap's rows, Monday first.
pub const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A report's days, `from` to `to` included, in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    from: NaiveDate,
    to: NaiveDate,
    time_zone: Tz,
}

/// Why a report's request is refused: the field, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFieldError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> ReportFieldError {
    ReportFieldError {
        field,
        message: message.into(),
    }
}

/// `YYYY-MM-DD` as a date (400 naming `field` otherwise).
pub fn parse_date(field: &'static str, raw: &str) -> Result<NaiveDate, ReportFieldError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| refuse(field, format!("{field} must be a date, YYYY-MM-DD")))
}

/// An IANA time zone name (`Europe/Paris`, `UTC`).
pub fn parse_time_zone(raw: &str) -> Result<Tz, ReportFieldError> {
    raw.trim().parse::<Tz>().map_err(|_| {
        refuse(
            "tz",
            "tz must be an IANA time zone, such as Europe/Paris or UTC",
        )
    })
}

/// The target of "answered within", in seconds (1 to a day).
pub fn parse_target(raw: &str) -> Result<u32, ReportFieldError> {
    match raw.trim().parse::<u32>() {
        Ok(secs) if (1..=MAX_TARGET_SECS).contains(&secs) => Ok(secs),
        _ => Err(refuse(
            "target",
            format!("target must be a number of seconds from 1 to {MAX_TARGET_SECS}"),
        )),
    }
}

impl ReportPeriod {
    /// `from` to `to` (both included) in `time_zone`: at most [`MAX_DAYS`]
    /// days, `from` not after `to`.
    pub fn new(from: NaiveDate, to: NaiveDate, time_zone: Tz) -> Result<Self, ReportFieldError> {
        if from > to {
            return Err(refuse("from", "from must not be after to"));
        }
        if (to - from).num_days() + 1 > MAX_DAYS {
            return Err(refuse(
                "to",
                format!("a report covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(ReportPeriod {
            from,
            to,
            time_zone,
        })
    }

    /// The `days` days that end on `to` (the default: the last 30 days).
    pub fn ending(to: NaiveDate, days: i64, time_zone: Tz) -> Result<Self, ReportFieldError> {
        let from = to - chrono::Days::new(u64::try_from(days.max(1) - 1).unwrap_or(0));
        ReportPeriod::new(from, to, time_zone)
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// How many days it covers.
    pub fn days(&self) -> usize {
        (self.to - self.from).num_days() as usize + 1
    }

    /// Its days, in order.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take(self.days())
    }

    /// Its bounds in Unix milliseconds: the first instant of `from` and the
    /// first instant after `to`, in its time zone.
    pub fn bounds_ms(&self) -> (i64, i64) {
        let start = |date: NaiveDate| start_of_day(self.time_zone, date);
        (start(self.from), start(self.to + chrono::Days::new(1)))
    }

    /// The day (index into `dates`), weekday (Monday 0) and hour of an
    /// instant, when it falls in the period.
    fn place(&self, ms: i64) -> Option<(usize, usize, usize)> {
        let utc = DateTime::from_timestamp_millis(ms)?;
        let local = utc.with_timezone(&self.time_zone);
        let day = (local.date_naive() - self.from).num_days();
        let day = usize::try_from(day).ok().filter(|&d| d < self.days())?;
        Some((
            day,
            local.weekday().num_days_from_monday() as usize,
            local.hour() as usize,
        ))
    }
}

/// The first instant of `date` in `tz` (a day that starts in a DST gap
/// starts at its first existing local time).
fn start_of_day(tz: Tz, date: NaiveDate) -> i64 {
    let mut time = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&time).earliest() {
            return t.timestamp_millis();
        }
        time += chrono::Duration::minutes(30);
    }
    time.and_utc().timestamp_millis()
}

/// What a report needs of one visitor conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationFacts {
    /// Its start: its first visitor message.
    pub created_ms: i64,
    /// The first agent (or application) message, if any.
    pub first_response_ms: Option<i64>,
    /// Its latest close, while it is closed.
    pub closed_ms: Option<i64>,
    /// The visitor's rating (1..=5), if given.
    pub rating: Option<u8>,
}

/// Durations' middle and 90th percentile, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Durations {
    pub count: u64,
    pub median_ms: Option<f64>,
    pub p90_ms: Option<f64>,
}

impl Durations {
    fn of(mut values: Vec<i64>) -> Durations {
        values.sort_unstable();
        Durations {
            count: values.len() as u64,
            median_ms: percentile(&values, 0.5),
            p90_ms: percentile(&values, 0.9),
        }
    }
}

/// The `p` quantile (0..=1) of sorted values, interpolated linearly
/// between the two nearest ranks (`percentile_cont`); `None` when empty.
pub fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = p.clamp(0.0, 1.0) * last as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let (a, b) = (sorted[low] as f64, sorted[high] as f64);
    Some(a + (b - a) * (rank - low as f64))
}

/// Answered within the target, of the conversations whose outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WithinTarget {
    pub within: u64,
    /// Answered, plus not answered while closed or waiting past the target.
    pub counted: u64,
}

impl WithinTarget {
    /// 0..=1, `None` when nothing is counted.
    pub fn share(&self) -> Option<f64> {
        (self.counted > 0).then(|| self.within as f64 / self.counted as f64)
    }
}

/// Ratings given, by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ratings {
    /// `distribution[i]`: how many rated `i + 1`.
    pub distribution: [u64; 5],
}

impl Ratings {
    pub fn count(&self) -> u64 {
        self.distribution.iter().sum()
    }

    /// The mean rating, `None` when none was given.
    pub fn average(&self) -> Option<f64> {
        let count = self.count();
        let sum: u64 = self
            .distribution
            .iter()
            .zip(1u64..)
            .map(|(n, value)| n * value)
            .sum();
        (count > 0).then(|| sum as f64 / count as f64)
    }
}

/// The figures of a set of conversations (the period's, or one day's).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Conversations started.
    pub conversations: u64,
    /// Of them, answered by an agent (or application).
    pub answered: u64,
    /// Of them, closed now.
    pub closed: u64,
    pub first_response: Durations,
    pub resolution: Durations,
    pub within_target: WithinTarget,
    pub ratings: Ratings,
}

impl Figures {
    fn of(facts: &[&ConversationFacts], target_ms: i64, now_ms: i64) -> Figures {
        let mut first = Vec::new();
        let mut resolution = Vec::new();
        let mut within = WithinTarget::default();
        let mut ratings = Ratings::default();
        for f in facts {
            match f.first_response_ms {
                Some(at) => {
                    let wait = (at - f.created_ms).max(0);
                    first.push(wait);
                    within.counted += 1;
                    if wait <= target_ms {
                        within.within += 1;
                    }
                }
                None if f.closed_ms.is_some() || now_ms - f.created_ms > target_ms => {
                    within.counted += 1;
                }
                None => {}
            }
            if let Some(at) = f.closed_ms {
                resolution.push((at - f.created_ms).max(0));
            }
            if let Some(r @ 1..=5) = f.rating {
                ratings.distribution[usize::from(r - 1)] += 1;
            }
        }
        Figures {
            conversations: facts.len() as u64,
            answered: first.len() as u64,
            closed: resolution.len() as u64,
            first_response: Durations::of(first),
            resolution: Durations::of(resolution),
            within_target: within,
            ratings,
        }
    }
}

/// One day's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub figures: Figures,
}

/// A report: the period's figures, each day's, and when conversations start.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub period: ReportPeriod,
    pub target_secs: u32,
    pub totals: Figures,
    /// Every day of the period, in order (days without conversations too).
    pub days: Vec<DayFigures>,
    /// Conversations started by weekday (Monday first) and hour of day.
    pub heatmap: [[u64; 24]; 7],
}

impl Report {
    /// The report of `facts` (conversations started in `period`; others are
    /// left out) with a target of `target_secs`, as of `now_ms`.
    pub fn compute(
        period: ReportPeriod,
        target_secs: u32,
        now_ms: i64,
        facts: &[ConversationFacts],
    ) -> Report {
        let target_ms = i64::from(target_secs) * 1000;
        let mut by_day: Vec<Vec<&ConversationFacts>> = vec![Vec::new(); period.days()];
        let mut heatmap = [[0u64; 24]; 7];
        let mut all = Vec::with_capacity(facts.len());
        for f in facts {
            let Some((day, weekday, hour)) = period.place(f.created_ms) else {
                continue;
            };
            by_day[day].push(f);
            heatmap[weekday][hour] += 1;
            all.push(f);
        }
        Report {
            period,
            target_secs,
            totals: Figures::of(&all, target_ms, now_ms),
            days: period
                .dates()
                .zip(by_day)
                .map(|(date, facts)| DayFigures {
                    date,
                    figures: Figures::of(&facts, target_ms, now_ms),
                })
                .collect(),
            heatmap,
        }
    }

    /// Conversations started by hour of day, over every weekday.
    pub fn hours(&self) -> [u64; 24] {
        let mut hours = [0; 24];
        for row in &self.heatmap {
            for (h, n) in row.iter().enumerate() {
                hours[h] += n;
            }
        }
        hours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> i64 {
        chrono::Utc
            .with_ymd_and_hms(y, m, d, h, min, s)
            .unwrap()
            .timestamp_millis()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn percentiles_interpolate_between_the_nearest_values() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7.0));
        assert_eq!(percentile(&[10, 20], 0.5), Some(15.0));
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 0.5), Some(30.0));
        // rank 0.9 * 4 = 3.6: 40 + 0.6 * 10
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 0.9), Some(46.0));
    }

    #[test]
    fn a_period_is_whole_days_of_its_time_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let p = ReportPeriod::new(date(2026, 1, 1), date(2026, 1, 2), paris).unwrap();
        assert_eq!(p.days(), 2);
        // Paris is UTC+1 in January.
        assert_eq!(
            p.bounds_ms(),
            (utc(2025, 12, 31, 23, 0, 0), utc(2026, 1, 2, 23, 0, 0))
        );
        let u = ReportPeriod::new(date(2026, 1, 1), date(2026, 1, 1), Tz::UTC).unwrap();
        assert_eq!(
            u.bounds_ms(),
            (utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 2, 0, 0, 0))
        );
    }

    #[test]
    fn bad_periods_and_targets_are_refused_naming_the_field() {
        let e = ReportPeriod::new(date(2026, 2, 1), date(2026, 1, 1), Tz::UTC).unwrap_err();
        assert_eq!(e.field, "from");
        let e = ReportPeriod::new(date(2025, 1, 1), date(2026, 1, 2), Tz::UTC).unwrap_err();
        assert_eq!(e.field, "to");
        assert!(ReportPeriod::new(date(2025, 1, 2), date(2026, 1, 2), Tz::UTC).is_ok());
        assert_eq!(parse_date("from", "2026-13-01").unwrap_err().field, "from");
        assert_eq!(parse_target("0").unwrap_err().field, "target");
        assert_eq!(parse_target("86401").unwrap_err().field, "target");
        assert_eq!(parse_target("-5").unwrap_err().field, "target");
        assert_eq!(parse_target("60"), Ok(60));
        assert_eq!(parse_time_zone("Mars/Olympus").unwrap_err().field, "tz");
    }

    #[test]
    fn figures_follow_the_definitions() {
        let day = date(2026, 3, 2); // a Monday
        let p = ReportPeriod::new(day, date(2026, 3, 3), Tz::UTC).unwrap();
        let t0 = utc(2026, 3, 2, 9, 0, 0);
        let now = utc(2026, 3, 10, 0, 0, 0);
        let facts = [
            // answered in 30 s, closed after 1 h, rated 5
            ConversationFacts {
                created_ms: t0,
                first_response_ms: Some(t0 + 30_000),
                closed_ms: Some(t0 + H),
                rating: Some(5),
            },
            // answered in 90 s, closed after 3 h, rated 2
            ConversationFacts {
                created_ms: t0 + 60_000,
                first_response_ms: Some(t0 + 150_000),
                closed_ms: Some(t0 + 60_000 + 3 * H),
                rating: Some(2),
            },
            // never answered, closed: a miss
            ConversationFacts {
                created_ms: utc(2026, 3, 3, 14, 5, 0),
                first_response_ms: None,
                closed_ms: Some(utc(2026, 3, 3, 15, 5, 0)),
                rating: None,
            },
            // the day after the period: left out
            ConversationFacts {
                created_ms: utc(2026, 3, 4, 0, 0, 0),
                first_response_ms: None,
                closed_ms: None,
                rating: Some(1),
            },
        ];
        let r = Report::compute(p, 60, now, &facts);
        assert_eq!(r.totals.conversations, 3);
        assert_eq!(r.totals.answered, 2);
        assert_eq!(r.totals.closed, 3);
        assert_eq!(r.totals.first_response.median_ms, Some(60_000.0));
        assert_eq!(r.totals.first_response.p90_ms, Some(84_000.0));
        assert_eq!(r.totals.resolution.median_ms, Some(H as f64));
        assert_eq!(
            r.totals.within_target,
            WithinTarget {
                within: 1,
                counted: 3
            }
        );
        assert_eq!(r.totals.ratings.distribution, [0, 1, 0, 0, 1]);
        assert_eq!(r.totals.ratings.average(), Some(3.5));
        assert_eq!(r.days.len(), 2);
        assert_eq!(r.days[0].figures.conversations, 2);
        assert_eq!(r.days[1].figures.conversations, 1);
        assert_eq!(r.heatmap[0][9], 2); // Monday 09:00
        assert_eq!(r.heatmap[1][14], 1); // Tuesday 14:00
        assert_eq!(r.hours()[9], 2);
    }

    #[test]
    fn a_conversation_still_waiting_within_the_target_is_not_counted_yet() {
        let p = ReportPeriod::new(date(2026, 3, 2), date(2026, 3, 2), Tz::UTC).unwrap();
        let t0 = utc(2026, 3, 2, 9, 0, 0);
        let waiting = ConversationFacts {
            created_ms: t0,
            first_response_ms: None,
            closed_ms: None,
            rating: None,
        };
        let r = Report::compute(p, 60, t0 + 10_000, &[waiting]);
        assert_eq!(r.totals.within_target.counted, 0);
        assert_eq!(r.totals.within_target.share(), None);
        let r = Report::compute(p, 60, t0 + 61_000, &[waiting]);
        assert_eq!(r.totals.within_target.counted, 1);
        assert_eq!(r.totals.within_target.share(), Some(0.0));
    }

    #[test]
    fn days_and_hours_are_those_of_the_time_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let p = ReportPeriod::new(date(2026, 3, 2), date(2026, 3, 3), paris).unwrap();
        // 23:30 UTC on Monday is 00:30 on Tuesday in Paris.
        let f = ConversationFacts {
            created_ms: utc(2026, 3, 2, 23, 30, 0),
            first_response_ms: None,
            closed_ms: None,
            rating: None,
        };
        let r = Report::compute(p, 60, 0, &[f]);
        assert_eq!(r.days[1].figures.conversations, 1);
        assert_eq!(r.heatmap[1][0], 1);
    }
}
