//! Reports (`GET /reports`, the console's `/console/reports` and its CSV):
//! exact figures of a known set of conversations whose times the test
//! writes into the server's database; filters by channel, agent, period
//! and time zone; another tenant's conversations never counted; the
//! agent role's own figures; bad parameters refused with the contract's
//! error shape; the first response time kept by the real write path.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp, VisitorSession};

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

/// 2026-03-02 (a Monday) at `h:m` UTC, plus `days`.
fn at(days: i64, h: i64, m: i64) -> i64 {
    // 2026-03-02T00:00:00Z
    1_772_409_600_000 + days * 24 * HOUR + h * HOUR + m * MIN
}

/// Writes a conversation's times, as if it had happened then.
async fn set_times(
    app: &TestApp,
    conversation: &str,
    created: i64,
    first_response: Option<i64>,
    closed: Option<i64>,
) {
    use sqlx::Connection;
    let sql = "UPDATE conversations SET created_at = $1, queued_at = $1, \
               first_response_at = $2, closed_at = $3 WHERE id = $4";
    let db = app.db.as_ref().expect("the test's database");
    let done = match &db.schema {
        Some(schema) => {
            let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
            sqlx::query(sql)
                .bind(created)
                .bind(first_response)
                .bind(closed)
                .bind(conversation)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
        None => {
            let url = format!("sqlite://{}", app.config.database_url);
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql)
                .bind(created)
                .bind(first_response)
                .bind(closed)
                .bind(conversation)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
    };
    assert_eq!(done, 1, "conversation {conversation} exists");
}

/// A conversation on `channel`: the visitor writes, `agent` (if any)
/// answers, replies and closes it, and the visitor rates it (if asked).
async fn conversation(
    app: &TestApp,
    channel: &str,
    agent: Option<&AgentClient>,
    rating: Option<u8>,
) -> VisitorSession {
    let visitor = app.visitor_on(channel).await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let id = &visitor.conversation_id;
    if let Some(agent) = agent {
        assert_eq!(agent.answer(id).await.status, 200);
        agent.post(id, "Hi, how can I help?").await;
        let closed = agent
            .call(
                "PUT",
                &format!("/users/me/rooms/{id}/state"),
                Some(json!({"state": "closed"})),
            )
            .await;
        assert_eq!(closed.status, 200, "{}", closed.body);
        if let Some(rating) = rating {
            let rated = app
                .post(
                    "/chatplugin.rate",
                    &json!({"rating": rating}),
                    Some(&visitor.token),
                )
                .await;
            assert_eq!(rated.status, 204, "{}", rated.body);
        }
    }
    visitor
}

async fn report(agent: &AgentClient, query: &str) -> Reply {
    agent.call("GET", &format!("/reports?{query}"), None).await
}

async fn report_ok(agent: &AgentClient, query: &str) -> Value {
    let reply = report(agent, query).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.body
}

/// The known set: on the demo channel (A) and a second one (B), answered
/// by the admin or by Bea, an agent.
struct Known {
    app: TestApp,
    admin: AgentClient,
    bea: AgentClient,
    other: AgentClient,
    channel_b: String,
}

/// | conv | channel | agent | created (UTC)  | first response | closed after | rating |
/// |------|---------|-------|----------------|----------------|--------------|--------|
/// | c1   | A       | admin | Mon 2 Mar 09:00 | 30 s          | 1 h          | 5      |
/// | c2   | A       | admin | Mon 09:10      | 90 s           | 2 h          | 4      |
/// | c3   | A       | Bea   | Mon 14:00      | 20 s           | 30 min       | 2      |
/// | c4   | B       | Bea   | Tue 3 Mar 10:00 | 120 s         | 4 h          | 5      |
/// | c5   | B       | —     | Tue 11:00      | never (queued) | —            | —      |
/// | c6   | A       | admin | Thu 5 Mar 00:00 | 10 s          | 10 min       | 1      |
///
/// and one conversation of another tenant on Monday at 09:30.
async fn known() -> Known {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bea = admin.new_agent(&app, "Bea").await;
    let admin_token = app.admin_token().await;
    let channel_b = app
        .create_channel(&admin_token, json!({"name": "Shop"}))
        .await;
    let a = app.channel_id.clone();
    let rows: [Row; 6] = [
        (
            &a,
            Some(&admin),
            at(0, 9, 0),
            Some(30 * SEC),
            Some(HOUR),
            Some(5),
        ),
        (
            &a,
            Some(&admin),
            at(0, 9, 10),
            Some(90 * SEC),
            Some(2 * HOUR),
            Some(4),
        ),
        (
            &a,
            Some(&bea),
            at(0, 14, 0),
            Some(20 * SEC),
            Some(30 * MIN),
            Some(2),
        ),
        (
            &channel_b,
            Some(&bea),
            at(1, 10, 0),
            Some(120 * SEC),
            Some(4 * HOUR),
            Some(5),
        ),
        (&channel_b, None, at(1, 11, 0), None, None, None),
        (
            &a,
            Some(&admin),
            at(3, 0, 0),
            Some(10 * SEC),
            Some(10 * MIN),
            Some(1),
        ),
    ];
    for (channel, agent, created, first, closed, rating) in rows {
        let c = conversation(&app, channel, agent, rating).await;
        set_times(
            &app,
            &c.conversation_id,
            created,
            first.map(|d| created + d),
            closed.map(|d| created + d),
        )
        .await;
    }
    let other = AgentClient::other_tenant_admin(&app).await;
    let other_channel = app
        .create_channel(&other.token, json!({"name": "Elsewhere"}))
        .await;
    let theirs = conversation(&app, &other_channel, Some(&other), Some(1)).await;
    set_times(
        &app,
        &theirs.conversation_id,
        at(0, 9, 30),
        Some(at(0, 9, 30) + SEC),
        Some(at(0, 10, 0)),
    )
    .await;
    Known {
        app,
        admin,
        bea,
        other,
        channel_b,
    }
}

/// A conversation of the known set: channel, agent, start, first
/// response and close after the start, rating.
type Row<'a> = (
    &'a str,
    Option<&'a AgentClient>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<u8>,
);

