//! Messages of agent rooms (agent-api.md, "Rooms"): listing and its
//! parameters, posting, editing and deleting one's own, reactions, and
//! search within a room and across the caller's rooms. Search must give the
//! same answers on SQLite and PostgreSQL: run this module on both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

/// Ana and Bob, and their room.
async fn pair(app: &TestApp) -> (AgentClient, AgentClient, String) {
    let admin = AgentClient::admin(app).await;
    let ana = admin.new_agent(app, "Ana").await;
    let bob = admin.new_agent(app, "Bob").await;
    let room = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    (ana, bob, room)
}

/// `GET /users/me/rooms/<room>/messages<query>`, asserted 200.
async fn listed(agent: &AgentClient, room: &str, query: &str) -> Value {
    let reply = agent
        .call(
            "GET",
            &format!("/users/me/rooms/{room}/messages{query}"),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.body
}

/// The `content` of each item of a page, in order.
fn contents(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

fn content_set(page: &Value) -> BTreeSet<String> {
    contents(page).into_iter().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn message_path(room: &str, message: &Value) -> String {
    format!(
        "/users/me/rooms/{room}/messages/{}",
        message["uuid"].as_str().unwrap()
    )
}

async fn react(agent: &AgentClient, room: &str, message: &Value, emoji: &str) -> Reply {
    agent
        .call(
            "POST",
            &format!("{}/reactions", message_path(room, message)),
            Some(json!({"emoji": emoji})),
        )
        .await
}

/// Percent-encodes every byte of `s` (a path segment).
fn encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn unreact(agent: &AgentClient, room: &str, message: &Value, emoji: &str) -> Reply {
    agent
        .call(
            "DELETE",
            &format!(
                "{}/reactions/{}",
                message_path(room, message),
                encode(emoji)
            ),
            None,
        )
        .await
}

/// The message as it is listed now.
async fn current(agent: &AgentClient, room: &str, message: &Value) -> Value {
    agent
        .messages(room)
        .await
        .into_iter()
        .find(|m| m["uuid"] == message["uuid"])
        .expect("message listed")
}

/// Cross-room search `GET /users/me/rooms/messages<query>`, asserted 200.
async fn searched(agent: &AgentClient, query: &str) -> Value {
    let reply = agent
        .call("GET", &format!("/users/me/rooms/messages{query}"), None)
        .await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_posted_message_has_the_wazo_shape() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;

    let reply = ana
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "Hello Bob", "alias": "Ana from sales"})),
        )
        .await;

    assert_eq!(reply.status, 201, "{}", reply.body);
    let m = &reply.body;
    assert!(uuid::Uuid::parse_str(m["uuid"].as_str().unwrap()).is_ok());
    assert_eq!(m["content"], "Hello Bob");
    assert_eq!(m["alias"], "Ana from sales");
    assert_eq!(m["user_uuid"], ana.uuid);
    assert_eq!(m["tenant_uuid"], ana.tenant);
    assert!(m["wazo_uuid"].as_str().is_some(), "{m}");
    assert!(m["created_at"].as_str().is_some(), "{m}");
    assert_eq!(m["room"], json!({"uuid": room}));
    assert_eq!(m["seq"], 1);
    assert_eq!(m["kind"], "agent");
    assert_eq!(m["state"], "DELIVERED", "agent rooms have no pending state");
    assert_eq!(m["read_at"], Value::Null);
    assert_eq!(m["edited_at"], Value::Null);
    assert_eq!(m["deleted"], false);
    assert_eq!(m["reactions"], json!([]));
    assert_eq!(
        &bob.messages(&room).await[0],
        m,
        "Bob reads what Ana got back"
    );

    // Without alias, the author's display name.
    let plain = bob.post(&room, "Hi Ana").await;
    assert_eq!(plain["alias"], "Bob");
    assert_eq!(plain["seq"], 2);
}

