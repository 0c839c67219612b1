//! The Reports page (`/console/reports`) and its CSV export
//! (`/console/reports.csv`): a filter form that works without JavaScript
//! (GET parameters, the same as `GET /reports`), the figures as cards, and
//! charts drawn here as SVG (no chart library), each with a title, a
//! description and its data as a table. Admins see the tenant, by channel
//! and agent; an agent its own figures (the service decides).

use askama::Template;
use warp::http::header::{self, HeaderValue};
use warp::reply::Response;

use super::pages::chrome;
use super::views::{Chrome, PRESENCE_STATES};
use super::{render, Request, Session};
use crate::domain::report::{Report, WEEKDAYS};
use crate::error::ApiError;
use crate::service::reports::{ReportChoices, ReportRequest, TenantReport};
use crate::service::ServiceError;
use crate::state::App;

/// The query parameters the form sends (and the CSV link repeats).
const PARAMS: [&str; 6] = ["from", "to", "tz", "channel", "agent", "target"];

/// The filter form's values, as the agent typed them or as the report used them.
pub struct FilterForm {
    pub from: String,
    pub to: String,
    pub tz: String,
    pub target: String,
    pub channel: String,
    pub agent: String,
}

/// An option of a filter's select.
pub struct Choice {
    pub id: String,
    pub name: String,
    pub selected: bool,
}

/// A figure on a card.
pub struct Kpi {
    pub label: &'static str,
    pub value: String,
    pub detail: String,
}

/// A bar of the per-day chart, in the SVG's units.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub title: String,
}

/// A label on an axis, in the SVG's units.
pub struct AxisLabel {
    pub at: String,
    pub text: String,
    /// Its `text-anchor`: the first date starts at its bar, clear of the
    /// value axis.
    pub anchor: &'static str,
}

/// The per-day bar chart.
pub struct DayChart {
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<AxisLabel>,
    pub x_labels: Vec<AxisLabel>,
    pub desc: String,
}

/// A cell of the weekday × hour heatmap.
pub struct Cell {
    pub x: u32,
    pub y: u32,
    /// 0.06 (none) to 1 (the busiest hour).
    pub opacity: String,
    pub title: String,
}

/// A weekday of the heatmap.
pub struct HeatRow {
    pub day: &'static str,
    /// `Mon`, ...
    pub short: &'static str,
    /// The middle of its row, in the SVG's units.
    pub y: u32,
    pub counts: Vec<u64>,
}

pub struct Heatmap {
    pub cells: Vec<Cell>,
    pub desc: String,
    /// The weekdays, Monday first, with their 24 counts.
    pub rows: Vec<HeatRow>,
    /// The busiest hours, in words.
    pub busiest: String,
}

/// A bar of the ratings chart: 5 stars first.
pub struct RatingBar {
    pub stars: u8,
    pub count: u64,
    pub percent: String,
    /// The bar's width in the SVG's units.
    pub w: String,
    pub y: u32,
}

/// One day of the table.
pub struct DayRow {
    pub date: String,
    pub conversations: u64,
    pub answered: u64,
    pub first_response: String,
    pub resolution: String,
    pub within: String,
    pub rating: String,
}

/// What the page shows of a report.
pub struct ReportView {
    pub period: String,
    pub scope: String,
    pub kpis: Vec<Kpi>,
    pub days: DayChart,
    pub day_rows: Vec<DayRow>,
    pub heatmap: Heatmap,
    pub ratings: Vec<RatingBar>,
    pub ratings_desc: String,
    pub csv_href: String,
}

/// GET /console/reports
#[derive(Template)]
#[template(path = "console/reports.html")]
pub struct ReportsPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
    pub form: FilterForm,
    pub channels: Vec<Choice>,
    pub agents: Vec<Choice>,
    pub is_admin: bool,
    pub error: Option<String>,
    pub view: Option<ReportView>,
}

/// The request's parameters, as given (empty when absent).
fn given<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    req.query(name).map(str::trim).filter(|v| !v.is_empty())
}

