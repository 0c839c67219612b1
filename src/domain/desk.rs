//! A channel's support-desk settings (desk-api.md, "Support desk"):
//! business hours, the pre-chat form and its answers.
//!
//! # Choices worth knowing about
//!
//! - A schedule is wall-clock time in the channel's IANA time zone: a range
//!   `["09:00", "17:30"]` is open while the local time is at or after 09:00
//!   and before 17:30, whatever the UTC offset that day (DST included).
//! - A range never spans midnight (`start < end`, `end` may be `"24:00"`);
//!   a night shift is two ranges, `["22:00", "24:00"]` on one day and
//!   `["00:00", "06:00"]` on the next, which join into one open stretch.
//! - A closed date closes that whole local calendar day.
//! - DST: an opening time that does not exist that day (the spring-forward
//!   gap) opens at the end of the gap; an ambiguous local time (the
//!   fall-back hour) is open on both of its occurrences.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MAX_RANGES_PER_DAY: usize = 10;
const MAX_CLOSED_DATES: usize = 366;
/// How far ahead the next opening is looked for: past the longest run of
/// closed dates, plus a week.
const HORIZON_DAYS: i64 = MAX_CLOSED_DATES as i64 + 8;

/// An invalid setting: the field (`business_hours.weekly.mon[0]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SettingError {
    SettingError {
        field: field.into(),
        message: message.into(),
    }
}

/// An opening range of one weekday, in minutes after local midnight
/// (`start < end <= 1440`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: u16,
    pub end: u16,
}

/// A weekly schedule in a time zone, plus closed dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct BusinessHours {
    pub time_zone: Tz,
    /// Monday first; each day's ranges sorted and disjoint.
    pub weekly: [Vec<Span>; 7],
    pub closed_dates: BTreeSet<NaiveDate>,
}

