//! A report as JSON (`GET /reports`, described by `shapes::Report`) and as
//! CSV (the console's export): the same figures, durations in seconds.

use serde_json::{json, Value};

use crate::domain::report::{Durations, Figures, Report};
use crate::service::reports::TenantReport;

/// Milliseconds as seconds, to the millisecond.
fn seconds(ms: f64) -> f64 {
    ms.round() / 1000.0
}

fn durations(d: &Durations) -> Value {
    json!({
        "count": d.count,
        "median_seconds": d.median_ms.map(seconds),
        "p90_seconds": d.p90_ms.map(seconds),
    })
}

fn figures(f: &Figures) -> Value {
    json!({
        "conversations": f.conversations,
        "answered": f.answered,
        "closed": f.closed,
        "first_response": durations(&f.first_response),
        "resolution": durations(&f.resolution),
        "within_target": {
            "within": f.within_target.within,
            "counted": f.within_target.counted,
            "share": f.within_target.share(),
        },
        "ratings": {
            "count": f.ratings.count(),
            "average": f.ratings.average(),
            "distribution": f.ratings.distribution,
        },
    })
}

/// `GET /reports`.
pub fn report(r: &TenantReport) -> Value {
    let report = &r.report;
    let days: Vec<Value> = report
        .days
        .iter()
        .map(|d| {
            let mut day = figures(&d.figures);
            day["date"] = json!(d.date.to_string());
            day
        })
        .collect();
    json!({
        "from": report.period.from().to_string(),
        "to": report.period.to().to_string(),
        "time_zone": report.period.time_zone().name(),
        "target_seconds": report.target_secs,
        "channel_uuid": r.channel.as_ref().map(|c| c.id.to_string()),
        "agent_uuid": r.agent.as_ref().map(|a| a.id.to_string()),
        "totals": figures(&report.totals),
        "days": days,
        "hours": report.hours(),
        "heatmap": report.heatmap,
    })
}

/// The CSV's columns.
pub const CSV_HEADER: &str = "date,conversations,answered,closed,\
first_response_median_seconds,first_response_p90_seconds,\
resolution_median_seconds,resolution_p90_seconds,\
answered_within_target,counted_for_target,share_within_target,\
ratings,average_rating,rated_1,rated_2,rated_3,rated_4,rated_5";

/// One row per day, then `total`; an empty cell where there is no figure
/// (no conversation answered, closed or rated). Only dates and numbers:
/// no cell a spreadsheet could take for a formula.
pub fn csv(report: &Report) -> String {
    let mut out = String::with_capacity(128 * (report.days.len() + 2));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    let rows = report
        .days
        .iter()
        .map(|d| (d.date.to_string(), &d.figures))
        .chain(std::iter::once(("total".to_string(), &report.totals)));
    for (label, f) in rows {
        let secs = |ms: Option<f64>| ms.map(|ms| seconds(ms).to_string()).unwrap_or_default();
        let share = f
            .within_target
            .share()
            .map(|s| format!("{s:.4}"))
            .unwrap_or_default();
        let average = f
            .ratings
            .average()
            .map(|a| format!("{a:.2}"))
            .unwrap_or_default();
        let d = f.ratings.distribution;
        out.push_str(&format!(
            "{label},{},{},{},{},{},{},{},{},{},{share},{},{average},{},{},{},{},{}\r\n",
            f.conversations,
            f.answered,
            f.closed,
            secs(f.first_response.median_ms),
            secs(f.first_response.p90_ms),
            secs(f.resolution.median_ms),
            secs(f.resolution.p90_ms),
            f.within_target.within,
            f.within_target.counted,
            f.ratings.count(),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
        ));
    }
    out
}
