//! Attachments (desk-api.md, "Attachments"): uploads by visitors and agents,
//! the types and sizes they may have, and the signed URLs files are fetched by.

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

/// A real `w`×`h` PNG (a gradient with some transparency).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([
            (x % 256) as u8,
            (y % 256) as u8,
            128,
            if x < w / 2 { 255 } else { 90 },
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG's signature and header alone, claiming `w`×`h`: how a
/// decompression bomb starts (its few kilobytes of data would follow).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = vec![0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&w.to_be_bytes());
    bytes.extend_from_slice(&h.to_be_bytes());
    bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0";

fn form(name: &str, bytes: &[u8], content_type: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str(content_type)
            .unwrap(),
    )
}

async fn upload(app: &TestApp, path: &str, token: Option<&str>, form: Form) -> Reply {
    let mut req = app.http.post(app.url(path)).multipart(form);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    Reply::from(req.send().await.unwrap()).await
}

async fn visitor_upload(app: &TestApp, token: &str, form: Form) -> Reply {
    upload(app, "/chatplugin.upload", Some(token), form).await
}

async fn agent_upload(app: &TestApp, agent: &AgentClient, room: &str, form: Form) -> Reply {
    upload(
        app,
        &format!("/api/chatd/1.0/users/me/rooms/{room}/attachments"),
        Some(&agent.token),
        form,
    )
    .await
}

/// GET of a signed URL: status, headers, bytes.
async fn fetch(app: &TestApp, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = app.http.get(app.url(url)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn a_visitor_uploads_an_image_and_anyone_with_its_signed_url_fetches_it() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let photo = png(640, 480);
    let reply = visitor_upload(&app, &visitor.token, form("photo.png", &photo, "image/png")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let a = &reply.body;
    assert!(
        a["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok(),
        "{a}"
    );
    assert_eq!(a["name"], "photo.png");
    assert_eq!(a["size"], photo.len());
    assert_eq!(a["content_type"], "image/png");
    assert_eq!(
        (a["width"].clone(), a["height"].clone()),
        (Value::from(640), Value::from(480))
    );
    let url = a["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "/files/{}/photo.png?expires=",
            a["id"].as_str().unwrap()
        )),
        "{url}"
    );

    let (status, headers, bytes) = fetch(&app, url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, photo);
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert!(header(&headers, "content-disposition").starts_with("inline;"));
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "content-security-policy").contains("sandbox"));

    // Its thumbnail: a JPEG at most 320 pixels a side, same proportions.
    let thumbnail = a["thumbnail_url"].as_str().unwrap();
    assert!(thumbnail.starts_with(&format!("/files/{}/thumbnail?", a["id"].as_str().unwrap())));
    let (status, headers, bytes) = fetch(&app, thumbnail).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "image/jpeg");
    let small = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));
    // A file that is not an image has none.
    let text = visitor_upload(&app, &visitor.token, form("a.txt", b"words", "text/plain")).await;
    assert!(text.body["thumbnail_url"].is_null(), "{}", text.body);
}

#[tokio::test]
async fn decompression_bombs_and_unreadable_images_are_refused() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    // A header claiming 50,000 × 50,000, or 8,000 × 8,000 (64 megapixels).
    for (w, h) in [(50_000, 50_000), (8_000, 8_000), (10_001, 10)] {
        visitor_upload(
            &app,
            &visitor.token,
            form("bomb.png", &png_header(w, h), "image/png"),
        )
        .await
        .assert_error(413, "file-too-large");
    }
    // A header with no image behind it, and one that says 0 × 0.
    visitor_upload(
        &app,
        &visitor.token,
        form("broken.png", &png_header(30, 20), "image/png"),
    )
    .await
    .assert_error(415, "file-type-not-allowed");
    visitor_upload(
        &app,
        &visitor.token,
        form("empty.png", &png_header(0, 0), "image/png"),
    )
    .await
    .assert_error(415, "file-type-not-allowed");
    // Nothing of them was kept; a real image of the same name is (the control).
    let dir = format!("{}/attachments", app.config.files_url.as_deref().unwrap());
    assert!(std::fs::read_dir(&dir).map_or(0, |d| d.count()) == 0);
    let ok = visitor_upload(
        &app,
        &visitor.token,
        form("bomb.png", &png(30, 20), "image/png"),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "the image and its thumbnail"
    );
}