fn parse_hhmm(raw: &str) -> Option<u16> {
    let (h, m) = raw.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl BusinessHours {
    /// Parses the `business_hours` setting strictly: 400 naming the field otherwise.
    pub fn parse(value: &Value) -> Result<BusinessHours, SettingError> {
        let f = "business_hours";
        let obj = value
            .as_object()
            .ok_or_else(|| err(f, "business_hours must be an object or null"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "time_zone" | "weekly" | "closed_dates"))
        {
            return Err(err(format!("{f}.{k}"), format!("unknown field `{k}`")));
        }
        let time_zone = obj
            .get("time_zone")
            .and_then(Value::as_str)
            .ok_or_else(|| err("business_hours.time_zone", "time_zone is required"))?;
        let time_zone: Tz = time_zone.parse().map_err(|_| {
            err(
                "business_hours.time_zone",
                format!("`{time_zone}` is not an IANA time zone like Europe/Paris"),
            )
        })?;
        let mut weekly: [Vec<Span>; 7] = Default::default();
        let empty = Map::new();
        let week = match obj.get("weekly") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(w)) => w,
            Some(_) => return Err(err("business_hours.weekly", "weekly must be an object")),
        };
        for (day, ranges) in week {
            let field = format!("business_hours.weekly.{day}");
            let index = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| err(&field, format!("`{day}` is not a day (mon..sun)")))?;
            let ranges = ranges
                .as_array()
                .ok_or_else(|| err(&field, "a day's hours must be a list of [start, end]"))?;
            if ranges.len() > MAX_RANGES_PER_DAY {
                return Err(err(&field, "at most 10 ranges a day"));
            }
            let mut spans = Vec::with_capacity(ranges.len());
            for (i, range) in ranges.iter().enumerate() {
                let field = format!("{field}[{i}]");
                let pair = range.as_array().filter(|p| p.len() == 2);
                let times = pair
                    .and_then(|p| Some((parse_hhmm(p[0].as_str()?)?, parse_hhmm(p[1].as_str()?)?)));
                let (start, end) = times.ok_or_else(|| {
                    err(&field, "a range is [\"HH:MM\", \"HH:MM\"] (00:00 to 24:00)")
                })?;
                if start >= end {
                    return Err(err(
                        &field,
                        format!(
                            "{} is not before {}: a range ends after it starts (split a night over midnight into two days)",
                            hhmm(start),
                            hhmm(end)
                        ),
                    ));
                }
                spans.push(Span { start, end });
            }
            spans.sort_by_key(|s| s.start);
            if let Some(w) = spans.windows(2).find(|w| w[1].start < w[0].end) {
                return Err(err(
                    &field,
                    format!(
                        "{}-{} overlaps {}-{}",
                        hhmm(w[0].start),
                        hhmm(w[0].end),
                        hhmm(w[1].start),
                        hhmm(w[1].end)
                    ),
                ));
            }
            weekly[index] = spans;
        }
        let mut closed_dates = BTreeSet::new();
        match obj.get("closed_dates") {
            None | Some(Value::Null) => {}
            Some(Value::Array(dates)) if dates.len() <= MAX_CLOSED_DATES => {
                for (i, d) in dates.iter().enumerate() {
                    let date = d
                        .as_str()
                        .filter(|s| s.len() == 10)
                        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                        .ok_or_else(|| {
                            err(
                                format!("business_hours.closed_dates[{i}]"),
                                "a closed date is a real date like 2026-12-25",
                            )
                        })?;
                    closed_dates.insert(date);
                }
            }
            Some(Value::Array(_)) => {
                return Err(err(
                    "business_hours.closed_dates",
                    "at most 366 closed dates",
                ))
            }
            Some(_) => {
                return Err(err(
                    "business_hours.closed_dates",
                    "closed_dates must be a list of dates",
                ))
            }
        }
        Ok(BusinessHours {
            time_zone,
            weekly,
            closed_dates,
        })
    }

    /// The wire form, every day listed (an empty list: closed all day).
    pub fn to_json(&self) -> Value {
        let weekly: Map<String, Value> = DAYS
            .iter()
            .zip(&self.weekly)
            .map(|(day, spans)| {
                let ranges: Vec<Value> = spans
                    .iter()
                    .map(|s| json!([hhmm(s.start), hhmm(s.end)]))
                    .collect();
                (day.to_string(), Value::Array(ranges))
            })
            .collect();
        json!({
            "time_zone": self.time_zone.name(),
            "weekly": weekly,
            "closed_dates": self.closed_dates.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect::<Vec<_>>(),
        })
    }

    /// Whether the channel is open at `at_ms` (Unix milliseconds).
    pub fn is_open(&self, at_ms: i64) -> bool {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(at_ms) else {
            return false;
        };
        let local = utc.with_timezone(&self.time_zone).naive_local();
        let date = local.date();
        if self.closed_dates.contains(&date) {
            return false;
        }
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.weekly[date.weekday().num_days_from_monday() as usize]
            .iter()
            .any(|s| s.start <= minute && minute < s.end)
    }

    /// The first moment after `at_ms` when the channel opens or closes, if
    /// any within the horizon (a year and a week).
    pub fn next_change(&self, at_ms: i64) -> Option<i64> {
        let open = self.is_open(at_ms);
        let utc = chrono::DateTime::from_timestamp_millis(at_ms)?;
        let today = utc.with_timezone(&self.time_zone).date_naive();
        // A week at a time: candidates are every range's ends and every
        // midnight (closed dates), each local time as the instants it names.
        let mut day = today.pred_opt()?;
        let last = today + chrono::Duration::days(HORIZON_DAYS);
        while day <= last {
            let mut candidates = Vec::new();
            for _ in 0..7 {
                let spans = &self.weekly[day.weekday().num_days_from_monday() as usize];
                let mut minutes = vec![0u16];
                for s in spans {
                    minutes.extend([s.start, s.end]);
                }
                for m in minutes {
                    let naive = if m == 1440 {
                        day.succ_opt()?.and_time(NaiveTime::MIN)
                    } else {
                        day.and_hms_opt(u32::from(m / 60), u32::from(m % 60), 0)?
                    };
                    candidates.extend(self.instants(naive));
                }
                day = day.succ_opt()?;
            }
            candidates.sort_unstable();
            if let Some(c) = candidates
                .into_iter()
                .filter(|&c| c > at_ms)
                .find(|&c| self.is_open(c) != open)
            {
                return Some(c);
            }
        }
        None
    }

    /// When the channel next opens, if it is closed at `at_ms` (`None`
    /// when it is open, or never opens within the horizon).
    pub fn next_opening(&self, at_ms: i64) -> Option<i64> {
        if self.is_open(at_ms) {
            return None;
        }
        self.next_change(at_ms)
    }

    /// The instants a local time names: one; two in a fall-back hour; in a
    /// spring-forward gap, the end of the gap.
    fn instants(&self, naive: NaiveDateTime) -> Vec<i64> {
        use chrono::LocalResult;
        match self.time_zone.from_local_datetime(&naive) {
            LocalResult::Single(t) => vec![t.timestamp_millis()],
            LocalResult::Ambiguous(a, b) => vec![a.timestamp_millis(), b.timestamp_millis()],
            LocalResult::None => (1..=24 * 60)
                .map(|m| naive + chrono::Duration::minutes(m))
                .find_map(|n| self.time_zone.from_local_datetime(&n).earliest())
                .map(|t| vec![t.timestamp_millis()])
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<Value> for BusinessHours {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        BusinessHours::parse(&v).map_err(|e| format!("{}: {}", e.field, e.message))
    }
}

impl From<BusinessHours> for Value {
    fn from(h: BusinessHours) -> Value {
        h.to_json()
    }
}

/// Whether the pre-chat form asks for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    #[default]
    Off,
    Optional,
    Required,
}