/// GET /console/reports
pub async fn page(app: &App, req: &Request, s: &Session) -> Result<Response, ApiError> {
    let chrome = chrome(app, s, "Reports".into(), "reports", back(req)).await?;
    let choices = app.services.reports.choices(&s.caller).await?;
    let asked = ReportRequest::parse(|name| given(req, name));
    let outcome = match asked {
        Ok(asked) => app.services.reports.report(&s.caller, &asked).await,
        Err(err) => Err(err),
    };
    let (form, view, error) = match outcome {
        Ok(report) => (
            form_of(&report),
            Some(view_of(&report, &csv_href(&report))),
            None,
        ),
        Err(err) => {
            let message = refusal(err)?;
            (form_as_given(req), None, Some(message))
        }
    };
    let status = super::form_status(&error);
    let (channels, agents) = choices_of(&choices, &form);
    render(
        status,
        &ReportsPage {
            chrome,
            csrf: s.csrf.clone(),
            states: PRESENCE_STATES,
            form,
            channels,
            agents,
            is_admin: s.caller.is_admin(),
            error,
            view,
        },
    )
}

/// GET /console/reports.csv: the same report, one row per day and a total.
pub async fn csv(app: &App, req: &Request, s: &Session) -> Result<Response, ApiError> {
    let asked = ReportRequest::parse(|name| given(req, name))?;
    let report = app.services.reports.report(&s.caller, &asked).await?;
    let body = crate::wire::report::csv(&report.report);
    let period = &report.report.period;
    let name = format!("chatgate-report-{}-{}.csv", period.from(), period.to());
    let mut response = Response::new(body.into());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A refused report's message (a parameter to correct, or another agent's
/// figures); any other error is the error page.
fn refusal(err: ServiceError) -> Result<String, ApiError> {
    match err {
        ServiceError::Forbidden(why) => Ok(why.to_string()),
        err => super::refusal(err),
    }
}

/// Where the presence form returns: this page with its parameters.
fn back(req: &Request) -> String {
    let query = query_of(|name| given(req, name).map(str::to_string));
    if query.is_empty() {
        "/console/reports".into()
    } else {
        format!("/console/reports?{query}")
    }
}

fn query_of(get: impl Fn(&'static str) -> Option<String>) -> String {
    let pairs: Vec<(&str, String)> = PARAMS
        .iter()
        .filter_map(|&name| get(name).map(|v| (name, v)))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The CSV link: the report's own period and filters, spelled out.
fn csv_href(r: &TenantReport) -> String {
    let form = form_of(r);
    let query = query_of(|name| {
        let v = match name {
            "from" => &form.from,
            "to" => &form.to,
            "tz" => &form.tz,
            "target" => &form.target,
            "channel" => &form.channel,
            _ => &form.agent,
        };
        (!v.is_empty()).then(|| v.clone())
    });
    format!("/console/reports.csv?{query}")
}

fn form_of(r: &TenantReport) -> FilterForm {
    let p = &r.report.period;
    FilterForm {
        from: p.from().to_string(),
        to: p.to().to_string(),
        tz: p.time_zone().name().to_string(),
        target: r.report.target_secs.to_string(),
        channel: r
            .channel
            .as_ref()
            .map_or(String::new(), |c| c.id.to_string()),
        agent: r.agent.as_ref().map_or(String::new(), |a| a.id.to_string()),
    }
}

fn form_as_given(req: &Request) -> FilterForm {
    let get = |name| given(req, name).unwrap_or("").to_string();
    FilterForm {
        from: get("from"),
        to: get("to"),
        tz: given(req, "tz").unwrap_or("UTC").to_string(),
        target: get("target"),
        channel: get("channel"),
        agent: get("agent"),
    }
}

fn choices_of(choices: &ReportChoices, form: &FilterForm) -> (Vec<Choice>, Vec<Choice>) {
    let channels = choices
        .channels
        .iter()
        .map(|c| Choice {
            id: c.id.to_string(),
            name: c.name.clone(),
            selected: c.id.to_string() == form.channel,
        })
        .collect();
    let mut agents: Vec<Choice> = choices
        .agents
        .iter()
        .map(|a| Choice {
            id: a.id.to_string(),
            name: a.display_name.clone(),
            selected: a.id.to_string() == form.agent,
        })
        .collect();
    agents.sort_by_key(|a| a.name.to_lowercase());
    (channels, agents)
}

/// A duration for people: `45 s`, `3 min 20 s`, `2 h 05 min`, `3 d 4 h`.
pub fn duration(ms: Option<f64>) -> String {
    let Some(ms) = ms else {
        return "—".into();
    };
    let secs = (ms / 1000.0).round() as i64;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        },
        s if s < 86_400 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("—".into(), |s| format!("{:.0}%", s * 100.0))
}

fn target_words(secs: u32) -> String {
    duration(Some(f64::from(secs) * 1000.0))
}

/// "1 Mar 2026 – 30 Mar 2026"
fn period_words(r: &Report) -> String {
    let p = &r.period;
    let day = |d: chrono::NaiveDate| d.format("%-d %b %Y").to_string();
    if p.from() == p.to() {
        format!("{} ({})", day(p.from()), p.time_zone().name())
    } else {
        format!(
            "{} – {} ({})",
            day(p.from()),
            day(p.to()),
            p.time_zone().name()
        )
    }
}

/// The SVG units of the per-day chart (scaled to the page's width).
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 220.0;
const CHART_LEFT: f64 = 44.0;
const CHART_BOTTOM: f64 = 30.0;
const CHART_TOP: f64 = 10.0;

/// A round step for `max` over about four ticks: 1, 2, 5 × 10^n.
fn tick_step(max: u64) -> u64 {
    let raw = (max as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    step.max(1.0) as u64
}

fn day_chart(r: &Report) -> DayChart {
    let counts: Vec<u64> = r.days.iter().map(|d| d.figures.conversations).collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    let step = tick_step(max);
    let top = max.div_ceil(step).max(1) * step;
    let plot_w = CHART_W - CHART_LEFT;
    let plot_h = CHART_H - CHART_TOP - CHART_BOTTOM;
    let slot = plot_w / counts.len().max(1) as f64;
    let gap = if slot > 6.0 { slot * 0.2 } else { 0.5 };
    let bars = r
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let n = d.figures.conversations;
            let h = plot_h * n as f64 / top as f64;
            Bar {
                x: format!("{:.1}", CHART_LEFT + i as f64 * slot + gap / 2.0),
                y: format!("{:.1}", CHART_TOP + plot_h - h),
                w: format!("{:.1}", (slot - gap).max(0.5)),
                h: format!("{h:.1}"),
                title: format!(
                    "{}: {n} conversation{}",
                    d.date.format("%a %-d %b"),
                    if n == 1 { "" } else { "s" }
                ),
            }
        })
        .collect();
    let y_ticks = (0..=top / step)
        .map(|k| {
            let v = k * step;
            AxisLabel {
                at: format!("{:.1}", CHART_TOP + plot_h - plot_h * v as f64 / top as f64),
                text: v.to_string(),
                anchor: "end",
            }
        })
        .collect();
    // About six dates along the axis, the first and every k-th day.
    let every = counts.len().div_ceil(6).max(1);
    let x_labels = r
        .days
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(i, d)| AxisLabel {
            at: if i == 0 {
                format!("{CHART_LEFT:.1}")
            } else {
                format!("{:.1}", CHART_LEFT + (i as f64 + 0.5) * slot)
            },
            text: d.date.format("%-d %b").to_string(),
            anchor: if i == 0 { "start" } else { "middle" },
        })
        .collect();
    let busiest = r
        .days
        .iter()
        .max_by_key(|d| (d.figures.conversations, std::cmp::Reverse(d.date)))
        .filter(|d| d.figures.conversations > 0);
    let desc = match busiest {
        Some(d) => format!(
            "{} conversations over {} days; the busiest day was {} with {}.",
            r.totals.conversations,
            r.days.len(),
            d.date.format("%A %-d %B"),
            d.figures.conversations
        ),
        None => format!("No conversations over {} days.", r.days.len()),
    };
    DayChart {
        bars,
        y_ticks,
        x_labels,
        desc,
    }
}