#[tokio::test]
async fn listing_pages_and_filters_by_direction_seq_and_date() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let mut posted = Vec::new();
    for (i, text) in ["m1", "m2", "m3", "m4", "m5"].iter().enumerate() {
        let author = if i % 2 == 0 { &ana } else { &bob };
        posted.push(author.post(&room, text).await);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }

    let all = listed(&ana, &room, "").await;
    assert_eq!(
        contents(&all),
        ["m5", "m4", "m3", "m2", "m1"],
        "newest first"
    );
    assert_eq!(all["total"], 5);
    assert_eq!(all["filtered"], 5);
    let seqs: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);

    let cases: [(&str, &[&str]); 12] = [
        ("?direction=asc", &["m1", "m2", "m3", "m4", "m5"]),
        ("?direction=desc", &["m5", "m4", "m3", "m2", "m1"]),
        ("?limit=2", &["m5", "m4"]),
        ("?limit=2&offset=2", &["m3", "m2"]),
        ("?limit=2&offset=4", &["m1"]),
        ("?offset=5", &[]),
        ("?direction=asc&limit=2&offset=1", &["m2", "m3"]),
        ("?before_seq=3", &["m2", "m1"]),
        ("?after_seq=3", &["m5", "m4"]),
        ("?after_seq=1&before_seq=4", &["m3", "m2"]),
        ("?direction=asc&after_seq=2&limit=2", &["m3", "m4"]),
        ("?before_seq=1", &[]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            contents(&listed(&ana, &room, query).await),
            expected,
            "{query}"
        );
    }
    let page = listed(&ana, &room, "?before_seq=3&limit=1").await;
    assert_eq!(
        page["filtered"], 2,
        "filtered counts the matches, not the page"
    );
    assert_eq!(page["total"], 5);

    // from_date: messages sent at or after that time.
    let m4_at = posted[3]["created_at"].as_str().unwrap();
    let since = listed(&ana, &room, &format!("?from_date={m4_at}&direction=asc")).await;
    assert_eq!(contents(&since), ["m4", "m5"]);
    let encoded = m4_at.replace(':', "%3A");
    let since = listed(&ana, &room, &format!("?from_date={encoded}")).await;
    assert_eq!(contents(&since), ["m5", "m4"]);

    for (query, field) in [
        ("?direction=sideways", "direction"),
        ("?limit=0", "limit"),
        ("?limit=ten", "limit"),
        ("?offset=-1", "offset"),
        ("?before_seq=x", "before_seq"),
        ("?from_date=yesterday", "from_date"),
    ] {
        let reply = ana
            .call(
                "GET",
                &format!("/users/me/rooms/{room}/messages{query}"),
                None,
            )
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{query}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn an_author_edits_and_deletes_own_messages_and_members_hear_of_it() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let message = ana.post(&room, "See you at 10").await;
    let mut bob_events = bob.events().await;
    let path = message_path(&room, &message);

    let edited = ana
        .call("PATCH", &path, Some(json!({"content": "See you at 11"})))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["content"], "See you at 11");
    assert!(
        edited.body["edited_at"].as_str().is_some(),
        "{}",
        edited.body
    );
    assert_eq!(edited.body["uuid"], message["uuid"]);
    assert_eq!(edited.body["seq"], message["seq"]);
    assert_eq!(edited.body["created_at"], message["created_at"]);
    let event = bob_events.event("chatd_user_room_message_updated").await;
    assert_eq!(event["uuid"], message["uuid"]);
    assert_eq!(event["content"], "See you at 11");
    assert_eq!(current(&bob, &room, &message).await, edited.body);

    let deleted = ana.call("DELETE", &path, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["content"], "");
    assert_eq!(deleted.body["deleted"], true);
    let event = bob_events.event("chatd_user_room_message_updated").await;
    assert_eq!(event["uuid"], message["uuid"]);
    assert_eq!(event["deleted"], true);
    assert_eq!(event["content"], "");
    let now = current(&bob, &room, &message).await;
    assert_eq!(now["deleted"], true);
    assert_eq!(now["content"], "", "the text is gone for everyone");

    // A deleted message stays deleted.
    ana.call("PATCH", &path, Some(json!({"content": "back"})))
        .await
        .assert_error(404, "unknown-message");
    ana.call("DELETE", &path, None)
        .await
        .assert_error(404, "unknown-message");
    let unknown = format!("/users/me/rooms/{room}/messages/{}", uuid::Uuid::new_v4());
    ana.call("PATCH", &unknown, Some(json!({"content": "x"})))
        .await
        .assert_error(404, "unknown-message");
    assert_eq!(current(&ana, &room, &message).await["content"], "");
}

