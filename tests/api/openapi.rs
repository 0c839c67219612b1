//! The API's description: `/api/openapi.json` is OpenAPI 3.1, describes
//! every route the server serves (a route added without its description
//! fails here), and `/api/docs` renders it.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

async fn document(app: &TestApp) -> Value {
    let reply = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    reply.json().await.unwrap()
}

/// `(METHOD, path)` of every operation the document describes.
fn described(doc: &Value) -> BTreeSet<(String, String)> {
    chatgate::http::openapi::operations(doc)
        .into_iter()
        .collect()
}

#[tokio::test]
async fn openapi_document_is_version_3_1_with_webhooks_and_error_shape() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "chatgate");
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    for field in ["message", "error_id", "details", "timestamp"] {
        assert!(error.get(field).is_some(), "Error has no {field}");
    }
    let webhook = &doc["webhooks"]["event"]["post"];
    let headers: Vec<&str> = webhook["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        headers,
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    let payload = &doc["components"]["schemas"]["WebhookEvent"]["properties"];
    for field in ["id", "type", "created_at", "tenant_uuid", "data"] {
        assert!(payload.get(field).is_some(), "WebhookEvent has no {field}");
    }
    // Every reference resolves to a schema of the document.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "no schema {name}"
        );
    }
}

#[tokio::test]
async fn every_served_route_is_described_and_every_description_is_served() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let described = described(&doc);
    let served: BTreeSet<(String, String)> = chatgate::http::served().into_iter().collect();
    let undescribed: Vec<_> = served.difference(&described).collect();
    assert!(
        undescribed.is_empty(),
        "served but not in /api/openapi.json: {undescribed:?}"
    );
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "described but not in http::served: {unserved:?}"
    );
    // The routes for people's browsers are served, and kept out on purpose.
    for path in chatgate::http::NOT_API {
        assert!(
            !described.iter().any(|(_, p)| p == path),
            "{path} is not API"
        );
    }
}

#[tokio::test]
async fn every_described_route_answers_on_the_server() {
    // The description matches the router, not only the list beside it: each
    // described path (its parameters filled in) is routed, so an anonymous
    // request gets its 401 or another answer of the description, never the
    // router's 404 `not-found` for an unknown path or a 405.
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    for (method, path) in described(&doc) {
        if path.starts_with("/ws.") || path.starts_with("/api/websocketd") {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "00000000-0000-4000-8000-000000000000"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let request = app.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(&concrete),
        );
        let reply = request
            .header("content-type", "application/json")
            .body(if method == "GET" || method == "HEAD" {
                ""
            } else {
                "{}"
            })
            .send()
            .await
            .unwrap();
        let status = reply.status().as_u16();
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {concrete} answered {status}, not among its described responses"
        );
        if status == 404 && method != "HEAD" {
            let body: Value = reply.json().await.unwrap();
            assert_ne!(
                body["error_id"], "not-found",
                "{method} {path} is described but not routed"
            );
        }
    }
}

#[tokio::test]
async fn api_docs_page_lists_operations_by_tag() {
    let app = TestApp::spawn().await;
    let reply = app.http.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert!(reply.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // Paths may break after a `/`.
    let page = reply.text().await.unwrap().replace("<wbr>", "");
    for text in [
        "/chatplugin.authenticate",
        "/api/chatd/1.0/users/me/rooms/{room}/messages",
        "webhook-signature",
        "id=\"rooms\"",
        "/api/openapi.json",
    ] {
        assert!(page.contains(text), "the page does not show {text}");
    }
    assert!(!page.contains("<script"), "the page needs no script");
}

#[tokio::test]
async fn a_wrong_method_is_405_naming_the_methods_of_the_path() {
    // Found by schemathesis (`unsupported_method`): a 405 had no `Allow`
    // header, and the agent API answered a known path's other methods 404.
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    let reply = app
        .http
        .request(trace, app.url("/chatplugin.send"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "POST");
    let reply = app
        .http
        .patch(app.url("/api/chatd/1.0/labels"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "GET, POST");
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error_id"], "method-not-allowed");
    let reply = app
        .http
        .post(app.url("/api/chatd/1.0/agents/00000000-0000-4000-8000-000000000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "DELETE, GET, PATCH, PUT");
    // The login's path without a token to revoke.
    let reply = app
        .http
        .delete(app.url("/api/auth/0.1/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert_eq!(reply.headers()["allow"], "POST");
    // An unknown path is still a 404, and an anonymous caller learns
    // nothing of the paths: 401.
    let reply = app
        .http
        .get(app.url("/api/chatd/1.0/no-such-thing"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    let reply = app
        .http
        .patch(app.url("/api/chatd/1.0/labels"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
}

/// A file is served with the type judged at its upload: the download's 200
/// (GET and HEAD) lists exactly the types an upload may have, each a binary
/// string (schemathesis checks the served type against the list).
#[tokio::test]
async fn the_file_download_lists_every_type_a_file_may_be_served_with() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let allowed: BTreeSet<&str> = chatgate::files::served_types().collect();
    assert!(allowed.contains("image/png") && allowed.contains("text/plain"));
    for method in ["get", "head"] {
        let content = doc["paths"]["/files/{id}/{name}"][method]["responses"]["200"]["content"]
            .as_object()
            .unwrap_or_else(|| panic!("the download's {method} 200 has content"));
        let listed: BTreeSet<&str> = content.keys().map(String::as_str).collect();
        assert_eq!(listed, allowed, "{method}");
        for (kind, media) in content {
            assert_eq!(media["schema"]["type"], "string", "{kind}");
            assert_eq!(media["schema"]["format"], "binary", "{kind}");
        }
    }
}