const PERIOD: &str = "from=2026-03-02&to=2026-03-04";

fn durations(v: &Value) -> (u64, Value, Value) {
    (
        v["count"].as_u64().unwrap(),
        v["median_seconds"].clone(),
        v["p90_seconds"].clone(),
    )
}

#[tokio::test]
async fn a_report_has_the_exact_figures_of_the_period_and_leaves_the_rest_out() {
    let k = known().await;
    let r = report_ok(&k.admin, &format!("{PERIOD}&target=60")).await;
    assert_eq!(r["from"], "2026-03-02");
    assert_eq!(r["to"], "2026-03-04");
    assert_eq!(r["time_zone"], "UTC");
    assert_eq!(r["target_seconds"], 60);
    let t = &r["totals"];
    // c1..c5: c6 starts on the first instant after the period, and the
    // other tenant's conversation is not ours.
    assert_eq!(t["conversations"], 5, "{r}");
    assert_eq!(t["answered"], 4);
    assert_eq!(t["closed"], 4);
    // First responses 20, 30, 90, 120 s.
    assert_eq!(
        durations(&t["first_response"]),
        (4, json!(60.0), json!(111.0))
    );
    // Resolutions 30 min, 1 h, 2 h, 4 h.
    assert_eq!(
        durations(&t["resolution"]),
        (4, json!(5400.0), json!(12240.0))
    );
    // Within 60 s: c1 and c3, of the four answered and c5 (never answered).
    assert_eq!(
        t["within_target"],
        json!({"within": 2, "counted": 5, "share": 0.4})
    );
    assert_eq!(
        t["ratings"],
        json!({"count": 4, "average": 4.0, "distribution": [0, 1, 0, 1, 2]})
    );
    let days: Vec<(String, u64)> = r["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["conversations"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        days,
        [
            ("2026-03-02".to_string(), 3),
            ("2026-03-03".to_string(), 2),
            ("2026-03-04".to_string(), 0)
        ]
    );
    let monday = &r["days"][0];
    assert_eq!(durations(&monday["first_response"]).1, json!(30.0));
    assert_eq!(monday["ratings"]["average"], json!(11.0 / 3.0));
    // Monday 09:00 twice, 14:00 once; Tuesday 10:00 and 11:00.
    let heat = &r["heatmap"];
    assert_eq!(heat[0][9], 2);
    assert_eq!(heat[0][14], 1);
    assert_eq!(heat[1][10], 1);
    assert_eq!(heat[1][11], 1);
    let sum: u64 = heat
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(sum, 5);
    assert_eq!(r["hours"][9], 2);

    // A target of 100 s takes c2 (90 s) in too.
    let r = report_ok(&k.admin, &format!("{PERIOD}&target=100")).await;
    assert_eq!(r["totals"]["within_target"]["within"], 3);

    // The day after: c6 alone.
    let r = report_ok(&k.admin, "from=2026-03-05&to=2026-03-05").await;
    assert_eq!(r["totals"]["conversations"], 1);
    assert_eq!(
        r["totals"]["ratings"]["distribution"],
        json!([1, 0, 0, 0, 0])
    );
}