#[tokio::test]
async fn content_must_have_1_to_4096_characters_and_not_be_blank() {
    let app = TestApp::spawn().await;
    let (ana, _bob, room) = pair(&app).await;
    let post = |body: Value| {
        let ana = ana.clone();
        let room = room.clone();
        async move {
            ana.call(
                "POST",
                &format!("/users/me/rooms/{room}/messages"),
                Some(body),
            )
            .await
        }
    };

    for body in [
        json!({"content": ""}),
        json!({"content": "   "}),
        json!({"content": "\n\t "}),
        json!({"content": "a".repeat(4097)}),
        json!({"content": "é".repeat(4097)}),
        json!({"content": null}),
        json!({"content": 5}),
        json!({}),
    ] {
        let reply = post(body.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("content").is_some(),
            "{}: {}",
            body.to_string().chars().take(40).collect::<String>(),
            reply.body
        );
    }
    assert!(ana.messages(&room).await.is_empty(), "nothing was stored");

    // The limit counts characters, not bytes.
    let longest = post(json!({"content": "é".repeat(4096)})).await;
    assert_eq!(longest.status, 201, "{}", longest.body);
    assert_eq!(
        longest.body["content"].as_str().unwrap().chars().count(),
        4096
    );
    let message = post(json!({"content": "keep me"})).await.body;

    // An edit follows the same rules and changes nothing when refused.
    let path = message_path(&room, &message);
    for content in [json!(""), json!("  "), json!("b".repeat(4097))] {
        ana.call("PATCH", &path, Some(json!({ "content": content })))
            .await
            .assert_error(400, "invalid-data");
    }
    let kept = current(&ana, &room, &message).await;
    assert_eq!(kept["content"], "keep me");
    assert_eq!(kept["edited_at"], Value::Null);
}

#[tokio::test]
async fn a_reaction_is_one_emoji_which_may_have_several_code_points() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let message = ana.post(&room, "We shipped!").await;

    for emoji in ["❤️", "👍🏽", "👨‍👩‍👧"] {
        let reply = react(&bob, &room, &message, emoji).await;
        assert_eq!(reply.status, 201, "{emoji}: {}", reply.body);
        assert_eq!(reply.body["emoji"], emoji);
        assert_eq!(reply.body["user_uuid"], bob.uuid);
    }
    for bad in ["abc", "", "👍👍", "❤️x", ":)", "1", " 👍"] {
        let reply = react(&bob, &room, &message, bad).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("emoji").is_some(),
            "{bad:?}: {}",
            reply.body
        );
    }
    let missing = bob
        .call(
            "POST",
            &format!("{}/reactions", message_path(&room, &message)),
            Some(json!({})),
        )
        .await;
    missing.assert_error(400, "invalid-data");

    let reactions = current(&ana, &room, &message).await["reactions"].clone();
    let listed: BTreeSet<(String, String)> = reactions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_string(),
                r["user_uuid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ["❤️", "👍🏽", "👨‍👩‍👧"]
        .iter()
        .map(|e| (e.to_string(), bob.uuid.clone()))
        .collect();
    assert_eq!(listed, expected, "{reactions}");
}

#[tokio::test]
async fn the_same_user_and_emoji_twice_is_409_and_others_may_add_theirs() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let message = ana.post(&room, "Lunch?").await;

    assert_eq!(react(&bob, &room, &message, "🍕").await.status, 201);
    react(&bob, &room, &message, "🍕")
        .await
        .assert_error(409, "reaction-already-exists");
    // The same emoji by someone else, and another emoji by the same user, are new.
    assert_eq!(react(&ana, &room, &message, "🍕").await.status, 201);
    assert_eq!(react(&bob, &room, &message, "🎉").await.status, 201);

    let reactions = current(&bob, &room, &message).await["reactions"].clone();
    assert_eq!(reactions.as_array().unwrap().len(), 3, "{reactions}");
}

#[tokio::test]
async fn a_heart_with_or_without_its_presentation_selector_is_one_reaction() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let message = ana.post(&room, "Thanks!").await;

    // Clients send "❤" (U+2764) or "❤️" (U+2764 U+FE0F) for the same heart.
    let plain = react(&bob, &room, &message, "\u{2764}").await;
    assert_eq!(plain.status, 201, "{}", plain.body);
    assert_eq!(
        plain.body["emoji"], "\u{2764}\u{fe0f}",
        "one spelling for all"
    );
    react(&bob, &room, &message, "\u{2764}\u{fe0f}")
        .await
        .assert_error(409, "reaction-already-exists");
    let reactions = current(&ana, &room, &message).await["reactions"].clone();
    assert_eq!(
        reactions,
        json!([{"emoji": "\u{2764}\u{fe0f}", "user_uuid": bob.uuid}])
    );

    // Removing it by either spelling removes it.
    let removed = unreact(&bob, &room, &message, "\u{2764}").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(current(&ana, &room, &message).await["reactions"], json!([]));
}