fn heatmap(r: &Report) -> Heatmap {
    let max = r.heatmap.iter().flatten().copied().max().unwrap_or(0);
    let mut cells = Vec::with_capacity(7 * 24);
    for (d, row) in r.heatmap.iter().enumerate() {
        for (h, &n) in row.iter().enumerate() {
            let opacity = if max == 0 || n == 0 {
                0.06
            } else {
                0.18 + 0.82 * n as f64 / max as f64
            };
            cells.push(Cell {
                x: h as u32,
                y: d as u32,
                opacity: format!("{opacity:.2}"),
                title: format!("{} {h:02}:00–{h:02}:59: {n}", WEEKDAYS[d]),
            });
        }
    }
    let hours = r.hours();
    let mut ranked: Vec<usize> = (0..24).filter(|&h| hours[h] > 0).collect();
    ranked.sort_by_key(|&h| (std::cmp::Reverse(hours[h]), h));
    let busiest = if ranked.is_empty() {
        "No conversations started in this period.".to_string()
    } else {
        let top: Vec<String> = ranked
            .iter()
            .take(3)
            .map(|&h| format!("{h:02}:00 ({})", hours[h]))
            .collect();
        format!("Busiest hours: {}.", top.join(", "))
    };
    Heatmap {
        cells,
        desc: format!(
            "Conversations started by weekday and hour, in {}; darker is busier. {busiest}",
            r.period.time_zone().name()
        ),
        rows: r
            .heatmap
            .iter()
            .enumerate()
            .map(|(d, row)| HeatRow {
                day: WEEKDAYS[d],
                short: &WEEKDAYS[d][..3],
                y: 22 + d as u32 * 23 + 11,
                counts: row.to_vec(),
            })
            .collect(),
        busiest,
    }
}

