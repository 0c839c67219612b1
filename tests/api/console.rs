//! The agent console (`/console`) without JavaScript: a browser that only
//! follows forms and redirects. `ConsoleBrowser` keeps its cookies by hand
//! (reqwest's cookie store is not among the locked dependencies).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp, WAIT};

/// The console's CSP as a browser that reached `app` over plain http sees it:
/// connections only to the server itself, its WebSocket included.
fn csp(app: &TestApp) -> String {
    let host = app.base.trim_start_matches("http://");
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'"
    )
}

/// One reply of the console.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The page's CSRF token (`<meta name="chatgate-csrf">`).
    fn csrf(&self) -> String {
        attribute_after(&self.body, "name=\"chatgate-csrf\" content=\"")
            .expect("the page has a CSRF token")
    }
}

/// HTML text as a browser shows it (the entities askama writes, decoded).
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

fn attribute_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_string())
}

/// A browser without JavaScript: cookies, forms, no redirects followed
/// automatically (so each 303 can be checked).
struct ConsoleBrowser {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl ConsoleBrowser {
    fn new(app: &TestApp) -> ConsoleBrowser {
        ConsoleBrowser {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Fills in the login form; returns the reply to the POST.
    async fn try_login(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = attribute_after(&form.body, "name=\"csrf\" value=\"").unwrap();
        self.post(
            "/console/login",
            &[("csrf", &token), ("email", email), ("password", password)],
        )
        .await
    }

    async fn login(app: &TestApp, email: &str, password: &str) -> ConsoleBrowser {
        let mut browser = ConsoleBrowser::new(app);
        let reply = browser.try_login(email, password).await;
        assert_eq!(reply.status, 303, "{}", reply.body);
        assert_eq!(reply.location(), "/console/inbox");
        browser
    }

    /// A form post with the CSRF token of `page`.
    async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(page).await.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    /// Answers a queued visitor from the inbox's form: a 303 to its room.
    async fn answer(&mut self, room: &str) -> Page {
        let answered = self
            .submit(
                "/console/inbox",
                &format!("/console/queue/{room}/answer"),
                &[],
            )
            .await;
        assert_eq!(answered.status, 303, "{}", answered.body);
        assert_eq!(answered.location(), format!("/console/rooms/{room}#latest"));
        answered
    }
}

/// A visitor who has written `text`: a queued room (its id is the conversation id).
async fn queued_visitor(app: &TestApp, text: &str) -> crate::helpers::VisitorSession {
    let visitor = app.visitor().await;
    let sent = app.send(&visitor.token, text).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    visitor
}

async fn queue_ids(agent: &AgentClient) -> Vec<String> {
    let reply = agent.call("GET", "/queues", None).await;
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn console_login_sets_an_http_only_same_site_lax_session_cookie() {
    let app = TestApp::spawn().await;
    let mut browser = ConsoleBrowser::new(&app);
    let unauthenticated = browser.get("/console/inbox").await;
    assert_eq!(unauthenticated.status, 303);
    assert_eq!(unauthenticated.location(), "/console/login");

    let reply = browser
        .try_login(&app.admin_email, &app.admin_password)
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let session = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("cg_session="))
        .expect("a session cookie");
    assert!(session.contains("; HttpOnly"), "{session}");
    assert!(session.contains("; SameSite=Lax"), "{session}");
    assert!(session.contains("; Path=/"), "{session}");
    assert!(!session.contains("Secure"), "plain http: {session}");

    let inbox = browser.get("/console/inbox").await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("Queue"), "{}", inbox.body);

    // Logging out revokes the session: the old cookie no longer works.
    let old = browser.cookies.clone();
    let out = browser
        .submit("/console/inbox", "/console/logout", &[])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/console/login");
    browser.cookies = old;
    assert_eq!(browser.get("/console/inbox").await.status, 303);
}

#[tokio::test]
async fn console_session_cookie_is_secure_behind_https_when_configured() {
    let app = TestApp::spawn_with(|c| c.console_secure_cookie = true).await;
    let mut browser = ConsoleBrowser::new(&app);
    let reply = browser
        .try_login(&app.admin_email, &app.admin_password)
        .await;
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("cg_session=") && c.contains("; Secure")),
        "{cookies:?}"
    );
}

/// The `connect-src` directive of a console reply.
fn connect_src(page: &Page) -> String {
    page.header("content-security-policy")
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("connect-src"))
        .unwrap_or_else(|| panic!("no connect-src in {:?}", page.headers))
        .to_string()
}

#[tokio::test]
async fn console_csp_lets_pages_connect_only_to_the_host_they_came_from() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let http = reqwest::Client::new();
    let login = format!("{}/console/login", app.base);
    let get = |host: &'static str, proto: Option<&'static str>| {
        let mut req = http.get(&login).header("host", host);
        if let Some(proto) = proto {
            req = req.header("x-forwarded-proto", proto);
        }
        async move {
            let response = req.send().await.unwrap();
            Page {
                status: response.status().as_u16(),
                headers: response.headers().clone(),
                body: response.text().await.unwrap(),
            }
        }
    };

    // Plain http: the page's own host, as ws:// and wss://; never any host.
    let plain = get("chat.example.com:8080", None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(
        connect_src(&plain),
        "connect-src 'self' ws://chat.example.com:8080 wss://chat.example.com:8080"
    );
    // Over https (as a trusted proxy says): wss:// only.
    let tls = get("chat.example.com", Some("https")).await;
    assert_eq!(
        connect_src(&tls),
        "connect-src 'self' wss://chat.example.com"
    );
    // Behind the trusted proxy, the host the browser asked for is the one it forwards.
    let forwarded = http
        .get(&login)
        .header("host", "127.0.0.1:8080")
        .header("x-forwarded-host", "chat.example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let policy = forwarded.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("connect-src 'self' wss://chat.example.com;"),
        "{policy}"
    );
    // A Host that tries to add sources or directives names nothing.
    for forged in [
        "evil.example; script-src *",
        "a.example b.example",
        "a.example,*",
        "*",
    ] {
        let page = get(forged, None).await;
        assert_eq!(connect_src(&page), "connect-src 'self'", "Host: {forged}");
        let policy = page.header("content-security-policy");
        assert!(!policy.contains("evil"), "{policy}");
        assert_eq!(policy.matches("script-src").count(), 1, "{policy}");
    }
}

#[tokio::test]
async fn console_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "hello").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;

    let answer = format!("/console/queue/{room}/answer");
    let missing = browser.post(&answer, &[]).await;
    assert_eq!(missing.status, 403, "{}", missing.body);
    let forged = browser.post(&answer, &[("csrf", "AAAA")]).await;
    assert_eq!(forged.status, 403);
    // Another session's token is no good either.
    let other = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let mut other = other;
    let other_csrf = other.get("/console/inbox").await.csrf();
    let foreign = browser.post(&answer, &[("csrf", &other_csrf)]).await;
    assert_eq!(foreign.status, 403);
    assert_eq!(queue_ids(&admin).await, vec![room.clone()], "still queued");

    let presence = browser
        .post("/console/presence", &[("state", "away")])
        .await;
    assert_eq!(presence.status, 403);
    let me = admin
        .call("GET", &format!("/users/{}/presences", admin.uuid), None)
        .await;
    assert_eq!(me.body["state"], "available");

    let answered = browser.submit("/console/inbox", &answer, &[]).await;
    assert_eq!(answered.status, 303, "{}", answered.body);
    assert_eq!(answered.location(), format!("/console/rooms/{room}#latest"));
    assert!(queue_ids(&admin).await.is_empty());
}

#[tokio::test]
async fn console_room_of_another_tenant_is_not_found() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "hello").await;
    let room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&room).await.status, 200);

    let stranger = AgentClient::other_tenant_admin(&app).await;
    let password = "correct horse";
    let patched = stranger
        .call(
            "PATCH",
            &format!("/agents/{}", stranger.uuid),
            Some(json!({"password": password})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let mut browser = ConsoleBrowser::login(&app, &stranger.email, password).await;
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("hello"));
    let reply = browser
        .submit(
            "/console/inbox",
            &format!("/console/rooms/{room}/messages"),
            &[("content", "intrusion")],
        )
        .await;
    assert_eq!(reply.status, 404);
    let answer = browser
        .submit(
            "/console/inbox",
            &format!("/console/queue/{room}/answer"),
            &[],
        )
        .await;
    assert_eq!(answer.status, 404);
    let contents: Vec<String> = admin
        .messages(&room)
        .await
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect();
    assert!(!contents.iter().any(|c| c == "intrusion"), "{contents:?}");
    // Nor does the stranger's inbox list the room.
    let inbox = browser.get("/console/inbox").await;
    assert!(!inbox.body.contains(&room));
}