#[tokio::test]
async fn a_signed_url_altered_in_any_part_is_refused() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let first = visitor_upload(
        &app,
        &visitor.token,
        form("a.txt", b"first file", "text/plain"),
    )
    .await;
    let second = visitor_upload(
        &app,
        &visitor.token,
        form("b.txt", b"second file", "text/plain"),
    )
    .await;
    let url = first.body["url"].as_str().unwrap().to_string();
    let (path, query) = url.split_once('?').unwrap();
    // The control: the URL as given works.
    assert_eq!(fetch(&app, &url).await.0, 200);
    let expires: i64 = query
        .split('&')
        .find_map(|p| p.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap();
    let signature = query
        .split('&')
        .find_map(|p| p.strip_prefix("signature="))
        .unwrap();
    let other_id = second.body["id"].as_str().unwrap();
    let altered = [
        // Another file's id with this file's signature.
        url.replace(first.body["id"].as_str().unwrap(), other_id),
        // A later expiry.
        format!("{path}?expires={}&signature={signature}", expires + 3600),
        // An expiry in the past, however signed.
        format!("{path}?expires=1&signature={signature}"),
        // One character of the signature.
        format!(
            "{path}?expires={expires}&signature={}{}",
            &signature[..signature.len() - 1],
            // Another last character, whatever it was.
            if signature.ends_with('0') { '1' } else { '0' }
        ),
        // No signature, no expiry, nothing.
        format!("{path}?expires={expires}"),
        path.to_string(),
        // The thumbnail, which has a signature of its own.
        format!(
            "/files/{}/thumbnail?{query}",
            first.body["id"].as_str().unwrap()
        ),
        // Not an id.
        format!("/files/not-an-id/a.txt?{query}"),
    ];
    for url in altered {
        let (status, _, body) = fetch(&app, &url).await;
        assert_eq!(status, 403, "{url}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error_id"], "forbidden", "{url}");
    }
    // Renaming the file in the link changes nothing: the signature is the id's.
    let renamed = url.replace("/a.txt?", "/other-name.txt?");
    let (status, _, bytes) = fetch(&app, &renamed).await;
    assert_eq!((status, bytes.as_slice()), (200, b"first file".as_slice()));
}

#[tokio::test]
async fn types_are_judged_by_content_and_refused_ones_are_415() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    // Named and labelled as images, but an executable and an HTML page.
    for (name, bytes) in [
        ("cat.png", ELF),
        (
            "cat.jpg",
            b"<!DOCTYPE html><script>alert(1)</script>".as_slice(),
        ),
        (
            "drawing.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>".as_slice(),
        ),
        ("empty.txt", b"".as_slice()),
    ] {
        let reply = visitor_upload(&app, &visitor.token, form(name, bytes, "image/png")).await;
        reply.assert_error(415, "file-type-not-allowed");
    }
    // A PNG named .exe is a PNG, and text labelled as an image is text.
    let png = visitor_upload(
        &app,
        &visitor.token,
        form("setup.exe", &png(8, 8), "application/x-msdownload"),
    )
    .await;
    assert_eq!(png.status, 201, "{}", png.body);
    assert_eq!(png.body["content_type"], "image/png");
    let text = visitor_upload(
        &app,
        &visitor.token,
        form("notes.png", b"just notes", "image/png"),
    )
    .await;
    assert_eq!(text.body["content_type"], "text/plain");
    // A download that is not an image is never shown inline.
    let (_, headers, _) = fetch(&app, text.body["url"].as_str().unwrap()).await;
    assert!(header(&headers, "content-disposition").starts_with("attachment;"));
    assert_eq!(header(&headers, "content-type"), "text/plain");
}

#[tokio::test]
async fn an_upload_over_the_cap_is_413_and_nothing_of_it_is_kept() {
    let app = TestApp::spawn_with(|c| c.max_upload_bytes = 10_000).await;
    let visitor = app.visitor().await;
    let reply = visitor_upload(
        &app,
        &visitor.token,
        form("big.txt", &[b'a'; 10_001], "text/plain"),
    )
    .await;
    reply.assert_error(413, "file-too-large");
    // Exactly the cap is fine.
    let reply = visitor_upload(
        &app,
        &visitor.token,
        form("cap.txt", &[b'a'; 10_000], "text/plain"),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // A body that declares far more than the cap is refused before it is read.
    let reply = visitor_upload(
        &app,
        &visitor.token,
        form("huge.txt", &vec![b'a'; 200_000], "text/plain"),
    )
    .await;
    reply.assert_error(413, "file-too-large");
    // Nothing but the accepted file is in the store.
    let dir = format!("{}/attachments", app.config.files_url.as_deref().unwrap());
    let kept: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
}

#[tokio::test]
async fn path_tricks_in_names_are_cleaned() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    for (given, kept) in [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/absolute/report.txt", "report.txt"),
        ("..", "file"),
        ("  .hidden.txt", "hidden.txt"),
    ] {
        let reply = visitor_upload(&app, &visitor.token, form(given, b"text", "text/plain")).await;
        assert_eq!(reply.status, 201, "{given}: {}", reply.body);
        assert_eq!(reply.body["name"], kept, "{given}");
        let url = reply.body["url"].as_str().unwrap();
        assert!(!url.contains(".."), "{url}");
        assert_eq!(fetch(&app, url).await.2, b"text");
    }
}

