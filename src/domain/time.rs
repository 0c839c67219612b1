//! Times are integer milliseconds since the Unix epoch inside chatgate and
//! ISO 8601 with exactly three fractional digits and `Z` on the wire.

use chrono::{DateTime, Utc};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// `2026-11-22T10:15:30.123Z`
pub fn format_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        // Not `format("%Y-...")`: that parses its pattern on every call,
        // and every message on the wire carries a time or two.
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// Parses an ISO 8601 / RFC 3339 date (`2026-11-22T10:15:30.123Z`, or with
/// an offset, or a bare date) into Unix milliseconds.
pub fn parse_ms(raw: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_three_fraction_digits_and_z() {
        assert_eq!(format_ms(1_763_806_530_123), "2025-11-22T10:15:30.123Z");
        assert_eq!(format_ms(1_763_806_530_000), "2025-11-22T10:15:30.000Z");
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }
}