#[tokio::test]
async fn a_report_filters_by_channel_agent_and_time_zone() {
    let k = known().await;
    let b = report_ok(&k.admin, &format!("{PERIOD}&channel={}", k.channel_b)).await;
    assert_eq!(b["channel_uuid"], k.channel_b.as_str());
    assert_eq!(b["totals"]["conversations"], 2);
    assert_eq!(b["totals"]["answered"], 1);
    assert_eq!(
        durations(&b["totals"]["first_response"]),
        (1, json!(120.0), json!(120.0))
    );
    assert_eq!(
        b["totals"]["within_target"],
        json!({"within": 0, "counted": 2, "share": 0.0})
    );

    let bea = report_ok(&k.admin, &format!("{PERIOD}&agent={}", k.bea.uuid)).await;
    assert_eq!(bea["agent_uuid"], k.bea.uuid.as_str());
    assert_eq!(bea["totals"]["conversations"], 2);
    // 20 and 120 s.
    assert_eq!(
        durations(&bea["totals"]["first_response"]),
        (2, json!(70.0), json!(110.0))
    );
    assert_eq!(bea["totals"]["ratings"]["average"], 3.5);

    let both = report_ok(
        &k.admin,
        &format!("{PERIOD}&agent={}&channel={}", k.admin.uuid, k.channel_b),
    )
    .await;
    assert_eq!(both["totals"]["conversations"], 0);
    assert_eq!(
        both["totals"]["first_response"]["median_seconds"],
        Value::Null
    );
    assert_eq!(both["totals"]["within_target"]["share"], Value::Null);
    assert_eq!(both["totals"]["ratings"]["average"], Value::Null);

    // New York is five hours behind: c6 (Thursday 00:00 UTC) falls on
    // Wednesday 19:00 there, in the period; c1 on Monday 04:00.
    let ny = report_ok(&k.admin, &format!("{PERIOD}&tz=America/New_York")).await;
    assert_eq!(ny["time_zone"], "America/New_York");
    assert_eq!(ny["totals"]["conversations"], 6);
    assert_eq!(ny["days"][2]["conversations"], 1);
    assert_eq!(ny["heatmap"][2][19], 1);
    assert_eq!(ny["heatmap"][0][4], 2);
}

#[tokio::test]
async fn another_tenant_never_sees_nor_names_a_tenants_conversations() {
    let k = known().await;
    let theirs = report_ok(&k.other, PERIOD).await;
    assert_eq!(theirs["totals"]["conversations"], 1);
    assert_eq!(
        theirs["totals"]["ratings"]["distribution"],
        json!([1, 0, 0, 0, 0])
    );
    // Naming our channel or our agent is a bad parameter there, not a peek.
    report(&k.other, &format!("{PERIOD}&channel={}", k.channel_b))
        .await
        .assert_error(400, "invalid-data");
    report(&k.other, &format!("{PERIOD}&agent={}", k.bea.uuid))
        .await
        .assert_error(400, "invalid-data");
    // And ours still counts five.
    let ours = report_ok(&k.admin, PERIOD).await;
    assert_eq!(ours["totals"]["conversations"], 5);
}