impl Ask {
    pub fn as_str(self) -> &'static str {
        match self {
            Ask::Off => "off",
            Ask::Optional => "optional",
            Ask::Required => "required",
        }
    }

    pub fn parse(raw: &str) -> Option<Ask> {
        match raw {
            "off" => Some(Ask::Off),
            "optional" => Some(Ask::Optional),
            "required" => Some(Ask::Required),
            _ => None,
        }
    }
}

/// The pre-chat form: what it asks before the first message (off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrechatForm {
    pub name: Ask,
    pub email: Ask,
    pub question: Ask,
}

pub const PRECHAT_FIELDS: [&str; 3] = ["name", "email", "question"];

impl PrechatForm {
    /// `{"name"|"email"|"question": "off|optional|required"}` (absent: off), or null.
    pub fn parse(value: &Value) -> Result<PrechatForm, SettingError> {
        let mut form = PrechatForm::default();
        let obj = match value {
            Value::Null => return Ok(form),
            Value::Object(o) => o,
            _ => return Err(err("prechat", "prechat must be an object or null")),
        };
        for (k, v) in obj {
            let field = format!("prechat.{k}");
            let ask = v
                .as_str()
                .and_then(Ask::parse)
                .ok_or_else(|| err(&field, format!("{k} must be off, optional or required")))?;
            match k.as_str() {
                "name" => form.name = ask,
                "email" => form.email = ask,
                "question" => form.question = ask,
                _ => return Err(err(field, format!("unknown field `{k}`"))),
            }
        }
        Ok(form)
    }

    pub fn is_on(&self) -> bool {
        *self != PrechatForm::default()
    }

    pub fn get(&self, field: &str) -> Ask {
        match field {
            "name" => self.name,
            "email" => self.email,
            "question" => self.question,
            _ => Ask::Off,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name.as_str(),
            "email": self.email.as_str(),
            "question": self.question.as_str(),
        })
    }
}

/// A visitor's answers to the pre-chat form, as stored on the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrechatAnswers {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub question: Option<String>,
}