fn ratings(r: &Report) -> (Vec<RatingBar>, String) {
    let dist = r.totals.ratings.distribution;
    let count = r.totals.ratings.count();
    let max = dist.iter().copied().max().unwrap_or(0).max(1);
    let bars = (1..=5u8)
        .rev()
        .enumerate()
        .map(|(i, stars)| {
            let n = dist[usize::from(stars - 1)];
            RatingBar {
                stars,
                count: n,
                percent: if count == 0 {
                    "—".into()
                } else {
                    format!("{:.0}%", n as f64 * 100.0 / count as f64)
                },
                w: format!("{:.1}", 200.0 * n as f64 / max as f64),
                y: i as u32 * 28,
            }
        })
        .collect();
    let desc = match r.totals.ratings.average() {
        Some(avg) => format!(
            "{count} rating{}, {avg:.1} out of 5 on average: {}.",
            if count == 1 { "" } else { "s" },
            (1..=5u8)
                .rev()
                .map(|s| format!("{s} stars {}", dist[usize::from(s - 1)]))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "No ratings in this period.".into(),
    };
    (bars, desc)
}

fn view_of(r: &TenantReport, csv_href: &str) -> ReportView {
    let report = &r.report;
    let t = &report.totals;
    let scope = format!(
        "{} · {}",
        r.channel
            .as_ref()
            .map_or("All channels".to_string(), |c| c.name.clone()),
        r.agent
            .as_ref()
            .map_or("All agents".to_string(), |a| a.display_name.clone())
    );
    let kpis = vec![
        Kpi {
            label: "Conversations",
            value: t.conversations.to_string(),
            detail: format!("{} answered · {} closed", t.answered, t.closed),
        },
        Kpi {
            label: "First response (median)",
            value: duration(t.first_response.median_ms),
            detail: format!("90% within {}", duration(t.first_response.p90_ms)),
        },
        Kpi {
            label: "Resolution (median)",
            value: duration(t.resolution.median_ms),
            detail: format!("90% within {}", duration(t.resolution.p90_ms)),
        },
        Kpi {
            label: "Answered within target",
            value: percent(t.within_target.share()),
            detail: format!(
                "{} of {} within {}",
                t.within_target.within,
                t.within_target.counted,
                target_words(report.target_secs)
            ),
        },
        Kpi {
            label: "Average rating",
            value: t
                .ratings
                .average()
                .map_or("—".into(), |a| format!("{a:.1} / 5")),
            detail: format!(
                "{} rating{}",
                t.ratings.count(),
                if t.ratings.count() == 1 { "" } else { "s" }
            ),
        },
    ];
    let day_rows = report
        .days
        .iter()
        .map(|d| {
            let f = &d.figures;
            DayRow {
                date: d.date.format("%a %-d %b %Y").to_string(),
                conversations: f.conversations,
                answered: f.answered,
                first_response: duration(f.first_response.median_ms),
                resolution: duration(f.resolution.median_ms),
                within: percent(f.within_target.share()),
                rating: f
                    .ratings
                    .average()
                    .map_or("—".into(), |a| format!("{a:.1}")),
            }
        })
        .collect();
    let (ratings, ratings_desc) = ratings(report);
    ReportView {
        period: period_words(report),
        scope,
        kpis,
        days: day_chart(report),
        day_rows,
        heatmap: heatmap(report),
        ratings,
        ratings_desc,
        csv_href: csv_href.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(None), "—");
        assert_eq!(duration(Some(45_000.0)), "45 s");
        assert_eq!(duration(Some(120_000.0)), "2 min");
        assert_eq!(duration(Some(200_000.0)), "3 min 20 s");
        assert_eq!(duration(Some(7_500_000.0)), "2 h 05 min");
        assert_eq!(duration(Some(2.0 * 86_400_000.0 + 3_600_000.0)), "2 d 1 h");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(tick_step(0), 1);
        assert_eq!(tick_step(4), 1);
        assert_eq!(tick_step(7), 2);
        assert_eq!(tick_step(37), 10);
        assert_eq!(tick_step(180), 50);
    }
}