#[tokio::test]
async fn an_agent_gets_its_own_figures_only() {
    let k = known().await;
    let own = report_ok(&k.bea, PERIOD).await;
    assert_eq!(own["agent_uuid"], k.bea.uuid.as_str());
    assert_eq!(own["totals"]["conversations"], 2);
    let named = report_ok(&k.bea, &format!("{PERIOD}&agent={}", k.bea.uuid)).await;
    assert_eq!(named["totals"], own["totals"]);
    report(&k.bea, &format!("{PERIOD}&agent={}", k.admin.uuid))
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn bad_report_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let unknown = uuid::Uuid::new_v4();
    for (query, field) in [
        ("from=2026-02-30", "from"),
        ("to=yesterday", "to"),
        ("from=2026-03-05&to=2026-03-01", "from"),
        ("from=2025-01-01&to=2026-03-01", "to"),
        ("target=0", "target"),
        ("target=86401", "target"),
        ("target=ten", "target"),
        ("tz=Mars/Olympus", "tz"),
        ("channel=42", "channel"),
        ("agent=nobody", "agent"),
        (&format!("channel={unknown}") as &str, "channel"),
        (&format!("agent={unknown}") as &str, "agent"),
    ] {
        let reply = report(&admin, query).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"][field].is_array(),
            "{query}: {}",
            reply.body
        );
    }
    // Without parameters: the last 30 days, today included, in UTC.
    let r = report_ok(&admin, "").await;
    assert_eq!(r["days"].as_array().unwrap().len(), 30);
    assert_eq!(r["target_seconds"], 60);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(r["to"], today.as_str());
}