impl PrechatAnswers {
    const MAX_NAME: usize = 200;
    const MAX_EMAIL: usize = 320;
    const MAX_QUESTION: usize = 2000;

    /// The answers of a first send (`"prechat": {...}`): strings (blank is
    /// absent), within bounds, a well-formed email; an unknown field is
    /// refused naming it. The channel's form is applied by [`Self::checked`].
    pub fn parse(value: &Value) -> Result<PrechatAnswers, SettingError> {
        let obj = match value {
            Value::Null => return Ok(PrechatAnswers::default()),
            Value::Object(o) => o,
            _ => return Err(err("prechat", "prechat must be an object")),
        };
        if let Some(k) = obj.keys().find(|k| !PRECHAT_FIELDS.contains(&k.as_str())) {
            return Err(err(format!("prechat.{k}"), format!("unknown field `{k}`")));
        }
        let mut answers = PrechatAnswers::default();
        for field in PRECHAT_FIELDS {
            let name = format!("prechat.{field}");
            let value = match obj.get(field) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
                Some(_) => return Err(err(&name, format!("{field} must be a string"))),
            };
            let Some(value) = value else { continue };
            let max = match field {
                "name" => Self::MAX_NAME,
                "email" => Self::MAX_EMAIL,
                _ => Self::MAX_QUESTION,
            };
            if value.chars().count() > max {
                return Err(err(
                    &name,
                    format!("{field} is longer than {max} characters"),
                ));
            }
            if value.chars().any(|c| c.is_control() && c != '\n') {
                return Err(err(&name, format!("{field} has control characters")));
            }
            let value = Some(value.to_string());
            match field {
                "name" => answers.name = value,
                "email" => {
                    if !is_email(value.as_deref().unwrap_or_default()) {
                        return Err(err(&name, "email is not an address like ana@example.com"));
                    }
                    answers.email = value;
                }
                _ => answers.question = value,
            }
        }
        Ok(answers)
    }

    /// The answers the channel's `form` asks for: a required one missing is
    /// refused naming it; one the form does not ask for is dropped.
    pub fn checked(self, form: &PrechatForm) -> Result<PrechatAnswers, SettingError> {
        let keep = |field: &str, v: Option<String>| match (form.get(field), v) {
            (Ask::Off, _) => Ok(None),
            (Ask::Required, None) => Err(err(
                format!("prechat.{field}"),
                format!("{field} is required by the pre-chat form"),
            )),
            (_, v) => Ok(v),
        };
        Ok(PrechatAnswers {
            name: keep("name", self.name)?,
            email: keep("email", self.email)?,
            question: keep("question", self.question)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.question.is_none()
    }
}

/// `local@domain.tld`: one `@`, no spaces, a dot in the domain, neither
/// part empty, the domain's labels not empty.
pub fn is_email(raw: &str) -> bool {
    let Some((local, domain)) = raw.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(v: Value) -> BusinessHours {
        BusinessHours::parse(&v).unwrap()
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn at(ms: i64) -> String {
        crate::domain::time::format_ms(ms)
    }

    #[test]
    fn a_weekday_schedule_opens_and_closes_in_local_time() {
        let h = hours(json!({"time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "17:30"]]}}));
        // Monday 2026-12-07, CET (UTC+1).
        assert!(!h.is_open(ms("2026-12-07T07:59:00Z")));
        assert!(h.is_open(ms("2026-12-07T08:00:00Z")));
        assert!(h.is_open(ms("2026-12-07T16:29:59Z")));
        assert!(!h.is_open(ms("2026-12-07T16:30:00Z")));
        assert_eq!(
            at(h.next_change(ms("2026-12-07T10:00:00Z")).unwrap()),
            "2026-12-07T16:30:00.000Z"
        );
    }

    #[test]
    fn the_next_opening_may_be_a_week_away() {
        let h = hours(json!({"time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "17:30"]]}}));
        // Monday evening: next Monday 09:00 local.
        assert_eq!(
            at(h.next_opening(ms("2026-12-07T18:00:00Z")).unwrap()),
            "2026-12-14T08:00:00.000Z"
        );
        assert_eq!(h.next_opening(ms("2026-12-07T10:00:00Z")), None);
    }

    #[test]
    fn closed_dates_close_the_whole_local_day() {
        let h = hours(json!({"time_zone": "America/New_York",
            "weekly": {"fri": [["09:00", "17:00"]], "mon": [["09:00", "17:00"]]},
            "closed_dates": ["2026-12-25", "2026-12-28"]}));
        // Friday 25 December 10:00 EST is closed; next: Friday 1 January... no,
        // Monday 28 is closed too, so Friday 1 January 2027 09:00 EST.
        assert!(!h.is_open(ms("2026-12-25T15:00:00Z")));
        assert_eq!(
            at(h.next_opening(ms("2026-12-25T15:00:00Z")).unwrap()),
            "2027-01-01T14:00:00.000Z"
        );
        // A range ending at midnight closes at the start of a closed date.
        let night = hours(json!({"time_zone": "UTC",
            "weekly": {"thu": [["20:00", "24:00"]], "fri": [["00:00", "04:00"]]},
            "closed_dates": ["2026-12-25"]}));
        assert!(night.is_open(ms("2026-12-24T23:00:00Z")));
        assert_eq!(
            at(night.next_change(ms("2026-12-24T23:00:00Z")).unwrap()),
            "2026-12-25T00:00:00.000Z"
        );
    }

    #[test]
    fn ranges_joined_over_midnight_stay_open_across_it() {
        let h = hours(json!({"time_zone": "UTC",
            "weekly": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]}}));
        assert!(h.is_open(ms("2026-12-07T23:59:00Z")));
        assert!(h.is_open(ms("2026-12-08T00:00:00Z")));
        assert_eq!(
            at(h.next_change(ms("2026-12-07T23:00:00Z")).unwrap()),
            "2026-12-08T06:00:00.000Z"
        );
    }

    #[test]
    fn spring_forward_opens_at_the_end_of_the_gap() {
        // Europe/Paris, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let h = hours(json!({"time_zone": "Europe/Paris",
            "weekly": {"sun": [["02:30", "05:00"]]}}));
        assert_eq!(
            at(h.next_opening(ms("2026-03-28T12:00:00Z")).unwrap()),
            "2026-03-29T01:00:00.000Z"
        );
        // And closes at 05:00 CEST, an hour earlier in UTC than in winter.
        assert_eq!(
            at(h.next_change(ms("2026-03-29T01:30:00Z")).unwrap()),
            "2026-03-29T03:00:00.000Z"
        );
        let next_week = h.next_opening(ms("2026-03-29T04:00:00Z")).unwrap();
        assert_eq!(at(next_week), "2026-04-05T00:30:00.000Z");
    }

    #[test]
    fn fall_back_keeps_opening_times_on_local_time_and_opens_both_occurrences() {
        // America/New_York, Sunday 2026-11-01: 02:00 EDT becomes 01:00 EST.
        let h = hours(json!({"time_zone": "America/New_York",
            "weekly": {"sun": [["01:00", "01:30"], ["09:00", "17:00"]]}}));
        // 01:00 EDT = 05:00Z, open until 01:30 EDT = 05:30Z, then again
        // 01:00 EST = 06:00Z until 06:30Z.
        assert!(h.is_open(ms("2026-11-01T05:10:00Z")));
        assert!(!h.is_open(ms("2026-11-01T05:40:00Z")));
        assert_eq!(
            at(h.next_opening(ms("2026-11-01T05:40:00Z")).unwrap()),
            "2026-11-01T06:00:00.000Z"
        );
        // 09:00 EST that day is 14:00Z (13:00Z the day before, in EDT).
        assert_eq!(
            at(h.next_opening(ms("2026-11-01T07:00:00Z")).unwrap()),
            "2026-11-01T14:00:00.000Z"
        );
    }

    #[test]
    fn a_schedule_that_never_opens_has_no_next_opening() {
        let h = hours(json!({"time_zone": "UTC", "weekly": {}}));
        assert!(!h.is_open(ms("2026-12-07T10:00:00Z")));
        assert_eq!(h.next_opening(ms("2026-12-07T10:00:00Z")), None);
        let always = hours(json!({"time_zone": "UTC", "weekly": {
            "mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]], "wed": [["00:00", "24:00"]],
            "thu": [["00:00", "24:00"]], "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
            "sun": [["00:00", "24:00"]]}}));
        assert_eq!(always.next_change(ms("2026-12-07T10:00:00Z")), None);
    }

    #[test]
    fn invalid_schedules_are_refused_naming_the_field() {
        let cases = [
            (json!("9-5"), "business_hours"),
            (json!({"weekly": {}}), "business_hours.time_zone"),
            (
                json!({"time_zone": "Mars/Olympus"}),
                "business_hours.time_zone",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"funday": []}}),
                "business_hours.weekly.funday",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}),
                "business_hours.weekly.mon[0]",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00", "09:00"]]}}),
                "business_hours.weekly.mon[0]",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["9:00", "12:00"]]}}),
                "business_hours.weekly.mon[0]",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00", "24:30"]]}}),
                "business_hours.weekly.mon[0]",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00", "12:60"]]}}),
                "business_hours.weekly.mon[0]",
            ),
            (
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}),
                "business_hours.weekly.mon",
            ),
            (
                json!({"time_zone": "UTC", "closed_dates": ["2026-02-30"]}),
                "business_hours.closed_dates[0]",
            ),
            (
                json!({"time_zone": "UTC", "closed_dates": ["2026-1-5"]}),
                "business_hours.closed_dates[0]",
            ),
            (
                json!({"time_zone": "UTC", "holidays": []}),
                "business_hours.holidays",
            ),
        ];
        for (value, field) in cases {
            let e = BusinessHours::parse(&value).unwrap_err();
            assert_eq!(e.field, field, "{value}");
        }
        // Touching ranges are fine, and come back sorted.
        let h = hours(
            json!({"time_zone": "UTC", "weekly": {"mon": [["13:00", "17:00"], ["09:00", "13:00"]]}}),
        );
        assert_eq!(
            h.to_json()["weekly"]["mon"],
            json!([["09:00", "13:00"], ["13:00", "17:00"]])
        );
    }

    #[test]
    fn prechat_answers_follow_the_form() {
        let form = PrechatForm::parse(&json!({"name": "required", "email": "optional"})).unwrap();
        assert_eq!(form.question, Ask::Off);
        let answers = |v: Value| PrechatAnswers::parse(&v).and_then(|a| a.checked(&form));
        assert_eq!(
            answers(json!({"email": "a@b.co"})).unwrap_err().field,
            "prechat.name"
        );
        assert_eq!(
            answers(json!({"name": "  "})).unwrap_err().field,
            "prechat.name"
        );
        assert_eq!(
            answers(json!({"name": "Ana", "email": "nope"}))
                .unwrap_err()
                .field,
            "prechat.email"
        );
        assert_eq!(
            answers(json!({"name": "Ana", "age": 3})).unwrap_err().field,
            "prechat.age"
        );
        let a = answers(json!({"name": " Ana ", "question": "dropped: off"})).unwrap();
        assert_eq!(a.name.as_deref(), Some("Ana"));
        assert_eq!(a.question, None);
        assert!(PrechatForm::parse(&json!({"name": "maybe"})).is_err());
        assert!(PrechatForm::parse(&json!({"age": "off"})).is_err());
        for bad in ["", "a", "a@b", "@b.co", "a b@c.co", "a@@b.co", "a@b..co"] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_email("ana.silva+desk@example.co.uk"));
    }
}