#[tokio::test]
async fn removing_a_reaction_by_its_percent_encoded_emoji_is_204_then_404() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let message = ana.post(&room, "Family dinner").await;
    for emoji in ["👨‍👩‍👧", "👍🏽"] {
        assert_eq!(react(&bob, &room, &message, emoji).await.status, 201);
    }
    assert_eq!(react(&ana, &room, &message, "👨‍👩‍👧").await.status, 201);

    let removed = unreact(&bob, &room, &message, "👨‍👩‍👧").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(removed.body, Value::Null);
    let again = unreact(&bob, &room, &message, "👨‍👩‍👧").await;
    assert_eq!(again.status, 404, "{}", again.body);
    // Never added: 404 as well.
    let never = unreact(&bob, &room, &message, "🎉").await;
    assert_eq!(never.status, 404, "{}", never.body);

    // Only Bob's family reaction went; Ana's and Bob's thumb stay.
    let reactions = current(&ana, &room, &message).await["reactions"].clone();
    let left: BTreeSet<(String, String)> = reactions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_string(),
                r["user_uuid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        left,
        BTreeSet::from([
            ("👍🏽".to_string(), bob.uuid.clone()),
            ("👨‍👩‍👧".to_string(), ana.uuid.clone()),
        ])
    );
    // And it can be added again.
    assert_eq!(react(&bob, &room, &message, "👨‍👩‍👧").await.status, 201);
}

const SEARCHABLE: [&str; 8] = [
    "café",
    "CAFÉ",
    "cafe",
    "coffee",
    "100% sure",
    "100 percent",
    "a_b",
    "axb",
];

#[tokio::test]
async fn search_in_a_room_ignores_case_and_accents_and_takes_wildcards_literally() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    for text in SEARCHABLE {
        bob.post(&room, text).await;
    }
    let search = |q: &'static str| {
        let ana = ana.clone();
        let room = room.clone();
        async move { listed(&ana, &room, &format!("?search={q}")).await }
    };

    let cafe = search("Cafe").await;
    assert_eq!(content_set(&cafe), set(&["café", "CAFÉ", "cafe"]));
    assert_eq!(cafe["filtered"], 3);
    assert_eq!(cafe["total"], 8);
    assert_eq!(
        content_set(&search("CAF%C3%89").await),
        set(&["café", "CAFÉ", "cafe"])
    );
    assert_eq!(content_set(&search("100%25").await), set(&["100% sure"]));
    assert_eq!(content_set(&search("a_b").await), set(&["a_b"]));
    assert_eq!(content_set(&search("a%5Fb").await), set(&["a_b"]));
    assert_eq!(
        content_set(&search("100").await),
        set(&["100% sure", "100 percent"])
    );
    // Words in order, anything between them.
    assert_eq!(content_set(&search("100+sure").await), set(&["100% sure"]));
    assert_eq!(content_set(&search("sure+100").await), set(&[]));
    assert_eq!(content_set(&search("tea").await), set(&[]));
    // Newest first like any listing, and pageable.
    let paged = listed(&ana, &room, "?search=cafe&limit=2&direction=asc").await;
    assert_eq!(contents(&paged), ["café", "CAFÉ"]);
    assert_eq!(paged["filtered"], 3);

    // A deleted message is not found any more.
    let gone = bob.post(&room, "café to delete").await;
    bob.call("DELETE", &message_path(&room, &gone), None).await;
    assert_eq!(
        content_set(&search("cafe").await),
        set(&["café", "CAFÉ", "cafe"])
    );
    // An edit is searched by its new text.
    let edited = bob.post(&room, "tea time").await;
    bob.call(
        "PATCH",
        &message_path(&room, &edited),
        Some(json!({"content": "Café time"})),
    )
    .await;
    assert_eq!(content_set(&search("tea").await), set(&[]));
    assert_eq!(content_set(&search("cafe+time").await), set(&["Café time"]));

    // A lone wildcard or the escape character itself is literal too.
    bob.post(&room, "C:\\temp").await;
    bob.post(&room, "C:temp").await;
    assert_eq!(content_set(&search("%25").await), set(&["100% sure"]));
    assert_eq!(content_set(&search("_").await), set(&["a_b"]));
    assert_eq!(content_set(&search("C:%5C").await), set(&["C:\\temp"]));
}