/// The time of a message of the agent API's shape.
fn created_ms(message: &Value) -> i64 {
    chatgate::domain::time::parse_ms(message["created_at"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_first_agent_reply_sets_the_first_response_time_and_nothing_else_does() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let id = visitor.conversation_id.clone();
    let totals = |r: Value| r["totals"].clone();
    assert_eq!(totals(report_ok(&admin, "").await)["answered"], 0);

    // The answer's "joined" notice and a private note are no reply.
    assert_eq!(admin.answer(&id).await.status, 200);
    let note = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{id}/messages"),
            Some(json!({"content": "regular customer", "private": true})),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);
    assert_eq!(app.send(&visitor.token, "Anyone?").await.status, 200);
    let t = totals(report_ok(&admin, "").await);
    assert_eq!(t["conversations"], 1);
    assert_eq!(t["answered"], 0, "{t}");

    let reply = admin.post(&id, "Hi! Sorry for the wait.").await;
    admin.post(&id, "How can I help?").await;
    assert_eq!(app.send(&visitor.token, "Thanks").await.status, 200);
    let messages = admin.messages(&id).await;
    let first_visitor = messages
        .iter()
        .filter(|m| m["content"] == "Hello")
        .map(created_ms)
        .next()
        .expect("the visitor's first message");
    let expected = (created_ms(&reply) - first_visitor) as f64 / 1000.0;
    let t = totals(report_ok(&admin, "").await);
    assert_eq!(t["answered"], 1);
    assert_eq!(
        t["first_response"]["median_seconds"],
        json!(expected),
        "{t}"
    );
    assert_eq!(t["closed"], 0);

    let closed = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{id}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let t = totals(report_ok(&admin, "").await);
    assert_eq!(t["closed"], 1);
    assert_eq!(t["resolution"]["count"], 1);
    // Unchanged by the later replies.
    assert_eq!(t["first_response"]["median_seconds"], json!(expected));
}

/// A console session (cookie) of an agent.
async fn console(app: &TestApp, email: &str, password: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookies = |r: &reqwest::Response| -> String {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let form = http.get(app.url("/console/login")).send().await.unwrap();
    let pre_login = cookies(&form);
    let form = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = form.find(marker).unwrap() + marker.len();
    let csrf = &form[start..start + form[start..].find('"').unwrap()];
    let login = http
        .post(app.url("/console/login"))
        .header("cookie", pre_login)
        .form(&[("csrf", csrf), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let session = cookies(&login);
    (http, session)
}

async fn console_get(
    app: &TestApp,
    session: &(reqwest::Client, String),
    path: &str,
) -> (u16, HashMap<String, String>, String) {
    let response = session
        .0
        .get(app.url(path))
        .header("cookie", &session.1)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn the_console_shows_the_report_and_exports_it_as_csv() {
    let k = known().await;
    let admin = console(&k.app, &k.app.admin_email, &k.app.admin_password).await;
    let (status, _, page) =
        console_get(&k.app, &admin, &format!("/console/reports?{PERIOD}")).await;
    assert_eq!(status, 200, "{page}");
    for text in [
        "Conversations per day",
        "2 Mar 2026 – 4 Mar 2026 (UTC)",
        // The cards: 5 conversations, first response 1 min (p90 1 min 51 s),
        // resolution 1 h 30 min, 40% within 1 min, 4.0 / 5.
        "4 answered · 4 closed",
        "90% within 1 min 51 s",
        "1 h 30 min",
        "40%",
        "2 of 5 within 1 min",
        "4.0 / 5",
        "Busiest hours: 09:00 (2)",
        "Mon 2 Mar: 3 conversations",
        "role=\"img\"",
    ] {
        assert!(page.contains(text), "the page shows {text:?}");
    }
    // The CSV link carries the report's own period and filters.
    assert!(page
        .replace("&#38;", "&")
        .contains("href=\"/console/reports.csv?from=2026-03-02&to=2026-03-04&tz=UTC&target=60\""));

    let (status, headers, csv) = console_get(
        &k.app,
        &admin,
        &format!("/console/reports.csv?{PERIOD}&channel={}", k.channel_b),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"chatgate-report-2026-03-02-2026-03-04.csv\""
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(
        lines[0].starts_with("date,conversations,answered,closed,first_response_median_seconds")
    );
    assert_eq!(lines[1], "2026-03-02,0,0,0,,,,,0,0,,0,,0,0,0,0,0");
    assert_eq!(
        lines[2],
        "2026-03-03,2,1,1,120,120,14400,14400,0,2,0.0000,1,5.00,0,0,0,0,1"
    );
    assert_eq!(
        lines[4],
        "total,2,1,1,120,120,14400,14400,0,2,0.0000,1,5.00,0,0,0,0,1"
    );

    // A bad parameter: the form again, with what to fix, and no figures.
    let (status, _, page) = console_get(
        &k.app,
        &admin,
        "/console/reports?from=2026-03-05&to=2026-03-01",
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("from must not be after to"), "{page}");
    assert!(!page.contains("Conversations per day"));
    let (status, _, _) = console_get(&k.app, &admin, "/console/reports.csv?target=0").await;
    assert_eq!(status, 400);

    // Bea sees her own figures, and no agent filter.
    let bea_session = {
        let email = k.bea.email.clone();
        console(&k.app, &email, "correct horse").await
    };
    let (status, _, page) =
        console_get(&k.app, &bea_session, &format!("/console/reports?{PERIOD}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your own figures"));
    assert!(page.contains("All channels · Bea"));
    assert!(!page.contains("name=\"agent\""));
    let (status, _, page) = console_get(
        &k.app,
        &bea_session,
        &format!("/console/reports?{PERIOD}&agent={}", k.admin.uuid),
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("an agent sees its own figures only"));
    let (status, _, _) = console_get(
        &k.app,
        &bea_session,
        &format!("/console/reports.csv?{PERIOD}&agent={}", k.admin.uuid),
    )
    .await;
    assert_eq!(status, 403);
}