#[tokio::test]
async fn console_shows_html_in_messages_and_names_as_text() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let evil_name = "<img src=x onerror=alert(1)>Eve";
    let email = format!(
        "eve-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let created = admin
        .call(
            "POST",
            "/agents",
            Some(json!({"email": email, "display_name": evil_name, "password": "correct horse"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let visitor = queued_visitor(&app, "<script>alert('x')</script><b>bold</b>").await;
    let room = visitor.conversation_id.clone();

    let mut browser = ConsoleBrowser::login(&app, &email, "correct horse").await;
    let inbox = browser.get("/console/inbox").await;
    let text = "<script>alert('x')</script><b>bold</b>";
    assert!(
        unescape(&inbox.body).contains(text),
        "the queue preview shows the text"
    );
    assert!(!inbox.body.contains(text), "escaped: {}", inbox.body);
    browser.answer(&room).await;
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert_eq!(page.status, 200);
    assert!(unescape(&page.body).contains(text), "{}", page.body);
    assert!(unescape(&page.body).contains(evil_name));
    for raw in ["<script>alert", "<b>bold", "<img src=x"] {
        assert!(!page.body.contains(raw), "{raw} unescaped in {}", page.body);
    }
    // A team room named with HTML.
    let eve = AgentClient::login(&app, &email, "correct horse").await;
    let team = eve
        .call(
            "POST",
            "/users/me/rooms",
            Some(json!({"name": "<i>team</i>", "users": [{"uuid": admin.uuid}]})),
        )
        .await;
    assert_eq!(team.status, 201);
    let inbox = browser.get("/console/inbox").await;
    assert!(unescape(&inbox.body).contains("<i>team</i>"));
    assert!(!inbox.body.contains("<i>team"));
}

#[tokio::test]
async fn console_pages_carry_the_content_security_policy_and_no_inline_script() {
    let app = TestApp::spawn().await;
    let visitor = queued_visitor(&app, "hi").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::new(&app);
    let login = browser.get("/console/login").await;
    let mut pages = vec![("/console/login".to_string(), login)];
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    browser.answer(&room).await;
    for path in [
        "/console/inbox".to_string(),
        format!("/console/rooms/{room}"),
        format!("/console/rooms/{room}/messages"),
        "/console/fragments/lists".to_string(),
        "/console/colleagues".to_string(),
        "/console/admin/channels".to_string(),
        format!("/console/admin/channels/{}", app.channel_id),
        "/console/admin/agents".to_string(),
        "/console/assets/console.js".to_string(),
        "/console/assets/console.css".to_string(),
        "/console/no-such-page".to_string(),
        format!("/console/rooms/{}", uuid::Uuid::new_v4()),
    ] {
        let page = browser.get(&path).await;
        pages.push((path, page));
    }
    for (path, page) in &pages {
        assert!(page.status < 500, "{path}: {}", page.status);
        assert_eq!(page.header("content-security-policy"), csp(&app), "{path}");
        assert_eq!(page.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(page.header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        if page.header("content-type").starts_with("text/html") {
            for (i, _) in page.body.match_indices("<script") {
                let tag = &page.body[i..i + page.body[i..].find('>').unwrap()];
                assert!(
                    tag.contains(" src=\"/console/assets/"),
                    "{path}: inline script {tag}"
                );
            }
            let lower = page.body.to_lowercase();
            for handler in [
                " onclick=",
                " onload=",
                " onerror=",
                " onsubmit=",
                " onchange=",
                "javascript:",
            ] {
                assert!(!lower.contains(handler), "{path}: {handler}");
            }
            assert!(!lower.contains(" style=\""), "{path}: inline style");
        }
    }
    let js = &pages
        .iter()
        .find(|(p, _)| p.ends_with("console.js"))
        .unwrap()
        .1;
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(!js.header("etag").is_empty());
    let css = &pages
        .iter()
        .find(|(p, _)| p.ends_with("console.css"))
        .unwrap()
        .1;
    assert!(css.header("content-type").starts_with("text/css"));
    let missing = &pages
        .iter()
        .find(|(p, _)| p.ends_with("no-such-page"))
        .unwrap()
        .1;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn console_without_javascript_answers_and_replies_and_the_visitor_gets_the_reply() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "Where is my order?").await;
    let room = visitor.conversation_id.clone();
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;

    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let inbox = browser.get("/console/inbox").await;
    assert!(inbox.body.contains("Where is my order?"));
    assert!(inbox
        .body
        .contains(&format!("action=\"/console/queue/{room}/answer\"")));
    let answered = browser.answer(&room).await;
    let page = browser.get(answered.location()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Where is my order?"));
    assert!(page.body.contains("Admin joined"));

    let replied = browser
        .submit(
            &format!("/console/rooms/{room}"),
            &format!("/console/rooms/{room}/messages"),
            &[("content", "It ships today.\nTracking follows.")],
        )
        .await;
    assert_eq!(replied.status, 303, "{}", replied.body);
    assert_eq!(replied.location(), format!("/console/rooms/{room}#latest"));

    let deadline = tokio::time::Instant::now() + WAIT;
    let reply = loop {
        let message = stomp.messages(1).await.remove(0);
        if message["message"]["content"] == "It ships today.\nTracking follows." {
            break message;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reply");
    };
    assert_eq!(reply["message"]["alignment"], "LEFT");
    assert_eq!(reply["message"]["sender"]["name"], "Admin");

    // Delivered to the live socket: the page shows the tick.
    let mut delivered = false;
    for _ in 0..50 {
        let page = browser.get(&format!("/console/rooms/{room}")).await;
        if page.body.contains("tick delivered") {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "the reply shows as delivered");
    // The visitor's history (the API) has it too.
    assert!(app
        .contents(&visitor)
        .await
        .contains(&"It ships today.\nTracking follows.".to_string()));
    // Viewing the room marked it read.
    let rooms = admin.rooms().await;
    let listed = rooms.iter().find(|r| r["uuid"] == room.as_str()).unwrap();
    assert_eq!(listed["unread_count"], 0);
}

#[tokio::test]
async fn console_bad_login_shows_an_error_and_is_rate_limited() {
    let app = TestApp::spawn_with(|c| c.login_failures_per_minute = 5).await;
    let mut browser = ConsoleBrowser::new(&app);
    let bad = browser.try_login(&app.admin_email, "wrong password").await;
    assert_eq!(bad.status, 401);
    assert!(
        bad.body.contains("Wrong email or password."),
        "{}",
        bad.body
    );
    assert!(!browser.cookies.contains_key("cg_session"));
    let unknown = browser.try_login("nobody@example.com", "whatever1").await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Wrong email or password."));

    let mut limited = None;
    for _ in 0..10 {
        let reply = browser.try_login(&app.admin_email, "wrong password").await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("rate limited after many attempts");
    assert!(limited.body.contains("Too many failed logins"));
    assert!(limited.header("retry-after").parse::<u64>().unwrap() >= 1);
    // Even the right password waits now; the API shares the budget.
    let right = browser
        .try_login(&app.admin_email, &app.admin_password)
        .await;
    assert_eq!(right.status, 429);
    AgentClient::try_login(&app, &app.admin_email, &app.admin_password)
        .await
        .assert_error(429, "rate-limited");

    // A login form posted without its token is refused.
    let mut fresh = ConsoleBrowser::new(&app);
    let forged = fresh
        .post(
            "/console/login",
            &[
                ("email", &app.admin_email),
                ("password", &app.admin_password),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn console_closes_reopens_transfers_and_switches_presence_with_forms() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let _bob_socket = bob.events().await; // connected: a transfer target
    let visitor = queued_visitor(&app, "help").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let page_url = format!("/console/rooms/{room}");
    browser.answer(&room).await;

    let closed = browser
        .submit(
            &page_url,
            &format!("{page_url}/state"),
            &[("state", "closed")],
        )
        .await;
    assert_eq!(closed.status, 303);
    let page = browser.get(&page_url).await;
    assert!(page.body.contains(">Reopen</button>"), "{}", page.body);
    let listed = admin.rooms().await;
    assert_eq!(
        listed.iter().find(|r| r["uuid"] == room.as_str()).unwrap()["state"],
        "closed"
    );
    let inbox = browser.get("/console/inbox").await;
    let closed_list = &inbox.body[inbox.body.find("data-list=\"closed\"").unwrap()..];
    assert!(closed_list.contains(&room), "the closed list has the room");

    browser
        .submit(
            &page_url,
            &format!("{page_url}/state"),
            &[("state", "open")],
        )
        .await;
    let page = browser.get(&page_url).await;
    assert!(page.body.contains(">Close</button>"));

    // Bob is available and connected: offered, and the transfer hands over.
    assert!(page
        .body
        .contains(&format!("<option value=\"{}\">Bob</option>", bob.uuid)));
    let moved = browser
        .submit(
            &page_url,
            &format!("{page_url}/transfer"),
            &[("user_uuid", &bob.uuid)],
        )
        .await;
    assert_eq!(moved.location(), "/console/inbox?notice=transferred");
    assert!(bob.rooms().await.iter().any(|r| r["uuid"] == room.as_str()));
    assert_eq!(browser.get(&page_url).await.status, 404, "we left the room");

    let set = browser
        .submit(
            "/console/inbox",
            "/console/presence",
            &[("state", "away"), ("back", "/console/colleagues")],
        )
        .await;
    assert_eq!(set.location(), "/console/colleagues");
    let me = admin
        .call("GET", &format!("/users/{}/presences", admin.uuid), None)
        .await;
    assert_eq!(me.body["state"], "away");
    // `back` cannot leave the console.
    let away = browser
        .submit(
            "/console/inbox",
            "/console/presence",
            &[("state", "available"), ("back", "//evil.example/")],
        )
        .await;
    assert_eq!(away.location(), "/console/inbox");
}

#[tokio::test]
async fn console_answer_lost_to_another_agent_says_the_room_was_taken() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "anyone?").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let csrf = browser.get("/console/inbox").await.csrf();
    let bob = admin.new_agent(&app, "Bob").await;
    assert_eq!(bob.answer(&room).await.status, 200);
    let lost = browser
        .post(&format!("/console/queue/{room}/answer"), &[("csrf", &csrf)])
        .await;
    assert_eq!(lost.location(), "/console/inbox?notice=taken");
    let inbox = browser.get(lost.location()).await;
    assert!(inbox
        .body
        .contains("Another agent answered this visitor first."));
}

#[tokio::test]
async fn console_edits_deletes_and_reacts_to_messages_and_pages_history() {
    let app = TestApp::spawn_with(|c| c.send_burst = 100).await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "first").await;
    let room = visitor.conversation_id.clone();
    for i in 0..60 {
        let sent = app.send(&visitor.token, &format!("visitor line {i}")).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let url = format!("/console/rooms/{room}");
    browser.answer(&room).await;
    let page = browser.get(&url).await;
    assert!(page.body.contains("visitor line 59"));
    assert!(
        !page.body.contains("visitor line 5<"),
        "older lines on the next page"
    );
    let older = attribute_after(&page.body, "data-older=\"").expect("a link to older messages");
    let older_page = browser.get(&format!("{url}?before_seq={older}")).await;
    assert!(older_page.body.contains(">first<"));

    browser
        .submit(&url, &format!("{url}/messages"), &[("content", "typo")])
        .await;
    let mine = admin.messages(&room).await.last().unwrap().clone();
    let id = mine["uuid"].as_str().unwrap();
    let edited = browser
        .submit(
            &url,
            &format!("{url}/messages/{id}/edit"),
            &[("content", "fixed")],
        )
        .await;
    assert_eq!(edited.status, 303);
    let reacted = browser
        .submit(
            &url,
            &format!("{url}/messages/{id}/react"),
            &[("emoji", "👍")],
        )
        .await;
    assert_eq!(reacted.status, 303);
    let message: Value = admin.messages(&room).await.last().unwrap().clone();
    assert_eq!(message["content"], "fixed");
    assert_eq!(message["reactions"][0]["emoji"], "👍");
    let page = browser.get(&url).await;
    assert!(page.body.contains(">fixed<"));
    assert!(page.body.contains("edited"));
    assert!(page.body.contains("👍 1"));

    // A visitor's message is not ours to edit.
    let theirs = admin.messages(&room).await[0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = browser
        .submit(&url, &format!("{url}/messages/{theirs}/delete"), &[])
        .await;
    assert_eq!(refused.status, 403);
    let deleted = browser
        .submit(&url, &format!("{url}/messages/{id}/delete"), &[])
        .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(admin.messages(&room).await.last().unwrap()["deleted"], true);
}

#[tokio::test]
async fn console_admin_manages_channels_and_invites_agents() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let created = browser
        .submit(
            "/console/admin/channels",
            "/console/admin/channels",
            &[("name", "Shop")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let url = created.location().to_string();
    let id = url.rsplit('/').next().unwrap().to_string();
    let page = browser.get(&url).await;
    // Plain http here: the snippet uses the scheme the console was reached with.
    let snippet = format!(
        "<script src=\"{}/widget.js\" data-channel-id=\"{id}\" async></script>",
        app.base
    );
    assert!(unescape(&page.body).contains(&snippet), "{}", page.body);
    assert!(!page.body.contains(&snippet));

    let saved = browser
        .submit(
            &url,
            &url,
            &[
                ("name", "Shop EU"),
                ("image_url", ""),
                ("welcome_message", "Hi <there>"),
                ("color", "#112233"),
                ("assignment", "round_robin"),
                ("max_open_per_agent", "3"),
                (
                    "allowed_origins",
                    "https://shop.example.com\nhttps://*.example.org",
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let info = app
        .post(
            "/channels.info",
            &json!({"channel_id": id}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(info.body["metadata"]["name"], "Shop EU");
    assert_eq!(info.body["welcome_message"], "Hi <there>");
    assert_eq!(info.body["color"], "#112233");
    assert_eq!(info.body["assignment"], "round_robin");
    assert_eq!(info.body["max_open_per_agent"], 3);
    assert_eq!(info.body["allowed_origins"].as_array().unwrap().len(), 2);

    let bad = browser
        .submit(
            &url,
            &url,
            &[("name", "Shop EU"), ("max_open_per_agent", "500")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("max_open_per_agent"), "{}", bad.body);

    let gone = browser
        .submit(&url, &format!("{url}/disconnect"), &[])
        .await;
    assert_eq!(gone.status, 303);
    let info = app
        .post(
            "/channels.info",
            &json!({"channel_id": id}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(info.body["connected"], false);

    // Invite: the generated password is shown once and works.
    let invited = browser
        .submit(
            "/console/admin/agents",
            "/console/admin/agents",
            &[
                ("display_name", "Carol"),
                ("email", "carol@example.com"),
                ("role", "agent"),
            ],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    let marker = "id=\"new-password\"><code>";
    let start = invited.body.find(marker).unwrap() + marker.len();
    let password = &invited.body[start..start + invited.body[start..].find('<').unwrap()];
    assert_eq!(password.len(), 16);
    let carol = AgentClient::login(&app, "carol@example.com", password).await;
    let listing = browser.get("/console/admin/agents").await;
    assert!(!listing.body.contains(password), "shown only once");

    // Carol is no admin: the admin pages are closed to her.
    let mut carols = ConsoleBrowser::login(&app, "carol@example.com", password).await;
    assert_eq!(carols.get("/console/admin/channels").await.status, 403);
    assert_eq!(carols.get("/console/admin/agents").await.status, 403);
    assert!(!carols
        .get("/console/inbox")
        .await
        .body
        .contains("/console/admin/"));

    // Disable her: her console session ends at once.
    let disabled = browser
        .submit(
            "/console/admin/agents",
            &format!("/console/admin/agents/{}", carol.uuid),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(disabled.status, 303);
    assert_eq!(carols.get("/console/inbox").await.status, 303);
}

#[tokio::test]
async fn console_team_page_starts_an_agent_room_with_chosen_colleagues() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let team = browser.get("/console/colleagues").await;
    assert!(team.body.contains("Bob"));
    assert!(team.body.contains(&format!("data-agent=\"{}\"", bob.uuid)));
    let created = browser
        .submit(
            "/console/colleagues",
            "/console/rooms",
            &[("users", &bob.uuid), ("name", "Billing")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let page = browser.get(created.location()).await;
    assert!(page.body.contains("Billing"));
    let room = created
        .location()
        .trim_end_matches("#latest")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    browser
        .submit(
            created.location(),
            &format!("/console/rooms/{room}/messages"),
            &[("content", "standup?")],
        )
        .await;
    assert_eq!(
        bob.messages(&room).await.last().unwrap()["content"],
        "standup?"
    );
}

#[tokio::test]
async fn console_shows_the_visitors_name_page_and_browser_beside_the_conversation() {
    let app = TestApp::spawn().await;
    let reply = app
        .post_raw(
            "/chatplugin.authenticate",
            json!({"channel_id": app.channel_id,
                   "visitor": {"name": "Ana <script>x</script>", "email": "ana@example.com"},
                   "context": {"url": "https://shop.example.com/teas?a=1&b=2", "title": "Green teas",
                               "language": "pt-BR", "time_zone": "America/Sao_Paulo",
                               "utc_offset_minutes": -180}})
            .to_string(),
            &[
                ("content-type", "application/json"),
                ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_string();
    let room = reply.body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(app.send(&token, "Do you ship to Brazil?").await.status, 200);

    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let inbox = browser.get("/console/inbox").await;
    let name = "Ana <script>x</script>";
    assert!(
        unescape(&inbox.body).contains(name),
        "the queue shows the name"
    );
    assert!(!inbox.body.contains("<script>x"), "escaped");
    browser.answer(&room).await;
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert_eq!(page.status, 200);
    let text = unescape(&page.body);
    for shown in [
        name,
        "ana@example.com",
        "Green teas",
        "https://shop.example.com/teas?a=1&b=2",
        "pt-BR",
        "(America/Sao_Paulo)",
        "Safari on iOS",
    ] {
        assert!(text.contains(shown), "{shown} missing from {}", page.body);
    }
    assert!(
        text.contains(&format!("<span class=\"sender\">{name}</span>")),
        "the visitor's messages carry the given name: {}",
        page.body
    );
    assert!(
        text.contains("<a href=\"https://shop.example.com/teas?a=1&b=2\" target=\"_blank\" rel=\"noopener noreferrer\" data-visitor-url>"),
        "the page is a link: {}",
        page.body
    );
}

#[tokio::test]
async fn the_console_of_another_tenant_finds_none_of_a_tenants_rooms() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let team = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    ana.post(&team, "team secret").await;
    let answered = queued_visitor(&app, "visitor secret").await.conversation_id;
    assert_eq!(ana.answer(&answered).await.status, 200);
    let queued = queued_visitor(&app, "still waiting").await.conversation_id;

    let other = AgentClient::other_tenant_admin(&app).await;
    let eve = other.new_agent(&app, "Eve").await;
    let mut browser = ConsoleBrowser::login(&app, &eve.email, "correct horse").await;
    for room in [&team, &answered, &queued] {
        for path in [
            format!("/console/rooms/{room}"),
            format!("/console/rooms/{room}/messages"),
        ] {
            let page = browser.get(&path).await;
            assert_eq!(page.status, 404, "{path}: {}", page.body);
            assert!(!page.body.contains("secret"), "{path}: {}", page.body);
        }
        let answer = browser
            .submit(
                "/console/inbox",
                &format!("/console/queue/{room}/answer"),
                &[],
            )
            .await;
        assert_ne!(answer.status, 303, "{}", answer.body);
    }
    // Nothing moved: the queued visitor still waits, the others are Ana's.
    assert!(queue_ids(&ana).await.contains(&queued));
    assert_eq!(ana.messages(&answered).await.len(), 2);
}

#[tokio::test]
async fn a_password_change_ends_the_agents_console_sessions() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let mut browser = ConsoleBrowser::login(&app, &ana.email, "correct horse").await;
    assert_eq!(browser.get("/console/inbox").await.status, 200);
    let changed = admin
        .call(
            "PATCH",
            &format!("/agents/{}", ana.uuid),
            Some(json!({"password": "new horse"})),
        )
        .await;
    assert!(changed.status < 300, "{}", changed.body);
    let after = browser.get("/console/inbox").await;
    assert_eq!(after.status, 303, "{}", after.body);
    assert_eq!(after.location(), "/console/login");
}

/// The text of the first `<h1>`.
fn heading(body: &str) -> String {
    let start = body.find("<h1>").map(|i| i + 4).unwrap_or(0);
    let end = body[start..].find("</h1>").map_or(start, |i| start + i);
    unescape(&body[start..end])
}

#[tokio::test]
async fn a_queued_conversation_is_read_before_answering_and_the_visitor_is_not_told() {
    use chatgate::ws::stomp::{Command, StompFrame};
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id,
                    "context": {"url": "https://shop.example/orders/42", "title": "Order 42"}}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let visitor = crate::helpers::VisitorSession::from(&reply.body);
    let room = visitor.conversation_id.clone();
    for text in ["Where is order 42?", "It was due on Monday."] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    // The visitor listens to both of its destinations.
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-1")
                .header("destination", "/queue/events")
                .header("receipt", "r-events"),
        )
        .await;
    // (Whether anyone is available comes first.)
    while stomp.recv().await.expect("RECEIPT").get("receipt-id") != Some("r-events") {}

    let bob = admin.new_agent(&app, "Bob").await;
    let mut browser = ConsoleBrowser::login(&app, &bob.email, "correct horse").await;
    let inbox = browser.get("/console/inbox").await;
    let link = format!("href=\"/console/queue/{room}#latest\"");
    assert!(inbox.body.contains(&link), "the queue row links to it");

    let page = browser.get(&format!("/console/queue/{room}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let text = unescape(&page.body);
    assert!(text.contains("Where is order 42?") && text.contains("It was due on Monday."));
    assert!(text.contains("About the visitor") && text.contains("Order 42"));
    // "Answer" at the top, before the messages; no reply box, no message menu.
    let answer = page
        .body
        .find(&format!("action=\"/console/queue/{room}/answer\""))
        .expect("an Answer form");
    assert!(answer < page.body.find("id=\"messages\"").unwrap());
    assert!(page.body.contains("data-readonly=\"true\""));
    assert!(!page.body.contains("id=\"composer\""));
    assert!(!page.body.contains("class=\"msg-menu\""));
    // Its fragments (the page's script, live) are read-only too.
    let fragment = browser
        .get(&format!("/console/queue/{room}/messages?after_seq=0"))
        .await;
    assert_eq!(fragment.status, 200);
    assert!(unescape(&fragment.body).contains("It was due on Monday."));

    // Nothing changed: still queued, nobody joined, nothing read.
    assert!(queue_ids(&admin).await.contains(&room));
    let history = app.history(&visitor).await;
    assert_eq!(history.len(), 2, "{history:?}");
    let unread = bob.call("GET", "/queues", None).await;
    let queued = unread.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == room.as_str())
        .cloned()
        .unwrap();
    assert!(queued["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["uuid"] != bob.uuid.as_str()));

    // Answering is the first thing the visitor hears of Bob: no typing, no
    // read mark came before it.
    let answered = browser
        .submit(
            &format!("/console/queue/{room}"),
            &format!("/console/queue/{room}/answer"),
            &[],
        )
        .await;
    assert_eq!(answered.location(), format!("/console/rooms/{room}#latest"));
    let mut before = Vec::new();
    let joined = loop {
        let frame = tokio::time::timeout(WAIT, stomp.recv())
            .await
            .expect("the join notice")
            .expect("socket open");
        let body: Value = serde_json::from_slice(&frame.body).unwrap_or(Value::Null);
        if frame.command == Command::Message && body.to_string().contains("Bob joined") {
            break body;
        }
        before.push(body);
    };
    assert!(joined.to_string().contains("Bob joined"));
    for frame in &before {
        let kind = frame["type"].as_str().unwrap_or_default();
        assert!(
            kind != "typing" && kind != "read",
            "the visitor was told something before the join: {frame}"
        );
    }
    // Once answered, the read-only page leads to the room (for Bob) or
    // says the visitor is no longer waiting (for anyone else).
    let again = browser.get(&format!("/console/queue/{room}")).await;
    assert_eq!(again.location(), format!("/console/rooms/{room}#latest"));
    let carol = admin.new_agent(&app, "Carol").await;
    let mut other = ConsoleBrowser::login(&app, &carol.email, "correct horse").await;
    let gone = other.get(&format!("/console/queue/{room}")).await;
    assert_eq!(gone.location(), "/console/inbox?notice=unqueued");
}

#[tokio::test]
async fn a_team_room_is_no_queued_nor_supervised_conversation() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carol = admin.new_agent(&app, "Carol").await;
    // A team room the admin is not in.
    let team = bob.create_room(&[&carol]).await;
    let team = team["uuid"].as_str().unwrap().to_string();
    bob.post(&team, "team-only words").await;
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    for path in [
        format!("/console/queue/{team}/messages?after_seq=0"),
        format!("/console/all/{team}"),
        format!("/console/all/{team}/messages?after_seq=0"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains("team-only words"), "{path}");
    }
    let page = browser.get(&format!("/console/queue/{team}")).await;
    assert!(!page.body.contains("team-only words"));
    let all = browser.get("/console/all").await;
    assert_eq!(all.status, 200);
    assert!(!all.body.contains(&team));
    let assign = browser
        .submit(
            "/console/all",
            &format!("/console/all/{team}/assign"),
            &[("user_uuid", &admin.uuid)],
        )
        .await;
    assert_eq!(assign.status, 404);
    let mine = admin.call("GET", "/users/me/rooms", None).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert!(
        !mine.body.to_string().contains(&team),
        "the admin did not join: {}",
        mine.body
    );
    let theirs = bob.call("GET", "/users/me/rooms", None).await;
    assert!(
        theirs.body.to_string().contains(&team),
        "control: {}",
        theirs.body
    );
}

#[tokio::test]
async fn a_queued_conversation_of_another_tenant_cannot_be_read() {
    let app = TestApp::spawn().await;
    let visitor = queued_visitor(&app, "private words").await;
    let room = visitor.conversation_id.clone();
    let stranger = AgentClient::other_tenant_admin(&app).await;
    let patched = stranger
        .call(
            "PATCH",
            &format!("/agents/{}", stranger.uuid),
            Some(json!({"password": "correct horse"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let mut browser = ConsoleBrowser::login(&app, &stranger.email, "correct horse").await;
    for path in [
        format!("/console/queue/{room}/messages?after_seq=0"),
        format!("/console/all/{room}"),
        format!("/console/all/{room}/messages?after_seq=0"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains("private words"), "{path}");
    }
    let page = browser.get(&format!("/console/queue/{room}")).await;
    assert!(!page.body.contains("private words"));
    let all = browser.get("/console/all").await;
    assert_eq!(all.status, 200);
    assert!(!all.body.contains(&room));
    let assign = browser
        .submit(
            "/console/all",
            &format!("/console/all/{room}/assign"),
            &[("user_uuid", &stranger.uuid)],
        )
        .await;
    assert_eq!(assign.status, 404);
    let admin = AgentClient::admin(&app).await;
    assert!(queue_ids(&admin).await.contains(&room), "still queued");
}

#[tokio::test]
async fn admins_see_every_conversation_filter_them_and_assign_one_agents_do_not() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carol = admin.new_agent(&app, "Carol").await;
    let waiting = queued_visitor(&app, "Still waiting").await;
    let talking = queued_visitor(&app, "Talking to Bob").await;
    assert_eq!(bob.answer(&talking.conversation_id).await.status, 200);
    let (waiting, talking) = (waiting.conversation_id, talking.conversation_id);

    // An agent: no "All" tab, and its pages and form are refused.
    let mut agent = ConsoleBrowser::login(&app, &bob.email, "correct horse").await;
    let inbox = agent.get("/console/inbox").await;
    assert!(!inbox.body.contains("href=\"/console/all\""));
    for path in [
        "/console/all".to_string(),
        format!("/console/all/{waiting}"),
        format!("/console/all/{talking}/messages?after_seq=0"),
    ] {
        let page = agent.get(&path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.body.contains("Still waiting"), "{path}");
    }
    let refused = agent
        .submit(
            "/console/inbox",
            &format!("/console/all/{waiting}/assign"),
            &[("user_uuid", &bob.uuid)],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(queue_ids(&admin).await.contains(&waiting));

    // The admin: every visitor room, and the filters as a plain GET form.
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let inbox = browser.get("/console/inbox").await;
    assert!(inbox.body.contains("href=\"/console/all\""));
    let all = browser.get("/console/all").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(heading(&all.body), "All conversations");
    assert!(all.body.contains("method=\"get\" action=\"/console/all\""));
    assert!(all
        .body
        .contains(&format!("href=\"/console/all/{waiting}#latest\"")));
    assert!(all
        .body
        .contains(&format!("href=\"/console/all/{talking}#latest\"")));
    let queued = browser.get("/console/all?state=queued").await;
    assert!(queued.body.contains(&waiting) && !queued.body.contains(&talking));
    let bobs = browser
        .get(&format!("/console/all?assignee={}", bob.uuid))
        .await;
    assert!(bobs.body.contains(&talking) && !bobs.body.contains(&waiting));
    let channel = browser
        .get(&format!(
            "/console/all?channel={}&state=open",
            app.channel_id
        ))
        .await;
    assert!(channel.body.contains(&talking) && !channel.body.contains(&waiting));
    let other_channel = browser
        .get(&format!("/console/all?channel={}", uuid::Uuid::new_v4()))
        .await;
    assert!(!other_channel.body.contains(&talking));

    // Bob's conversation, read-only: nothing marked read for Bob's visitor.
    let page = browser.get(&format!("/console/all/{talking}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(unescape(&page.body).contains("Talking to Bob"));
    assert!(page.body.contains("Assigned to Bob"));
    assert!(!page.body.contains("id=\"composer\""));
    assert!(page.body.contains("data-readonly=\"true\""));

    // Transferred to Carol: she joins and answers it, Bob leaves.
    let moved = browser
        .submit(
            &format!("/console/all/{talking}"),
            &format!("/console/all/{talking}/assign"),
            &[("user_uuid", &carol.uuid)],
        )
        .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    assert_eq!(
        moved.location(),
        format!("/console/all/{talking}?notice=assigned#latest")
    );
    let carols: Vec<String> = carol
        .rooms()
        .await
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect();
    assert!(carols.contains(&talking), "{carols:?}");
    assert!(!bob
        .rooms()
        .await
        .iter()
        .any(|r| r["uuid"] == talking.as_str()));
    let shown = browser.get(&format!("/console/all/{talking}")).await;
    assert!(shown.body.contains("Assigned to Carol"));

    // The queued one assigned to Bob: it leaves the queue into his inbox.
    let assigned = browser
        .submit(
            &format!("/console/all/{waiting}"),
            &format!("/console/all/{waiting}/assign"),
            &[("user_uuid", &bob.uuid)],
        )
        .await;
    assert_eq!(assigned.status, 303, "{}", assigned.body);
    assert!(!queue_ids(&admin).await.contains(&waiting));
    let bobs_inbox = agent.get("/console/inbox").await;
    assert!(bobs_inbox
        .body
        .contains(&format!("href=\"/console/rooms/{waiting}#latest\"")));

    // Without the CSRF token: refused, nothing changes.
    let forged = browser
        .post(
            &format!("/console/all/{waiting}/assign"),
            &[("user_uuid", &carol.uuid)],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(bob
        .rooms()
        .await
        .iter()
        .any(|r| r["uuid"] == waiting.as_str()));
}

#[tokio::test]
async fn console_messages_show_dates_day_separators_and_sender_groups_without_javascript() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "Two days ago").await;
    let room = visitor.conversation_id.clone();
    assert_eq!(
        app.send(&visitor.token, "Two days ago, again").await.status,
        200
    );
    assert_eq!(admin.answer(&room).await.status, 200);
    assert_eq!(app.send(&visitor.token, "Today").await.status, 200);
    // Noon two days ago, whatever the time now: a run near midnight must
    // not split the older day in two.
    let day = 24 * 3600 * 1000;
    let noon = (chrono::Utc::now().timestamp_millis() / day - 2) * day + day / 2;
    backdate(&app, "Two days ago", noon).await;
    backdate(&app, "joined", noon + 60_000).await;

    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let separators: Vec<&str> = body
        .match_indices("class=\"day-sep\"")
        .map(|(i, _)| &body[i..])
        .collect();
    assert_eq!(separators.len(), 2, "two days: {body}");
    assert!(separators[1].contains(">Today</time>"));
    // The first message of the older day: its time names the date.
    let text_at = body.find("Two days ago</p>").unwrap();
    let first = &body[body[..text_at].rfind("<article").unwrap()..];
    let time = attribute_after(first, "<time datetime=\"").unwrap();
    assert!(time.ends_with('Z') && time.len() > 16, "{time}");
    let label = first[first.find("<time datetime=").unwrap()..]
        .split('>')
        .nth(1)
        .unwrap()
        .trim_end_matches("</time")
        .to_string();
    assert!(
        !label.chars().all(|c| c.is_ascii_digit() || c == ':'),
        "a date: {label}"
    );
    // The second of the visitor's run is grouped.
    assert!(body.contains("class=\"msg theirs grouped\""));
}

/// Moves the messages containing `text` back to `at_ms` (the store's clock
/// is the real one; only a backend's own SQL can age a row).
async fn backdate(app: &TestApp, text: &str, at_ms: i64) {
    use sqlx::Connection;
    let sql = "UPDATE messages SET sent_at = $1 WHERE content LIKE $2";
    let pattern = format!("%{text}%");
    let db = app.db.as_ref().expect("the test's database");
    match &db.schema {
        Some(schema) => {
            let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
            sqlx::query(sql)
                .bind(at_ms)
                .bind(&pattern)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => {
            let url = format!("sqlite://{}", app.config.database_url);
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(&sql.replace('$', "?"))
                .bind(at_ms)
                .bind(&pattern)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn console_shows_offered_quick_replies_as_chips_and_the_visitors_choice() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "Hello").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    browser.answer(&room).await;
    let offered = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "Shall we?", "quick_replies": [
                {"title": "Yes <please>", "payload": "yes"},
                {"title": "No", "payload": "no"},
            ]})),
        )
        .await;
    assert_eq!(offered.status, 201, "{}", offered.body);
    let chose = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Yes <please>", "postback": "yes"}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(chose.status, 200, "{}", chose.body);
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert_eq!(page.status, 200);
    let html = unescape(&page.body);
    assert!(
        html.contains(
            r#"<ul class="qr-chips" aria-label="Quick replies offered"><li class="chip">Yes <please></li><li class="chip">No</li></ul>"#
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Yes <please>"), "escaped");
    assert!(
        html.contains(r#"<p class="qr-chosen">Chose the quick reply <code>yes</code></p>"#),
        "{}",
        page.body
    );
    // Chips, not buttons: nothing in the console sends a visitor's choice.
    let chips = &page.body[page.body.find("qr-chips").unwrap()..];
    let chips = &chips[..chips.find("</ul>").unwrap()];
    assert!(!chips.contains("<button"), "{chips}");
    assert_eq!(page.body.matches("qr-chosen").count(), 1);
}

#[tokio::test]
async fn console_members_panel_adds_removes_mentions_and_leaves_with_forms() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let room = admin.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let page_path = format!("/console/rooms/{room}");
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let page = browser.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("aria-label=\"Members\""));
    assert!(page.body.contains(&format!("data-member=\"{}\"", bob.uuid)));
    assert!(page
        .body
        .contains(&format!("<option value=\"{}\">Cy</option>", cy.uuid)));
    let add = format!("/console/rooms/{room}/members");

    // Without the CSRF token: refused, nothing changed.
    let forged = browser.post(&add, &[("user_uuid", &cy.uuid)]).await;
    assert_eq!(forged.status, 403);
    assert!(cy.rooms().await.iter().all(|r| r["uuid"] != room));

    // Add Cy, remove Bob.
    let added = browser
        .submit(&page_path, &add, &[("user_uuid", &cy.uuid)])
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.location(), format!("{page_path}#latest"));
    assert!(cy.rooms().await.iter().any(|r| r["uuid"] == room));
    let removed = browser
        .submit(&page_path, &format!("{add}/{}/remove", bob.uuid), &[])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(bob.rooms().await.iter().all(|r| r["uuid"] != room));
    let page = browser.get(&page_path).await;
    assert!(page.body.contains("Admin added Cy"));
    assert!(page.body.contains("Admin removed Bob"));

    // A reply mentioning Cy: Cy's console marks it; Bob, gone, cannot be mentioned.
    let reply = format!("/console/rooms/{room}/messages");
    let sent = browser
        .submit(
            &page_path,
            &reply,
            &[("content", "@Cy look"), ("mentions", &cy.uuid)],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let last = cy.messages(&room).await.last().unwrap().clone();
    assert_eq!(last["mentions"], json!([cy.uuid]));
    let mut cys = ConsoleBrowser::login(&app, &cy.email, "correct horse").await;
    // Cy's inbox puts an "@" on the room until Cy has read it; a message
    // that mentions nobody leaves no "@".
    let mention_on_row = |body: &str| {
        let row = &body[body.find(&format!("data-room=\"{room}\"")).unwrap()..];
        row[..row.find("</li>").unwrap()].contains("mention-count")
    };
    let inbox = cys.get("/console/inbox").await;
    assert!(mention_on_row(&inbox.body), "{}", inbox.body);
    assert!(inbox.body.contains("1 unread mentions of you"));
    let cy_page = cys.get(&page_path).await;
    assert!(cy_page.body.contains("mention-badge"), "{}", cy_page.body);
    let read = cy
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/read"),
            Some(json!({})),
        )
        .await;
    assert!(read.status < 300, "{}", read.body);
    admin.post(&room, "no one named").await;
    let inbox = cys.get("/console/inbox").await;
    assert!(!mention_on_row(&inbox.body), "{}", inbox.body);
    let count = cy.messages(&room).await.len();
    let refused = browser
        .submit(
            &page_path,
            &reply,
            &[("content", "@Bob?"), ("mentions", &bob.uuid)],
        )
        .await;
    assert_eq!(refused.status, 303);
    assert_eq!(refused.location(), format!("{page_path}?notice=invalid"));
    assert_eq!(cy.messages(&room).await.len(), count);

    // Another tenant's console cannot add to the room.
    let stranger = AgentClient::other_tenant_admin(&app).await;
    let patched = stranger
        .call(
            "PATCH",
            &format!("/agents/{}", stranger.uuid),
            Some(json!({"password": "correct horse"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let mut theirs = ConsoleBrowser::login(&app, &stranger.email, "correct horse").await;
    let intrusion = theirs
        .submit("/console/inbox", &add, &[("user_uuid", &stranger.uuid)])
        .await;
    assert_eq!(intrusion.status, 404);

    // Leave: back to the inbox, and the room is gone for the admin.
    let left = browser
        .submit(&page_path, &format!("{add}/{}/remove", admin.uuid), &[])
        .await;
    assert_eq!(left.status, 303, "{}", left.body);
    assert_eq!(left.location(), "/console/inbox?notice=left");
    assert_eq!(browser.get(&page_path).await.status, 404);
    assert_eq!(
        cy.messages(&room).await.last().unwrap()["content"],
        "Admin left"
    );
}

/// An agent's upload into `room` (the paperclip's request); the Attachment JSON.
async fn console_upload(
    app: &TestApp,
    agent: &AgentClient,
    room: &str,
    name: &str,
    bytes: Vec<u8>,
    content_type: &str,
) -> Value {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(content_type)
        .unwrap();
    let response = app
        .http
        .post(app.url(&format!("/api/chatd/1.0/users/me/rooms/{room}/attachments")))
        .header("x-auth-token", &agent.token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn console_reply_form_sends_uploaded_files_shown_as_a_thumbnail_and_a_download_row() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = queued_visitor(&app, "Send me the **invoice**, please").await;
    let room = visitor.conversation_id.clone();
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    browser.answer(&room).await;

    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(400, 300, |x, y| image::Rgb([x as u8, y as u8, 90]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let photo = console_upload(
        &app,
        &admin,
        &room,
        "photo.png",
        png.into_inner(),
        "image/png",
    )
    .await;
    let pdf = [b"%PDF-1.4\n".as_slice(), &[b'x'; 2_500_000]].concat();
    let invoice = console_upload(
        &app,
        &admin,
        &room,
        "invoice.pdf",
        pdf.clone(),
        "application/pdf",
    )
    .await;
    let (photo_id, invoice_id) = (
        photo["id"].as_str().unwrap().to_string(),
        invoice["id"].as_str().unwrap().to_string(),
    );

    // A reply of files alone (no text) is sent.
    let replied = browser
        .submit(
            &format!("/console/rooms/{room}"),
            &format!("/console/rooms/{room}/messages"),
            &[
                ("content", ""),
                ("attachments", &photo_id),
                ("attachments", &invoice_id),
            ],
        )
        .await;
    assert_eq!(replied.status, 303, "{}", replied.body);
    assert_eq!(replied.location(), format!("/console/rooms/{room}#latest"));
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    // The visitor's Markdown is rendered, its text kept.
    assert!(
        page.body
            .contains("Send me the <strong>invoice</strong>, please"),
        "{}",
        page.body
    );
    // The image: its thumbnail, boxed by its shape, opening the file.
    assert!(
        page.body
            .contains(&format!("<img src=\"/files/{photo_id}/thumbnail?expires=")),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("alt=\"photo.png\" width=\"240\" height=\"180\""));
    assert!(page.body.contains("class=\"bubble media\""));
    // The PDF: a row with its name and size, whose link downloads it.
    assert!(page.body.contains(
        "<span class=\"file-name\">invoice.pdf</span><span class=\"file-size\">2.4 MB</span>"
    ));
    let href =
        attribute_after(&page.body, "<a class=\"file-row\" href=\"").expect("a download row");
    let href = unescape(&href);
    assert!(href.starts_with(&format!("/files/{invoice_id}/invoice.pdf?expires=")));
    let file = app.http.get(app.url(&href)).send().await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // Ids that are not uploads of this room: sent back saying so, nothing sent.
    for bad in ["not-an-id", "00000000-0000-4000-8000-000000000000"] {
        let refused = browser
            .submit(
                &format!("/console/rooms/{room}"),
                &format!("/console/rooms/{room}/messages"),
                &[("content", "with a bad file"), ("attachments", bad)],
            )
            .await;
        assert_eq!(refused.status, 303);
        assert_eq!(
            refused.location(),
            format!("/console/rooms/{room}?notice=invalid")
        );
    }
    // An id already sent cannot be sent again.
    let again = browser
        .submit(
            &format!("/console/rooms/{room}"),
            &format!("/console/rooms/{room}/messages"),
            &[("content", ""), ("attachments", &photo_id)],
        )
        .await;
    assert_eq!(
        again.location(),
        format!("/console/rooms/{room}?notice=invalid")
    );
    let page = browser.get(&format!("/console/rooms/{room}")).await;
    assert!(!page.body.contains("with a bad file"));
}

/// The rooms listed in the inbox's "found" section (filters or search).
fn found_rooms(body: &str) -> Vec<String> {
    let Some(start) = body.find("data-list=\"found\"") else {
        return Vec::new();
    };
    let section = &body[start..];
    let end = section.find("</section>").unwrap_or(section.len());
    section[..end]
        .split("data-room=\"")
        .skip(1)
        .map(|s| s[..36].to_string())
        .collect()
}

#[tokio::test]
async fn console_labels_filter_the_inbox_and_search_finds_conversations_without_javascript() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let refund = queued_visitor(&app, "Refund please").await.conversation_id;
    let shipping = queued_visitor(&app, "Where is my parcel")
        .await
        .conversation_id;

    // The admin manages labels on its page; an agent may not.
    let mut boss = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let created = boss
        .submit(
            "/console/admin/labels",
            "/console/admin/labels",
            &[("name", "VIP"), ("color", "#FF0000")],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location(), "/console/admin/labels");
    let twice = boss
        .submit(
            "/console/admin/labels",
            "/console/admin/labels",
            &[("name", "vip"), ("color", "#00ff00")],
        )
        .await;
    assert_eq!(twice.status, 400, "a taken name is shown as an error");
    assert!(twice.body.contains("already exists"), "{}", twice.body);
    let labels = admin.call("GET", "/labels", None).await.body;
    assert_eq!(labels["total"], 1, "{labels}");
    let vip = labels["items"][0]["uuid"].as_str().unwrap().to_string();
    let page = boss.get("/console/admin/labels").await;
    assert!(page.body.contains(&format!("data-label-row=\"{vip}\"")));
    let css = boss.get("/console/labels.css").await;
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert!(
        css.body.contains(&format!("lbl-{}", vip.replace('-', "")))
            && css.body.contains("--chip:#ff0000"),
        "{}",
        css.body
    );

    let mut agent = ConsoleBrowser::login(&app, &bob.email, "correct horse").await;
    assert_eq!(agent.get("/console/admin/labels").await.status, 403);
    let refused = agent
        .submit(
            "/console/inbox",
            "/console/admin/labels",
            &[("name", "Mine"), ("color", "#000000")],
        )
        .await;
    assert_eq!(refused.status, 403);
    agent.answer(&refund).await;
    agent.answer(&shipping).await;

    // The agent labels a conversation from its header's form.
    let form = agent.get(&format!("/console/rooms/{refund}")).await;
    assert!(form
        .body
        .contains(&format!("action=\"/console/rooms/{refund}/labels\"")));
    let labelled = agent
        .submit(
            &format!("/console/rooms/{refund}"),
            &format!("/console/rooms/{refund}/labels"),
            &[("label", &vip)],
        )
        .await;
    assert_eq!(labelled.status, 303, "{}", labelled.body);
    assert!(labelled.location().contains("notice=labelled"));
    let inbox = agent.get("/console/inbox").await;
    assert!(
        inbox.body.contains(&format!("data-label=\"{vip}\"")),
        "a chip on the row"
    );
    let rooms = bob.rooms().await;
    let room = rooms.iter().find(|r| r["uuid"] == refund.as_str()).unwrap();
    assert_eq!(room["labels"][0]["name"], "VIP");

    // Filters, as query parameters of the inbox.
    let channel = app.channel_id.clone();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("label={vip}"), vec![refund.as_str()]),
        (
            format!("channel={channel}&state=open"),
            vec![shipping.as_str(), refund.as_str()],
        ),
        ("state=closed".into(), vec![]),
        (
            format!("assignee={}", bob.uuid),
            vec![shipping.as_str(), refund.as_str()],
        ),
        (format!("assignee={}", admin.uuid), vec![]),
        (
            format!("label={vip}&state=open&assignee={}", bob.uuid),
            vec![refund.as_str()],
        ),
        ("q=refund".into(), vec![refund.as_str()]),
        ("q=parcel".into(), vec![shipping.as_str()]),
        (format!("q=parcel&label={vip}"), vec![]),
    ];
    for (query, want) in cases {
        let page = agent.get(&format!("/console/inbox?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert!(page.body.contains("data-list=\"found\""), "{query}");
        assert_eq!(found_rooms(&page.body), want, "{query}");
    }
    // The lists' refresh keeps the filters.
    let fragment = agent
        .get(&format!("/console/fragments/lists?label={vip}"))
        .await;
    assert_eq!(found_rooms(&fragment.body), [refund.as_str()]);
    // Unknown values are ignored: the usual lists.
    let plain = agent.get("/console/inbox?label=nope&state=maybe").await;
    assert!(!plain.body.contains("data-list=\"found\""));

    // The admin's All list filters by label too.
    let all = boss.get(&format!("/console/all?label={vip}")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains(&format!("data-room=\"{refund}\"")));
    assert!(!all.body.contains(&format!("data-room=\"{shipping}\"")));
    assert!(
        all.body.contains(&format!("data-label=\"{vip}\"")),
        "chips on All rows"
    );

    // A label that is not the tenant's is refused and changes nothing.
    let bad = agent
        .submit(
            &format!("/console/rooms/{refund}"),
            &format!("/console/rooms/{refund}/labels"),
            &[("label", &uuid::Uuid::new_v4().to_string())],
        )
        .await;
    assert!(
        bad.location().contains("notice=invalid"),
        "{}",
        bad.location()
    );

    // Deleting the label takes it off the conversation.
    let deleted = boss
        .submit(
            "/console/admin/labels",
            &format!("/console/admin/labels/{vip}/delete"),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 303);
    let inbox = agent.get("/console/inbox").await;
    assert!(!inbox.body.contains(&format!("data-label=\"{vip}\"")));
}

#[tokio::test]
async fn console_admin_page_creates_edits_and_deletes_canned_responses_and_agents_get_403() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let list = "/console/admin/canned";

    let inbox = browser.get("/console/inbox").await;
    assert!(
        inbox.body.contains("href=\"/console/admin/canned\""),
        "linked from the nav"
    );
    let created = browser
        .submit(
            list,
            list,
            &[
                ("shortcut", "/returns"),
                ("title", "Returns <policy>"),
                ("content", "Hi {{visitor.name}},\nsend it back."),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location(), "/console/admin/canned?saved=1");
    let listed = admin.call("GET", "/canned_responses", None).await;
    let item = listed.body["items"][0].clone();
    assert_eq!(item["shortcut"], "returns");
    assert_eq!(item["title"], "Returns <policy>");
    assert_eq!(item["content"], "Hi {{visitor.name}},\nsend it back.");
    let uuid = item["uuid"].as_str().unwrap().to_string();
    let page = browser.get(list).await;
    assert!(page.body.contains("/returns"), "{}", page.body);
    assert!(
        !page.body.contains("Returns <policy>"),
        "titles are escaped"
    );
    assert!(unescape(&page.body).contains("Returns <policy>"));

    // A refusal shows the page again, 400, with what was typed.
    let dup = browser
        .submit(
            list,
            list,
            &[
                ("shortcut", "returns"),
                ("title", "Again"),
                ("content", "Typed text"),
            ],
        )
        .await;
    assert_eq!(dup.status, 400, "{}", dup.body);
    assert!(dup
        .body
        .contains("another canned response has this shortcut"));
    assert!(dup.body.contains("Typed text"));

    // Edit.
    let edit = format!("/console/admin/canned/{uuid}");
    let form = browser.get(&edit).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("send it back."));
    let bad = browser
        .submit(
            &edit,
            &edit,
            &[("shortcut", "two words"), ("title", "T"), ("content", "C")],
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("two words"), "what was typed is kept");
    let saved = browser
        .submit(
            &edit,
            &edit,
            &[
                ("shortcut", "refund"),
                ("title", "Refunds"),
                ("content", "Money back"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let read = admin
        .call("GET", &format!("/canned_responses/{uuid}"), None)
        .await;
    assert_eq!(read.body["shortcut"], "refund");
    assert_eq!(read.body["content"], "Money back");

    // An agent is refused the page and its forms; nothing changes.
    let mut agent_browser = ConsoleBrowser::login(&app, &ana.email, "correct horse").await;
    let inbox = agent_browser.get("/console/inbox").await;
    assert!(
        !inbox.body.contains("/console/admin/canned"),
        "no link for agents"
    );
    assert_eq!(agent_browser.get(list).await.status, 403);
    assert_eq!(agent_browser.get(&edit).await.status, 403);
    let forbidden = agent_browser
        .submit("/console/inbox", &format!("{edit}/delete"), &[])
        .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    // Without the CSRF token, refused.
    assert_eq!(
        browser.post(&format!("{edit}/delete"), &[]).await.status,
        403
    );
    assert_eq!(
        admin
            .call("GET", &format!("/canned_responses/{uuid}"), None)
            .await
            .status,
        200
    );

    // Another tenant's admin finds nothing.
    let stranger = AgentClient::other_tenant_admin(&app)
        .await
        .new_agent_with_role(&app, "Sam", "admin")
        .await;
    let mut stranger_browser = ConsoleBrowser::login(&app, &stranger.email, "correct horse").await;
    assert_eq!(stranger_browser.get(&edit).await.status, 404);
    let theirs = stranger_browser
        .submit(list, &format!("{edit}/delete"), &[])
        .await;
    assert_eq!(theirs.status, 404);
    assert!(!stranger_browser.get(list).await.body.contains("/refund"));

    // Delete.
    let deleted = browser.submit(list, &format!("{edit}/delete"), &[]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(
        admin
            .call("GET", &format!("/canned_responses/{uuid}"), None)
            .await
            .status,
        404
    );
    assert_eq!(browser.get(&edit).await.status, 404);
}

#[tokio::test]
async fn console_admin_adds_a_webhook_reads_its_delivery_log_and_sends_one_again() {
    let app = TestApp::spawn_with(|c| c.outbox_poll_ms = 50).await;
    let admin = AgentClient::admin(&app).await;
    let bob = admin.new_agent(&app, "Bob").await;
    let receiver = crate::webhook_receiver::Receiver::start().await;
    let mut boss = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let created = boss
        .submit(
            "/console/admin/webhooks",
            "/console/admin/webhooks",
            &[("url", &receiver.url), ("events", "message.created")],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let secret = created
        .body
        .split("whsec_")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .map(|key| format!("whsec_{key}"))
        .expect("the secret shown once");
    receiver.set_secret(&secret);
    let listed = admin.call("GET", "/webhooks", None).await;
    let id = listed.body["items"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(created.body.contains(&format!("data-webhook-row=\"{id}\"")));
    assert!(!boss
        .get("/console/admin/webhooks")
        .await
        .body
        .contains("whsec_"));

    let visitor = queued_visitor(&app, "Hello").await;
    let first = receiver.wait_delivered(1, Duration::from_secs(20)).await;
    assert!(first[0].verified);
    // The 2xx is recorded when the worker's round ends: soon after the
    // receiver has it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let log = loop {
        let log = boss.get(&format!("/console/admin/webhooks/{id}")).await;
        assert_eq!(log.status, 200);
        if log.body.contains("delivered") || tokio::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(log.body.contains("message.created") && log.body.contains("delivered"));
    let delivery = attribute_after(&log.body, "data-delivery-row=\"").expect("a delivery row");
    let again = boss
        .submit(
            &format!("/console/admin/webhooks/{id}"),
            &format!("/console/admin/webhooks/{id}/deliveries/{delivery}/redeliver"),
            &[],
        )
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    let hits = loop {
        let hits = receiver.delivered();
        if hits.len() >= 2 {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(hits[1].id, hits[0].id, "the same event, sent again");
    assert_eq!(
        hits[1].body["data"]["message"]["room"]["uuid"],
        visitor.conversation_id.as_str()
    );

    let mut agent = ConsoleBrowser::login(&app, &bob.email, "correct horse").await;
    assert_eq!(agent.get("/console/admin/webhooks").await.status, 403);
}

#[tokio::test]
async fn a_refused_webhook_url_keeps_the_form_as_typed_and_the_help_says_what_is_refused() {
    let app = TestApp::spawn_with(|c| c.webhook_allow_private = false).await;
    let admin = AgentClient::admin(&app).await;
    let mut boss = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    let page = boss.get("/console/admin/webhooks").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Internal ones (localhost, private"),
        "{}",
        page.body
    );
    let refused = boss
        .submit(
            "/console/admin/webhooks",
            "/console/admin/webhooks",
            &[
                ("url", "http://169.254.169.254/latest"),
                ("events", "message.created, conversation.closed"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("public address"), "{}", refused.body);
    assert!(
        refused
            .body
            .contains("value=\"http://169.254.169.254/latest\""),
        "the URL as typed: {}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("value=\"message.created, conversation.closed\""),
        "the events as typed: {}",
        refused.body
    );
    // A form without its URL is refused as the API refuses it.
    let missing = boss
        .submit(
            "/console/admin/webhooks",
            "/console/admin/webhooks",
            &[("events", "*")],
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.body.contains("url is required"), "{}", missing.body);
    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));

    // Where the operator allows internal targets, the help says so.
    let open = TestApp::spawn().await;
    let mut boss = ConsoleBrowser::login(&open, &open.admin_email, &open.admin_password).await;
    let page = boss.get("/console/admin/webhooks").await;
    assert!(page.body.contains("allows internal ones"), "{}", page.body);
}

#[tokio::test]
async fn the_inbox_search_refuses_control_characters_as_the_api_does() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(
        app.send(&visitor.token, "searchable words").await.status,
        200
    );
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    let mut browser = ConsoleBrowser::login(&app, &app.admin_email, &app.admin_password).await;
    for bad in ["%00", "words%00", "a%01b", "%7F"] {
        let page = browser.get(&format!("/console/inbox?q={bad}")).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.body);
        assert!(
            page.body.contains("control characters"),
            "{bad}: {}",
            page.body
        );
    }
    let page = browser.get("/console/inbox?q=words").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&visitor.conversation_id), "found");
}