#[tokio::test]
async fn search_across_rooms_finds_matches_in_every_room_of_the_caller_only() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let admin = AgentClient::admin(&app).await;
    let carl = admin.new_agent(&app, "Carl").await;
    let other = ana.create_room(&[&carl]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = bob.create_room(&[&carl]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    for text in SEARCHABLE {
        bob.post(&room, text).await;
    }
    carl.post(&other, "Café au lait?").await;
    tokio::time::sleep(Duration::from_millis(15)).await;
    ana.post(&other, "no thanks").await;
    carl.post(&elsewhere, "cafe without Ana").await;

    let found = searched(&ana, "?search=Cafe").await;
    assert_eq!(
        content_set(&found),
        set(&["café", "CAFÉ", "cafe", "Café au lait?"])
    );
    assert_eq!(found["filtered"], 4);
    let rooms: BTreeSet<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["room"]["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, BTreeSet::from([room.as_str(), other.as_str()]));
    assert_eq!(
        content_set(&searched(&ana, "?search=100%25").await),
        set(&["100% sure"])
    );
    assert_eq!(
        content_set(&searched(&ana, "?search=a_b").await),
        set(&["a_b"])
    );
    assert_eq!(
        content_set(&searched(&bob, "?search=cafe").await),
        set(&["café", "CAFÉ", "cafe", "cafe without Ana"]),
        "Bob's rooms are his own"
    );

    // One message per room: the newest.
    let distinct = searched(&ana, "?distinct=room_uuid").await;
    assert_eq!(content_set(&distinct), set(&["axb", "no thanks"]));
    assert_eq!(distinct["filtered"], 2);
    // With a search: the newest match of each room.
    let newest_matches = searched(&ana, "?search=cafe&distinct=room_uuid").await;
    assert_eq!(
        content_set(&newest_matches),
        set(&["cafe", "Café au lait?"])
    );

    for query in ["", "?search=", "?search=%20%20", "?distinct=user_uuid"] {
        let reply = ana
            .call("GET", &format!("/users/me/rooms/messages{query}"), None)
            .await;
        reply.assert_error(400, "invalid-data");
    }
}

/// A reply reads its session and room together (one store read): every way
/// that read can come back empty is still its own refusal, and nothing is
/// stored by any of them.
#[tokio::test]
async fn posting_is_refused_for_a_bad_session_or_a_room_the_caller_is_not_in() {
    let app = TestApp::spawn().await;
    let (ana, bob, room) = pair(&app).await;
    let admin = AgentClient::admin(&app).await;
    let carl = admin.new_agent(&app, "Carl").await;
    let post = |room: &str| format!("/users/me/rooms/{room}/messages");
    let body = || Some(json!({"content": "not stored"}));

    // A forged token, and a logged-out one, with a room that exists: 401.
    let forged = ana
        .call_as("not-a-token", "POST", &post(&room), body())
        .await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    let gone = admin.new_agent(&app, "Gone").await;
    let ours = gone.create_room(&[&ana]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(gone.logout().await.status, 204);
    let logged_out = gone.call("POST", &post(&ours), body()).await;
    assert_eq!(logged_out.status, 401, "{}", logged_out.body);

    // A room of the tenant that the caller is not in, an unknown id and a
    // malformed one: 404 unknown-room.
    carl.call("POST", &post(&room), body())
        .await
        .assert_error(404, "unknown-room");
    carl.call("POST", &post(&uuid::Uuid::new_v4().to_string()), body())
        .await
        .assert_error(404, "unknown-room");
    carl.call("POST", &post("not-a-uuid"), body())
        .await
        .assert_error(404, "unknown-room");
    // A bad body is refused before the room is looked at, as before.
    carl.call("POST", &post(&room), Some(json!({"content": 5})))
        .await
        .assert_error(400, "invalid-data");

    // Nothing of the refused posts reached either room.
    assert_eq!(
        contents(&listed(&bob, &room, "").await),
        Vec::<String>::new()
    );
    assert_eq!(
        contents(&listed(&ana, &ours, "").await),
        Vec::<String>::new()
    );
    // And the members still post.
    let ok = bob
        .call("POST", &post(&room), Some(json!({"content": "hi"})))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}