#[tokio::test]
async fn uploads_without_a_valid_token_or_a_file_part_are_refused() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    upload(
        &app,
        "/chatplugin.upload",
        None,
        form("a.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(401, "invalid-token");
    upload(
        &app,
        "/chatplugin.upload",
        Some("forged"),
        form("a.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(401, "invalid-token");
    // A resume token is not a visitor token.
    upload(
        &app,
        "/chatplugin.upload",
        Some(&visitor.resume_token),
        form("a.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(401, "invalid-token");
    // No part named `file`; a JSON body.
    let other = Form::new().part("upload", Part::bytes(b"x".to_vec()).file_name("a.txt"));
    visitor_upload(&app, &visitor.token, other)
        .await
        .assert_error(400, "invalid-data");
    app.post(
        "/chatplugin.upload",
        &serde_json::json!({"file": "x"}),
        Some(&visitor.token),
    )
    .await
    .assert_error(400, "invalid-data");
    // The control: the same visitor uploads.
    assert_eq!(
        visitor_upload(&app, &visitor.token, form("a.txt", b"x", "text/plain"))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn agents_upload_into_rooms_they_are_in_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bo = admin.new_agent(&app, "Bo").await;
    let room = admin.create_room(&[&ana]).await;
    let room = room["uuid"].as_str().unwrap();
    let reply = agent_upload(
        &app,
        &ana,
        room,
        form("spec.pdf", b"%PDF-1.7\n%...", "application/pdf"),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["content_type"], "application/pdf");
    let (status, headers, bytes) = fetch(&app, reply.body["url"].as_str().unwrap()).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (200, b"%PDF-1.7\n%...".as_slice())
    );
    assert!(header(&headers, "content-disposition").starts_with("attachment;"));

    // Bo is not in the room; another tenant's admin is not in this tenant;
    // an unknown or malformed room; no token.
    agent_upload(&app, &bo, room, form("a.txt", b"x", "text/plain"))
        .await
        .assert_error(404, "unknown-room");
    let stranger = AgentClient::other_tenant_admin(&app).await;
    agent_upload(&app, &stranger, room, form("a.txt", b"x", "text/plain"))
        .await
        .assert_error(404, "unknown-room");
    agent_upload(
        &app,
        &ana,
        &uuid::Uuid::new_v4().to_string(),
        form("a.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(404, "unknown-room");
    agent_upload(&app, &ana, "not-a-room", form("a.txt", b"x", "text/plain"))
        .await
        .assert_error(404, "unknown-room");
    upload(
        &app,
        &format!("/api/chatd/1.0/users/me/rooms/{room}/attachments"),
        None,
        form("a.txt", b"x", "text/plain"),
    )
    .await
    .assert_error(401, "invalid-token");
    // A hostile type from an agent is refused the same way.
    agent_upload(
        &app,
        &ana,
        room,
        form("tool.bin", ELF, "application/octet-stream"),
    )
    .await
    .assert_error(415, "file-type-not-allowed");
}

/// moto's S3 API server on a free port, stopped on drop. moto_server must
/// be installed (`.ci/run` installs it): a missing one fails the test.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]')");
        let moto = Moto { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        moto
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn files_live_in_an_s3_bucket_when_configured_large_ones_in_parts() {
    let moto = Moto::start().await;
    let http = reqwest::Client::new();
    let created = http.put(moto.url("/chat-files")).send().await.unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let files_url = format!(
        "s3://chat-files/tenant-files?endpoint={}&aws_allow_http=true&access_key_id=test\
         &secret_access_key=test&region=us-east-1",
        moto.url("")
    );
    let app = TestApp::spawn_with(|c| {
        c.files_url = Some(files_url);
        c.max_upload_bytes = 12 * 1024 * 1024;
    })
    .await;
    let visitor = app.visitor().await;
    // 11 MiB: past object_store's buffer, so it goes up as a multipart upload.
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(11 * 1024 * 1024, b'x');
    let reply = visitor_upload(
        &app,
        &visitor.token,
        form("manual.pdf", &big, "application/pdf"),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap();
    // The object is in the bucket, under the prefix.
    let object = http
        .get(moto.url(&format!("/chat-files/tenant-files/attachments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(object.status().as_u16(), 200);
    assert_eq!(object.bytes().await.unwrap().len(), big.len());
    // And it is served back through its signed URL.
    let (status, headers, bytes) = fetch(&app, reply.body["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-length"), big.len().to_string());
    assert!(bytes == big, "the bytes served are the bytes uploaded");
    // A refused type leaves nothing in the bucket.
    visitor_upload(&app, &visitor.token, form("x.png", ELF, "image/png"))
        .await
        .assert_error(415, "file-type-not-allowed");
    let listing = http
        .get(moto.url("/chat-files?list-type=2&prefix=tenant-files/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(listing.matches("<Key>").count(), 1, "{listing}");
}

#[tokio::test]
async fn an_upload_that_stops_sending_is_ended_and_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(|c| c.body_read_timeout = 1).await;
    let visitor = app.visitor().await;
    let mut tcp = crate::helpers::raw_tcp(&app).await;
    let head = format!(
        "POST /chatplugin.upload HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=XyZ\r\ncontent-length: 100000\r\n\r\n\
         --XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         content-type: text/plain\r\n\r\nthe first words, then nothing",
        visitor.token
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let since = tokio::time::Instant::now();
    let closed =
        crate::helpers::read_until_closed(&mut tcp, b"", since, std::time::Duration::from_secs(20))
            .await;
    let answer = String::from_utf8_lossy(&closed.data);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("no data for 1 s"), "{answer}");
    let dir = format!("{}/attachments", app.config.files_url.as_deref().unwrap());
    assert_eq!(std::fs::read_dir(&dir).map_or(0, |d| d.count()), 0);
    // The control: the same visitor's complete upload is stored.
    let ok = visitor_upload(
        &app,
        &visitor.token,
        form("a.txt", b"all of it", "text/plain"),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

// ---- Messages carrying files -------------------------------------------

/// `{"message": {...}}` sent by a visitor over HTTP.
async fn visitor_send(app: &TestApp, token: &str, message: Value) -> Reply {
    let body = serde_json::json!({ "message": message });
    app.post("/chatplugin.send", &body, Some(token)).await
}

/// The id of an upload's reply.
fn id_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

/// A message's files: (name, content type, size), and each fetched by its
/// URL (200 and the bytes given) and, for images, its thumbnail (200).
async fn files_of(app: &TestApp, message: &Value) -> Vec<(String, String, u64)> {
    let list = message["attachments"]
        .as_array()
        .unwrap_or_else(|| panic!("attachments in {message}"));
    let mut out = Vec::new();
    for a in list {
        let (status, _, bytes) = fetch(app, a["url"].as_str().unwrap()).await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(bytes.len() as u64, a["size"].as_u64().unwrap());
        if a["content_type"].as_str().unwrap().starts_with("image/") {
            let (status, _, _) = fetch(app, a["thumbnail_url"].as_str().unwrap()).await;
            assert_eq!(status, 200, "{a}");
        } else {
            assert!(a["thumbnail_url"].is_null(), "{a}");
        }
        out.push((
            a["name"].as_str().unwrap().to_string(),
            a["content_type"].as_str().unwrap().to_string(),
            a["size"].as_u64().unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn a_visitors_files_reach_every_door_and_history_with_fresh_links() {
    use crate::queue::next_message;
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&room).await.status, 200);
    let mut stomp = crate::helpers::Stomp::subscribed(&app, &visitor.token, Some(2)).await;
    let mut events = admin.events().await;

    let photo = png(200, 100);
    let image =
        id_of(&visitor_upload(&app, &visitor.token, form("shot.png", &photo, "image/png")).await);
    let notes = id_of(
        &visitor_upload(
            &app,
            &visitor.token,
            form("notes.txt", b"line one\n", "text/plain"),
        )
        .await,
    );
    // Files without a caption: `text` may be left out.
    let sent = visitor_send(
        &app,
        &visitor.token,
        serde_json::json!({"attachments": [image, notes]}),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["content"], "");
    let expected = vec![
        (
            "shot.png".to_string(),
            "image/png".to_string(),
            photo.len() as u64,
        ),
        ("notes.txt".to_string(), "text/plain".to_string(), 9),
    ];
    assert_eq!(files_of(&app, &sent.body).await, expected);
    assert_eq!(sent.body["attachments"][0]["width"], 200);

    // STOMP, the agent's event socket, REST history, the visitor's history.
    let heard = loop {
        let body = next_message(&mut stomp).await;
        if body["type"] == "message.created" && body["message"]["id"] == sent.body["id"] {
            break body;
        }
    };
    assert_eq!(files_of(&app, &heard["message"]).await, expected);
    let event = events
        .event_with(
            "chatd_user_room_message_created",
            "uuid",
            sent.body["id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(files_of(&app, &event).await, expected);
    let listed = admin.messages(&room).await;
    let listed = listed
        .iter()
        .find(|m| m["uuid"] == sent.body["id"])
        .unwrap();
    assert_eq!(files_of(&app, listed).await, expected);
    let history = app.history(&visitor).await;
    assert_eq!(files_of(&app, history.last().unwrap()).await, expected);
    // Plain messages carry an empty list everywhere.
    assert_eq!(history[0]["attachments"], serde_json::json!([]));
    assert_eq!(
        admin.messages(&room).await[0]["attachments"],
        serde_json::json!([])
    );

    // With a caption, over STOMP, in Airy's shape (the URL of an upload).
    let third = visitor_upload(
        &app,
        &visitor.token,
        form("more.png", &png(10, 10), "image/png"),
    )
    .await;
    assert_eq!(third.status, 201, "{}", third.body);
    let url = format!("http://example.com{}", third.body["url"].as_str().unwrap());
    stomp
        .send(
            chatgate::ws::stomp::StompFrame::new(chatgate::ws::stomp::Command::Send)
                .header("destination", "/app/send")
                .body(
                    serde_json::json!({"message": {"text": "and this",
                        "attachment": {"type": "image", "payload": {"url": url}}}})
                    .to_string(),
                ),
        )
        .await;
    let airy = loop {
        let body = next_message(&mut stomp).await;
        if body["type"] == "message.created" && body["message"]["content"] == "and this" {
            break body;
        }
    };
    assert_eq!(
        files_of(&app, &airy["message"]).await,
        [(
            "more.png".to_string(),
            "image/png".to_string(),
            third.body["size"].as_u64().unwrap()
        )]
    );
}

#[tokio::test]
async fn only_ones_own_unsent_uploads_of_the_conversation_can_be_sent() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let other = app.visitor().await;
    let mine =
        id_of(&visitor_upload(&app, &visitor.token, form("a.txt", b"mine", "text/plain")).await);
    let theirs =
        id_of(&visitor_upload(&app, &other.token, form("b.txt", b"theirs", "text/plain")).await);
    let unknown = uuid::Uuid::new_v4().to_string();
    let bad = |message: Value| {
        let (app, token) = (&app, visitor.token.clone());
        async move { visitor_send(app, &token, message).await }
    };
    use serde_json::json;
    // Another conversation's upload, an unknown id (each beside a good
    // one: nothing is taken), malformed lists, Airy's shape with a URL
    // that is no upload's, both shapes at once.
    for message in [
        json!({"attachments": [theirs]}),
        json!({"attachments": [mine, unknown]}),
        json!({"attachments": [mine, theirs]}),
        json!({"attachments": []}),
        json!({"attachments": [mine, mine]}),
        json!({"attachments": ["not-an-id"]}),
        json!({"attachments": [1]}),
        json!({"attachments": mine}),
        json!({"attachments": (0..11).map(|_| uuid::Uuid::new_v4().to_string()).collect::<Vec<_>>()}),
        json!({"attachment": {"type": "image", "payload": {"url": "https://example.com/cat.png"}}}),
        json!({"attachment": {"type": "sticker", "payload": {"url": format!("/files/{mine}/a.txt")}}}),
        json!({"attachment": "x"}),
        json!({"attachments": [mine], "attachment": {"payload": {"url": format!("/files/{mine}/a.txt")}}}),
    ] {
        bad(message.clone())
            .await
            .assert_error(400, "invalid-attachment");
    }
    // Without files the text stays required.
    bad(json!({})).await.assert_error(400, "invalid-data");
    bad(json!({"text": "  "}))
        .await
        .assert_error(400, "invalid-data");
    assert!(app.history(&visitor).await.is_empty());

    // Still unsent after all that: sent once, then never again.
    let sent = visitor_send(
        &app,
        &visitor.token,
        json!({"text": "x", "attachments": [mine]}),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    bad(json!({"attachments": [mine]}))
        .await
        .assert_error(400, "invalid-attachment");
    // The other visitor cannot send it either.
    visitor_send(&app, &other.token, json!({"attachments": [mine]}))
        .await
        .assert_error(400, "invalid-attachment");

    // A retry of a send that took its files (same client_message_id) is
    // answered with the first message, not refused.
    let again =
        id_of(&visitor_upload(&app, &visitor.token, form("c.txt", b"again", "text/plain")).await);
    let body = json!({"message": {"attachments": [again]}, "client_message_id": "k-1"});
    let first = app
        .post("/chatplugin.send", &body, Some(&visitor.token))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let retry = app
        .post("/chatplugin.send", &body, Some(&visitor.token))
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.body["id"], first.body["id"]);
    assert_eq!(retry.body["attachments"][0]["id"], again.as_str());
    // ... but another message may not reuse them under another key.
    let body = json!({"message": {"attachments": [again]}, "client_message_id": "k-2"});
    app.post("/chatplugin.send", &body, Some(&visitor.token))
        .await
        .assert_error(400, "invalid-attachment");
    assert_eq!(app.history(&visitor).await.len(), 2);
}

#[tokio::test]
async fn an_agent_sends_files_to_a_visitor_and_deleting_the_message_deletes_them() {
    use crate::queue::next_message;
    use serde_json::json;
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&room).await.status, 200);
    let mut stomp = crate::helpers::Stomp::subscribed(&app, &visitor.token, Some(2)).await;

    let pdf = b"%PDF-1.7\n% a guide\n".to_vec();
    let guide = id_of(
        &agent_upload(
            &app,
            &admin,
            &room,
            form("guide.pdf", &pdf, "application/pdf"),
        )
        .await,
    );
    let path = format!("/users/me/rooms/{room}/messages");
    // A visitor's upload is not the agent's to send; nor the agent's
    // another agent's.
    let visitors =
        id_of(&visitor_upload(&app, &visitor.token, form("v.txt", b"v", "text/plain")).await);
    admin
        .call("POST", &path, Some(json!({"attachments": [visitors]})))
        .await
        .assert_error(400, "invalid-attachment");
    let team = admin.create_room(&[&ana]).await;
    let team = team["uuid"].as_str().unwrap();
    let anas = id_of(&agent_upload(&app, &ana, team, form("a.txt", b"a", "text/plain")).await);
    admin
        .call(
            "POST",
            &format!("/users/me/rooms/{team}/messages"),
            Some(json!({"attachments": [anas]})),
        )
        .await
        .assert_error(400, "invalid-attachment");
    // Nor an upload of another room.
    admin
        .call(
            "POST",
            &path,
            Some(json!({"content": "x", "attachments": [anas]})),
        )
        .await
        .assert_error(400, "invalid-attachment");
    admin
        .call("POST", &path, Some(json!({})))
        .await
        .assert_error(400, "invalid-data");

    let posted = admin
        .call("POST", &path, Some(json!({"attachments": [guide]})))
        .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(posted.body["content"], "");
    let shown = files_of(&app, &posted.body).await;
    assert_eq!(
        shown,
        [(
            "guide.pdf".to_string(),
            "application/pdf".to_string(),
            pdf.len() as u64
        )]
    );
    let heard = loop {
        let body = next_message(&mut stomp).await;
        if body["type"] == "message.created" && body["message"]["id"] == posted.body["uuid"] {
            break body;
        }
    };
    assert_eq!(files_of(&app, &heard["message"]).await, shown);
    assert_eq!(heard["message"]["alignment"], "LEFT");
    let link = heard["message"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();

    // Deleting the message deletes its files: the link is dead, the
    // history shows none.
    let deleted = admin
        .call(
            "DELETE",
            &format!("{path}/{}", posted.body["uuid"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.body);
    let (status, _, _) = fetch(&app, &link).await;
    assert_eq!(status, 404);
    let history = app.history(&visitor).await;
    let gone = history
        .iter()
        .find(|m| m["id"] == posted.body["uuid"])
        .unwrap();
    assert_eq!(gone["attachments"], json!([]));
    let listed = admin.messages(&room).await;
    let gone = listed
        .iter()
        .find(|m| m["uuid"] == posted.body["uuid"])
        .unwrap();
    assert_eq!(
        (gone["deleted"].clone(), gone["attachments"].clone()),
        (json!(true), json!([]))
    );
}
