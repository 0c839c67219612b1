//! The `Store` contract, written once and run against every backend: each
//! case below is an async fn taking a fresh database, and `contract!` turns
//! it into `sqlite::<case>` and `postgres::<case>` tests. A backend is
//! correct when it passes all of them; nothing here knows which one it runs.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chatgate::domain::time::now_ms;
use chatgate::domain::{
    Agent, AgentId, Channel, ChannelId, ConversationId, DeliveryState, Message, MessageId,
    OriginPattern, Role, RoomState, SenderKind, SessionId, TenantId,
};
use chatgate::store::{self, Bootstrap, ConversationLookup, NewMessage, Store};
use tempfile::TempDir;
use tokio::sync::Barrier;

use crate::backends::PgSchema;

/// Concurrency cases fail after this instead of hanging on a deadlock.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// One empty database; `open` may be called several times to get separate
/// store handles on it, as separate instances (processes) would have.
struct Db {
    backend: Backend,
    url: String,
    /// Keeps the SQLite file alive for the test.
    _dir: Option<TempDir>,
    /// Drops the PostgreSQL schema when the test ends.
    _schema: Option<PgSchema>,
}

impl Db {
    async fn fresh(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = dir.path().join("chatgate.db").display().to_string();
                Db {
                    backend,
                    url,
                    _dir: Some(dir),
                    _schema: None,
                }
            }
            Backend::Postgres => {
                let schema = PgSchema::create().await;
                Db {
                    backend,
                    url: schema.url().to_string(),
                    _dir: None,
                    _schema: Some(schema),
                }
            }
        }
    }

    /// A new store handle, through the same dispatch the server uses.
    async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{:?} store opens: {e}", self.backend))
    }

    /// Adds a tenant row directly. The `Store` trait creates a tenant only
    /// through `bootstrap` (once), but tenant isolation needs a second one.
    async fn insert_tenant(&self, id: TenantId) {
        const SQL: &str = "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)";
        match self.backend {
            Backend::Sqlite => {
                use sqlx::Connection;
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.url))
                    .await
                    .unwrap();
                sqlx::query(SQL)
                    .bind(id.to_string())
                    .bind("Other")
                    .bind(now_ms())
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(SQL)
                    .bind(id.to_string())
                    .bind("Other")
                    .bind(now_ms())
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Expands each case into `sqlite::<case>` and `postgres::<case>`; cases
/// after `postgres_only:` need several instances on one database server.
macro_rules! contract {
    ($($case:ident),* $(,)? ; postgres_only: $($pg_case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Db::fresh(super::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Db::fresh(super::Backend::Postgres).await).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pg_case() {
                    super::$pg_case(super::Db::fresh(super::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

contract!(
    jwt_secret_keeps_the_first_value,
    concurrent_jwt_secret_calls_agree,
    bootstrap_creates_once,
    concurrent_bootstrap_creates_exactly_one,
    agent_by_email_ignores_case,
    set_password_replaces_the_hash,
    sessions_are_active_until_expired_or_revoked,
    channels_are_listed_per_tenant_and_update,
    conversation_exists_after_its_first_message,
    appends_assign_gapless_seq,
    repeated_client_message_id_returns_the_first_message,
    client_message_id_is_scoped_to_the_conversation,
    messages_after_pages_in_seq_order,
    history_returns_the_last_messages_oldest_first,
    concurrent_appends_are_gapless,
    concurrent_duplicates_store_one_message,
    interleaved_conversations_with_retries_stay_gapless,
    a_bad_message_among_concurrent_ones_fails_alone,
    member_rooms_page_by_state_newest_message_first,
    visitor_lookups_reach_only_their_channels_conversations,
    a_message_lands_only_in_a_room_of_its_kind_tenant_and_channel,
    delivered_marks_and_unread_counts_stay_in_their_tenant,
    unused_visitor_contexts_are_cleaned_and_used_ones_kept;
    postgres_only:
    concurrent_opens_migrate_once,
    fresh_schemas_are_isolated,
    concurrent_appends_from_two_instances_are_gapless,
    concurrent_duplicates_from_two_instances_store_one_message,
    interleaved_conversations_from_two_instances_stay_gapless,
);

// --- fixtures ----------------------------------------------------------------

fn first_start(email: &str) -> Bootstrap {
    let tenant_id = TenantId::new();
    Bootstrap {
        tenant_id,
        tenant_name: "Default".into(),
        admin: Agent {
            id: AgentId::new(),
            tenant_id,
            email: email.into(),
            display_name: "Admin".into(),
            avatar_url: None,
            role: Role::Admin,
            password_hash: "$argon2id$not-a-real-hash".into(),
            disabled: false,
        },
        channel: Channel {
            id: ChannelId::new(),
            tenant_id,
            name: "Demo".into(),
            image_url: None,
            allowed_origins: vec![],
            connected: true,
            created_at_ms: now_ms(),
            look: Default::default(),
            routing: Default::default(),
        },
    }
}

/// A bootstrapped store: one tenant, its admin and its channel.
async fn bootstrapped(db: &Db) -> (Arc<dyn Store>, Bootstrap) {
    let store = db.open().await;
    let first = first_start("admin@example.com");
    assert!(store.bootstrap(&first).await.unwrap());
    (store, first)
}

fn visitor_message(
    first: &Bootstrap,
    conversation: ConversationId,
    text: &str,
    key: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation_id: conversation,
        channel_id: Some(first.channel.id),
        tenant_id: first.tenant_id,
        sender_kind: SenderKind::Visitor,
        sender_id: conversation.0,
        sender_name: Some("Visitor".into()),
        sender_avatar: None,
        content: text.into(),
        state: DeliveryState::Delivered,
        sent_at_ms: now_ms(),
        client_message_id: key.map(str::to_string),
    }
}

/// Appends `texts` in order; returns the stored messages.
async fn append_all(
    store: &dyn Store,
    first: &Bootstrap,
    conversation: ConversationId,
    texts: &[&str],
) -> Vec<Message> {
    let mut out = Vec::new();
    for text in texts {
        let appended = store
            .append_message(visitor_message(first, conversation, text, None))
            .await
            .unwrap();
        assert!(appended.created);
        out.push(appended.message);
    }
    out
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

fn origin(raw: &str) -> OriginPattern {
    OriginPattern::parse(raw).unwrap()
}

// --- settings and first start ------------------------------------------------

async fn jwt_secret_keeps_the_first_value(db: Db) {
    let store = db.open().await;
    assert_eq!(
        store.jwt_secret("first-secret").await.unwrap(),
        "first-secret"
    );
    assert_eq!(
        store.jwt_secret("second-secret").await.unwrap(),
        "first-secret"
    );
    // Another instance (or a restart) agrees.
    let other = db.open().await;
    assert_eq!(
        other.jwt_secret("third-secret").await.unwrap(),
        "first-secret"
    );
}

async fn concurrent_jwt_secret_calls_agree(db: Db) {
    let stores = [db.open().await, db.open().await];
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = stores[i % 2].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.jwt_secret(&format!("candidate-{i}")).await.unwrap()
            })
        })
        .collect();
    let mut secrets = HashSet::new();
    for task in tasks {
        secrets.insert(task.await.unwrap());
    }
    assert_eq!(secrets.len(), 1, "callers disagree: {secrets:?}");
    let secret = secrets.into_iter().next().unwrap();
    assert!(secret.starts_with("candidate-"), "{secret}");
    assert_eq!(stores[0].jwt_secret("late").await.unwrap(), secret);
}

async fn bootstrap_creates_once(db: Db) {
    let store = db.open().await;
    let first = first_start("admin@example.com");
    assert!(store.bootstrap(&first).await.unwrap());
    let admin = store.agent_by_email("admin@example.com").await.unwrap();
    assert_eq!(admin.as_ref(), Some(&first.admin));
    assert_eq!(
        store.agent(first.tenant_id, first.admin.id).await.unwrap(),
        Some(first.admin.clone())
    );
    assert_eq!(
        store
            .channel(first.tenant_id, first.channel.id)
            .await
            .unwrap(),
        Some(first.channel.clone())
    );
    assert_eq!(
        store.channels(first.tenant_id).await.unwrap(),
        vec![first.channel.clone()]
    );

    let second = first_start("other@example.com");
    assert!(!store.bootstrap(&second).await.unwrap());
    // Nothing of the second attempt was stored.
    assert_eq!(
        store.agent_by_email("other@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .channel(second.tenant_id, second.channel.id)
            .await
            .unwrap(),
        None
    );
    assert!(store.channels(second.tenant_id).await.unwrap().is_empty());
    // Nor after a restart.
    assert!(!db.open().await.bootstrap(&second).await.unwrap());
}

async fn concurrent_bootstrap_creates_exactly_one(db: Db) {
    // Opened one after the other: instances may start together, but an SQLite
    // file is migrated by the first process that opens it.
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(db.open().await);
    }
    let barrier = Arc::new(Barrier::new(stores.len()));
    let tasks: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, store)| {
            let store = store.clone();
            let barrier = barrier.clone();
            let first = first_start(&format!("admin{i}@example.com"));
            tokio::spawn(async move {
                barrier.wait().await;
                let created = store.bootstrap(&first).await.unwrap();
                (created, first)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        let (created, first) = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("bootstrap finishes")
            .unwrap();
        if created {
            winners.push(first);
        } else {
            losers.push(first);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one start bootstraps");
    let store = &stores[0];
    let winner = &winners[0];
    assert_eq!(
        store.agent_by_email(&winner.admin.email).await.unwrap(),
        Some(winner.admin.clone())
    );
    assert_eq!(
        store.channels(winner.tenant_id).await.unwrap(),
        vec![winner.channel.clone()]
    );
    for loser in &losers {
        assert_eq!(
            store.agent_by_email(&loser.admin.email).await.unwrap(),
            None
        );
        assert!(store.channels(loser.tenant_id).await.unwrap().is_empty());
    }
}

// --- agents and sessions ----------------------------------------------------

async fn agent_by_email_ignores_case(db: Db) {
    let store = db.open().await;
    let first = first_start("Admin@Example.COM");
    assert!(store.bootstrap(&first).await.unwrap());
    for email in [
        "admin@example.com",
        "ADMIN@EXAMPLE.COM",
        "Admin@Example.COM",
    ] {
        assert_eq!(
            store.agent_by_email(email).await.unwrap(),
            Some(first.admin.clone()),
            "{email}"
        );
    }
    assert_eq!(
        store.agent_by_email("nobody@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        store.agent(first.tenant_id, AgentId::new()).await.unwrap(),
        None
    );
}

async fn set_password_replaces_the_hash(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let session = SessionId::new();
    store
        .create_session(session, first.admin.id, now_ms() + 60_000)
        .await
        .unwrap();
    let changed = store
        .set_password("ADMIN@example.com", "$argon2id$new")
        .await
        .unwrap()
        .expect("the agent");
    assert_eq!(changed.id, first.admin.id);
    assert_eq!(
        store.session_agent(session, now_ms()).await.unwrap(),
        None,
        "a new password revokes every session"
    );
    let admin = store
        .agent(first.tenant_id, first.admin.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.password_hash, "$argon2id$new");
    assert!(store
        .set_password("nobody@example.com", "$argon2id$x")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .agent(first.tenant_id, first.admin.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "$argon2id$new"
    );
}

async fn sessions_are_active_until_expired_or_revoked(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let now = now_ms();
    let session = SessionId::new();
    store
        .create_session(session, first.admin.id, now + 60_000)
        .await
        .unwrap();
    assert!(store.session_agent(session, now).await.unwrap().is_some());
    assert!(store
        .session_agent(session, now + 59_999)
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .session_agent(session, now + 60_000)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );

    let expired = SessionId::new();
    store
        .create_session(expired, first.admin.id, now - 1)
        .await
        .unwrap();
    assert!(store.session_agent(expired, now).await.unwrap().is_none());

    assert!(store
        .session_agent(SessionId::new(), now)
        .await
        .unwrap()
        .is_none());

    assert!(store.revoke_session(session).await.unwrap());
    assert!(store.session_agent(session, now).await.unwrap().is_none());
    assert!(
        !store.revoke_session(session).await.unwrap(),
        "second revoke"
    );
    assert!(!store.revoke_session(SessionId::new()).await.unwrap());
}

// --- channels ----------------------------------------------------------------

async fn channels_are_listed_per_tenant_and_update(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let mut shop = Channel {
        id: ChannelId::new(),
        tenant_id: first.tenant_id,
        name: "Shop".into(),
        image_url: Some("https://shop.example.com/logo.png".into()),
        allowed_origins: vec![
            origin("https://shop.example.com"),
            origin("https://*.example.org:8443"),
        ],
        connected: true,
        created_at_ms: first.channel.created_at_ms + 1,
        look: Default::default(),
        routing: Default::default(),
    };
    store.insert_channel(&shop).await.unwrap();
    assert_eq!(
        store.channel(first.tenant_id, shop.id).await.unwrap(),
        Some(shop.clone())
    );

    let other_tenant = TenantId::new();
    db.insert_tenant(other_tenant).await;
    let foreign = Channel {
        id: ChannelId::new(),
        tenant_id: other_tenant,
        name: "Foreign".into(),
        image_url: None,
        allowed_origins: vec![],
        connected: true,
        created_at_ms: now_ms(),
        look: Default::default(),
        routing: Default::default(),
    };
    store.insert_channel(&foreign).await.unwrap();

    assert_eq!(
        store.channels(first.tenant_id).await.unwrap(),
        vec![first.channel.clone(), shop.clone()],
        "own channels, oldest first, no other tenant's"
    );
    assert_eq!(
        store.channels(other_tenant).await.unwrap(),
        vec![foreign.clone()]
    );
    assert!(store.channels(TenantId::new()).await.unwrap().is_empty());
    assert_eq!(
        store
            .channel(first.tenant_id, ChannelId::new())
            .await
            .unwrap(),
        None
    );

    shop.name = "Shop (renamed)".into();
    shop.image_url = None;
    shop.allowed_origins = vec![origin("http://localhost:3000")];
    shop.connected = false;
    store.update_channel(&shop).await.unwrap();
    assert_eq!(
        store.channel(first.tenant_id, shop.id).await.unwrap(),
        Some(shop.clone())
    );
    // The update touched only that channel.
    assert_eq!(
        store
            .channel(first.tenant_id, first.channel.id)
            .await
            .unwrap(),
        Some(first.channel.clone())
    );
    assert_eq!(
        store.channel(other_tenant, foreign.id).await.unwrap(),
        Some(foreign.clone())
    );
    // Another tenant's channel is not found by id, except at the visitor
    // door, where the channel id is all a visitor knows.
    assert_eq!(
        store.channel(first.tenant_id, foreign.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.public_channel(foreign.id).await.unwrap(),
        Some(foreign)
    );
}

// --- conversations and messages --------------------------------------------

async fn conversation_exists_after_its_first_message(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    assert_eq!(
        store
            .conversation(first.channel.scope(), conversation)
            .await
            .unwrap(),
        ConversationLookup::Free
    );

    let new = visitor_message(&first, conversation, "hello", None);
    let sent_at = new.sent_at_ms;
    store.append_message(new).await.unwrap();
    let stored = store
        .conversation(first.channel.scope(), conversation)
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(stored.id, conversation);
    assert_eq!(stored.channel_id, first.channel.id);
    assert_eq!(stored.tenant_id, first.tenant_id);
    assert_eq!(stored.created_at_ms, sent_at);
    assert_eq!(stored.last_seq, 1);

    append_all(store.as_ref(), &first, conversation, &["again"]).await;
    let stored = store
        .conversation(first.channel.scope(), conversation)
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(stored.last_seq, 2);
    assert_eq!(
        stored.created_at_ms, sent_at,
        "created_at is the first message's"
    );
}

async fn appends_assign_gapless_seq(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let appended = append_all(
        store.as_ref(),
        &first,
        conversation,
        &["one", "two", "three", "four", "five"],
    )
    .await;
    assert_eq!(seqs(&appended), [1, 2, 3, 4, 5]);
    // What append returned is exactly what was stored.
    let stored = store
        .messages_after(first.channel.scope(), conversation, 0, 100)
        .await
        .unwrap();
    assert_eq!(stored, appended);
    // Another conversation counts from 1 on its own.
    let other = append_all(store.as_ref(), &first, ConversationId::new(), &["x", "y"]).await;
    assert_eq!(seqs(&other), [1, 2]);
}

async fn repeated_client_message_id_returns_the_first_message(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let original = store
        .append_message(visitor_message(
            &first,
            conversation,
            "hello",
            Some("key-1"),
        ))
        .await
        .unwrap();
    assert!(original.created);
    assert_eq!(original.message.seq, 1);
    assert_eq!(original.message.client_message_id.as_deref(), Some("key-1"));

    // A retry: new message id and even different text, same key.
    let retry = store
        .append_message(visitor_message(
            &first,
            conversation,
            "hello (retry)",
            Some("key-1"),
        ))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.message, original.message);

    // The retry used no seq: the next message is 2, and only two are stored.
    assert_eq!(
        store
            .conversation(first.channel.scope(), conversation)
            .await
            .unwrap()
            .found()
            .unwrap()
            .last_seq,
        1
    );
    let next = store
        .append_message(visitor_message(&first, conversation, "next", Some("key-2")))
        .await
        .unwrap();
    assert!(next.created);
    assert_eq!(next.message.seq, 2);
    let stored = store
        .messages_after(first.channel.scope(), conversation, 0, 100)
        .await
        .unwrap();
    assert_eq!(stored, vec![original.message, next.message]);
}

async fn client_message_id_is_scoped_to_the_conversation(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let a = ConversationId::new();
    let b = ConversationId::new();
    let in_a = store
        .append_message(visitor_message(&first, a, "in a", Some("same-key")))
        .await
        .unwrap();
    let in_b = store
        .append_message(visitor_message(&first, b, "in b", Some("same-key")))
        .await
        .unwrap();
    assert!(in_a.created && in_b.created);
    assert_ne!(in_a.message.id, in_b.message.id);
    assert_eq!(in_b.message.conversation_id, b);
    assert_eq!(in_b.message.seq, 1);
    assert_eq!(in_b.message.content, "in b");
    // Messages without a key never collide.
    let unkeyed = append_all(store.as_ref(), &first, a, &["x", "y"]).await;
    assert_eq!(seqs(&unkeyed), [2, 3]);
}

async fn messages_after_pages_in_seq_order(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let all = append_all(
        store.as_ref(),
        &first,
        conversation,
        &["1", "2", "3", "4", "5"],
    )
    .await;
    // Another conversation's messages interleaved in time must not show up.
    append_all(
        store.as_ref(),
        &first,
        ConversationId::new(),
        &["elsewhere"],
    )
    .await;

    let scope = first.channel.scope();
    let page = |after, limit| {
        let store = store.clone();
        async move {
            store
                .messages_after(scope, conversation, after, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(page(0, 2).await, all[0..2]);
    assert_eq!(page(2, 2).await, all[2..4]);
    assert_eq!(page(4, 2).await, all[4..5]);
    assert!(page(5, 2).await.is_empty());
    assert_eq!(page(0, 100).await, all);
    assert_eq!(page(3, 100).await, all[3..]);
    assert!(store
        .messages_after(first.channel.scope(), ConversationId::new(), 0, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn history_returns_the_last_messages_oldest_first(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let all = append_all(
        store.as_ref(),
        &first,
        conversation,
        &["1", "2", "3", "4", "5"],
    )
    .await;
    append_all(
        store.as_ref(),
        &first,
        ConversationId::new(),
        &["elsewhere"],
    )
    .await;
    assert_eq!(
        store
            .history(first.channel.scope(), conversation, 3)
            .await
            .unwrap(),
        all[2..]
    );
    assert_eq!(
        store
            .history(first.channel.scope(), conversation, 1)
            .await
            .unwrap(),
        all[4..]
    );
    assert_eq!(
        store
            .history(first.channel.scope(), conversation, 100)
            .await
            .unwrap(),
        all
    );
    assert!(store
        .history(first.channel.scope(), ConversationId::new(), 10)
        .await
        .unwrap()
        .is_empty());
}

// --- concurrency -------------------------------------------------------------

const TASKS: usize = 8;
const APPENDS_PER_TASK: usize = 25;

async fn concurrent_appends_are_gapless(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    concurrent_appends(vec![store], first).await;
}

async fn concurrent_appends_from_two_instances_are_gapless(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let second = db.open().await;
    concurrent_appends(vec![store, second], first).await;
}

/// `TASKS` writers, spread over `stores`, each appending `APPENDS_PER_TASK`
/// messages to one new conversation at once: seqs are exactly 1..=N, each
/// message stored once, no errors.
async fn concurrent_appends(stores: Vec<Arc<dyn Store>>, first: Bootstrap) {
    let conversation = ConversationId::new();
    let first = Arc::new(first);
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            let first = first.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut appended = Vec::new();
                for i in 0..APPENDS_PER_TASK {
                    let new = visitor_message(&first, conversation, &format!("{t}-{i}"), None);
                    let result = store.append_message(new).await.unwrap();
                    assert!(result.created);
                    appended.push(result.message);
                }
                appended
            })
        })
        .collect();
    let mut appended = Vec::new();
    for task in tasks {
        let mine = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("appends finish (no deadlock)")
            .unwrap();
        // Each writer's own messages are in the order it sent them.
        assert!(
            mine.windows(2).all(|w| w[0].seq < w[1].seq),
            "{:?}",
            seqs(&mine)
        );
        appended.extend(mine);
    }
    let total = TASKS * APPENDS_PER_TASK;
    let mut assigned = seqs(&appended);
    assigned.sort_unstable();
    assert_eq!(assigned, (1..=total as i64).collect::<Vec<_>>());

    let stored = stores[0]
        .messages_after(first.channel.scope(), conversation, 0, total as u32 + 10)
        .await
        .unwrap();
    assert_eq!(seqs(&stored), (1..=total as i64).collect::<Vec<_>>());
    appended.sort_by_key(|m| m.seq);
    assert_eq!(stored, appended, "every message stored once, as returned");
    assert_no_fallbacks(&stores);
    assert_eq!(
        stores[0]
            .conversation(first.channel.scope(), conversation)
            .await
            .unwrap()
            .found()
            .unwrap()
            .last_seq,
        total as i64
    );
}

async fn concurrent_duplicates_store_one_message(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    concurrent_duplicates(vec![store], first).await;
}

async fn concurrent_duplicates_from_two_instances_store_one_message(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let second = db.open().await;
    concurrent_duplicates(vec![store, second], first).await;
}

/// `TASKS` writers send the same `client_message_id` at once to a new
/// conversation: one message is stored and every writer gets it back.
async fn concurrent_duplicates(stores: Vec<Arc<dyn Store>>, first: Bootstrap) {
    let conversation = ConversationId::new();
    let first = Arc::new(first);
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            let first = first.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let new = visitor_message(&first, conversation, &format!("try {t}"), Some("dup"));
                barrier.wait().await;
                store.append_message(new).await.unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("appends finish (no deadlock)")
                .unwrap(),
        );
    }
    let created: Vec<_> = results.iter().filter(|r| r.created).collect();
    assert_eq!(created.len(), 1, "exactly one writer stores the message");
    let message = &created[0].message;
    assert_eq!(message.seq, 1);
    for result in &results {
        assert_eq!(&result.message, message);
    }
    let stored = stores[0]
        .messages_after(first.channel.scope(), conversation, 0, 100)
        .await
        .unwrap();
    assert_eq!(stored, vec![message.clone()]);
    assert_no_fallbacks(&stores);
    assert_eq!(
        stores[0]
            .conversation(first.channel.scope(), conversation)
            .await
            .unwrap()
            .found()
            .unwrap()
            .last_seq,
        1,
        "duplicates used no seq"
    );
}

async fn interleaved_conversations_with_retries_stay_gapless(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    interleaved_conversations(vec![store], first).await;
}

async fn interleaved_conversations_from_two_instances_stay_gapless(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let second = db.open().await;
    interleaved_conversations(vec![store, second], first).await;
}

/// Many writers at once over a few conversations (so group commits mix
/// conversations, and instances lock them in opposite arrival orders), each
/// message sent twice with its key: every conversation ends with seqs
/// 1..=N, each message stored once, and both attempts return it.
async fn interleaved_conversations(stores: Vec<Arc<dyn Store>>, first: Bootstrap) {
    const CONVERSATIONS: usize = 5;
    const PER_TASK: usize = 10;
    let conversations: Vec<ConversationId> =
        (0..CONVERSATIONS).map(|_| ConversationId::new()).collect();
    let first = Arc::new(first);
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            let first = first.clone();
            let barrier = barrier.clone();
            let conversations = conversations.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut out = Vec::new();
                for i in 0..PER_TASK {
                    // Odd tasks walk the conversations backwards.
                    let c = if t % 2 == 0 { i } else { PER_TASK - 1 - i } % CONVERSATIONS;
                    let key = format!("k-{t}-{i}");
                    let new = visitor_message(&first, conversations[c], &key, Some(&key));
                    let (a, b) = tokio::join!(
                        store.append_message(new.clone()),
                        store.append_message(NewMessage {
                            id: MessageId::new(),
                            ..new
                        })
                    );
                    let (a, b) = (a.unwrap(), b.unwrap());
                    assert_eq!(a.message, b.message, "both attempts get the one message");
                    assert!(a.created != b.created, "exactly one attempt stores it");
                    out.push(a.message);
                }
                out
            })
        })
        .collect();
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("appends finish (no deadlock)")
                .unwrap(),
        );
    }
    for conversation in conversations {
        let mut mine: Vec<Message> = appended
            .iter()
            .filter(|m| m.conversation_id == conversation)
            .cloned()
            .collect();
        mine.sort_by_key(|m| m.seq);
        let n = mine.len() as i64;
        assert_eq!(seqs(&mine), (1..=n).collect::<Vec<_>>());
        let stored = stores[0]
            .messages_after(first.channel.scope(), conversation, 0, 1000)
            .await
            .unwrap();
        assert_eq!(stored, mine);
        let last = stores[0]
            .conversation(first.channel.scope(), conversation)
            .await
            .unwrap()
            .found()
            .unwrap();
        assert_eq!(last.last_seq, n, "retries used no seq");
    }
    assert_no_fallbacks(&stores);
}

/// Group commits stored their batches whole: a batch statement that the
/// database refuses would otherwise hide behind the one-by-one fallback.
fn assert_no_fallbacks(stores: &[Arc<dyn Store>]) {
    for store in stores {
        assert_eq!(
            store.batch_fallbacks(),
            0,
            "a batch fell back to one by one"
        );
    }
}

/// A message the database refuses (its channel does not exist), sent
/// together with good ones: it alone fails; the others are stored.
async fn a_bad_message_among_concurrent_ones_fails_alone(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let good_conversation = ConversationId::new();
    let bad = NewMessage {
        channel_id: Some(ChannelId::new()),
        ..visitor_message(&first, ConversationId::new(), "orphan", None)
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let writer = store.clone();
        let new = visitor_message(&first, good_conversation, &format!("m{i}"), None);
        tasks.push(tokio::spawn(
            async move { writer.append_message(new).await },
        ));
        if i == 10 {
            let store = store.clone();
            let bad = bad.clone();
            tasks.push(tokio::spawn(async move { store.append_message(bad).await }));
        }
    }
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(appended) => assert_eq!(appended.message.conversation_id, good_conversation),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 1, "only the bad message fails");
    assert!(
        store.batch_fallbacks() <= 1,
        "only the bad message's batch fell back"
    );
    let stored = store
        .messages_after(first.channel.scope(), good_conversation, 0, 100)
        .await
        .unwrap();
    assert_eq!(seqs(&stored), (1..=20).collect::<Vec<_>>());
    assert!(store
        .conversation(first.channel.scope(), bad.conversation_id)
        .await
        .unwrap()
        .found()
        .is_none());
}

// --- scopes --------------------------------------------------------------------

/// One bootstrapped store with: a visitor conversation on the first
/// tenant's channel, an agent room of that tenant, a second channel of the
/// tenant, and another tenant with a channel.
struct Scopes {
    store: Arc<dyn Store>,
    first: Bootstrap,
    conversation: ConversationId,
    agent_room: ConversationId,
    other_channel: Channel,
    other_tenant_channel: Channel,
}

async fn scopes(db: &Db) -> Scopes {
    let (store, first) = bootstrapped(db).await;
    let conversation = ConversationId::new();
    append_all(store.as_ref(), &first, conversation, &["hi", "there"]).await;
    let agent_room = chatgate::domain::Room {
        id: ConversationId::new(),
        tenant_id: first.tenant_id,
        kind: chatgate::domain::RoomKind::Agent,
        channel_id: None,
        name: Some("team".into()),
        state: RoomState::Open,
        assignee: None,
        created_at_ms: now_ms(),
        queued_at_ms: None,
        last_seq: 0,
        members: vec![chatgate::domain::Member {
            id: first.admin.id.0,
            kind: chatgate::domain::RoomKind::Agent,
        }],
    };
    store.create_agent_room(&agent_room).await.unwrap();
    let agent_room = agent_room.id;
    let mut agent_message = visitor_message(&first, agent_room, "team secret", None);
    agent_message.channel_id = None;
    agent_message.sender_kind = SenderKind::Agent;
    agent_message.sender_id = first.admin.id.0;
    store.append_message(agent_message).await.unwrap();
    let other_channel = Channel {
        id: ChannelId::new(),
        name: "Second".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&other_channel).await.unwrap();
    let other_tenant = TenantId::new();
    db.insert_tenant(other_tenant).await;
    let other_tenant_channel = Channel {
        id: ChannelId::new(),
        tenant_id: other_tenant,
        name: "Foreign".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&other_tenant_channel).await.unwrap();
    Scopes {
        store,
        first,
        conversation,
        agent_room,
        other_channel,
        other_tenant_channel,
    }
}

async fn visitor_lookups_reach_only_their_channels_conversations(db: Db) {
    let s = scopes(&db).await;
    let own = s.first.channel.scope();
    let elsewhere = [s.other_channel.scope(), s.other_tenant_channel.scope()];
    assert!(matches!(
        s.store.conversation(own, s.conversation).await.unwrap(),
        ConversationLookup::Found(c) if c.last_seq == 2
    ));
    assert_eq!(
        s.store
            .history(own, s.conversation, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    // The agent room is no visitor conversation of any channel, and the
    // conversation is not reachable from another channel or tenant.
    let unreachable = [own, elsewhere[0], elsewhere[1]]
        .map(|scope| (scope, s.agent_room))
        .into_iter()
        .chain(elsewhere.map(|scope| (scope, s.conversation)));
    for (scope, room) in unreachable {
        assert_eq!(
            s.store.conversation(scope, room).await.unwrap(),
            ConversationLookup::Elsewhere
        );
        assert!(s.store.history(scope, room, 10).await.unwrap().is_empty());
        assert!(s
            .store
            .messages_after(scope, room, 0, 10)
            .await
            .unwrap()
            .is_empty());
    }
    assert_eq!(
        s.store
            .conversation(own, ConversationId::new())
            .await
            .unwrap(),
        ConversationLookup::Free
    );
}

async fn a_message_lands_only_in_a_room_of_its_kind_tenant_and_channel(db: Db) {
    let s = scopes(&db).await;
    let wrong = |conversation, channel: &Channel| NewMessage {
        channel_id: Some(channel.id),
        tenant_id: channel.tenant_id,
        ..visitor_message(&s.first, conversation, "intruder", None)
    };
    let attempts = [
        // A visitor message into an agent room.
        wrong(s.agent_room, &s.first.channel),
        // Into the conversation, from another channel and another tenant.
        wrong(s.conversation, &s.other_channel),
        wrong(s.conversation, &s.other_tenant_channel),
    ];
    for attempt in attempts {
        let err = s.store.append_message(attempt).await.unwrap_err();
        assert!(
            matches!(err, chatgate::store::StoreError::WrongRoom),
            "refused as the wrong room: {err}"
        );
    }
    // An agent-room message into the visitor conversation.
    let mut team = visitor_message(&s.first, s.conversation, "team", None);
    team.channel_id = None;
    assert!(matches!(
        s.store.append_message(team).await.unwrap_err(),
        chatgate::store::StoreError::WrongRoom
    ));
    // Nothing changed: the rooms hold what they held.
    let own = s.first.channel.scope();
    let texts: Vec<String> = s
        .store
        .history(own, s.conversation, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["hi", "there"]);
    let room = s
        .store
        .room(s.first.tenant_id, s.agent_room)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(room.last_seq, 1);
}

async fn delivered_marks_and_unread_counts_stay_in_their_tenant(db: Db) {
    let s = scopes(&db).await;
    let mut reply = visitor_message(&s.first, s.conversation, "an agent's reply", None);
    reply.sender_kind = SenderKind::Agent;
    reply.sender_id = s.first.admin.id.0;
    reply.state = DeliveryState::Pending;
    let reply = s.store.append_message(reply).await.unwrap().message;
    let other = s.other_tenant_channel.tenant_id;
    assert_eq!(s.store.mark_delivered(other, reply.id).await.unwrap(), None);
    let marked = s
        .store
        .mark_delivered(s.first.tenant_id, reply.id)
        .await
        .unwrap()
        .expect("marked in its own tenant");
    assert_eq!(marked.state, DeliveryState::Delivered);

    let admin = s.first.admin.id.0;
    assert_eq!(
        s.store
            .unread_count(s.first.tenant_id, s.agent_room, admin)
            .await
            .unwrap(),
        0,
        "its own message is not unread"
    );
    let mut colleague = visitor_message(&s.first, s.agent_room, "from a colleague", None);
    colleague.channel_id = None;
    colleague.sender_kind = SenderKind::Agent;
    colleague.sender_id = uuid::Uuid::new_v4();
    s.store.append_message(colleague).await.unwrap();
    assert_eq!(
        s.store
            .unread_count(s.first.tenant_id, s.agent_room, admin)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.store
            .unread_count(other, s.agent_room, admin)
            .await
            .unwrap(),
        0
    );
}

async fn unused_visitor_contexts_are_cleaned_and_used_ones_kept(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let context = chatgate::domain::VisitorContext {
        name: Some("Ana".into()),
        ..Default::default()
    };
    let (unused, recent, used) = (
        ConversationId::new(),
        ConversationId::new(),
        ConversationId::new(),
    );
    append_all(store.as_ref(), &first, used, &["hello"]).await;
    for (conversation, at) in [(unused, 1_000), (used, 1_000), (recent, 5_000)] {
        store
            .save_visitor_context(first.tenant_id, conversation, &context, at)
            .await
            .unwrap();
    }
    assert_eq!(
        store.delete_unused_visitor_contexts(2_000).await.unwrap(),
        1
    );
    let kept = |c| {
        let store = store.clone();
        async move {
            store
                .visitor_context(first.tenant_id, c)
                .await
                .unwrap()
                .is_some()
        }
    };
    assert!(!kept(unused).await);
    assert!(kept(recent).await, "younger than the cut-off");
    assert!(kept(used).await, "its conversation began");
}

// --- PostgreSQL deployment ---------------------------------------------------

/// Instances started together on an empty database all come up: sqlx's
/// migrator serializes them with an advisory lock and applies each
/// migration once.
/// An agent's rooms filtered by state page exactly (the console's closed
/// list), newest message first, and a new message moves its room up.
async fn member_rooms_page_by_state_newest_message_first(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let admin = first.admin.id;
    let base = now_ms() - 1_000_000;
    let mut rooms = Vec::new();
    for k in 0..7 {
        let room = ConversationId::new();
        let mut new = visitor_message(&first, room, &format!("hello {k}"), None);
        new.sent_at_ms = base + k * 1000;
        store.append_message(new).await.unwrap();
        let answered = store.answer(tenant, room, admin, base + k * 1000 + 1).await;
        assert!(matches!(answered.unwrap(), store::Answered::Won(_)));
        // Rooms 0..5 closed, 5 and 6 open.
        if k < 5 {
            store
                .set_room_state(tenant, room, None, RoomState::Closed, base + k * 1000 + 2)
                .await
                .unwrap()
                .unwrap();
        }
        rooms.push(room);
    }
    let page = |state: Option<RoomState>, limit: u32, offset: u32| {
        let store = store.clone();
        async move {
            let page = store
                .member_rooms(tenant, admin.0, &[], state, limit, offset)
                .await
                .unwrap();
            let ids: Vec<ConversationId> = page.items.iter().map(|s| s.room.id).collect();
            (ids, page.filtered, page.total)
        }
    };
    let closed = Some(RoomState::Closed);
    assert_eq!(page(closed, 2, 0).await, (vec![rooms[4], rooms[3]], 5, 7));
    assert_eq!(page(closed, 2, 2).await, (vec![rooms[2], rooms[1]], 5, 7));
    assert_eq!(page(closed, 2, 4).await, (vec![rooms[0]], 5, 7));
    assert_eq!(page(closed, 2, 6).await, (vec![], 5, 7), "past the end");
    let open = Some(RoomState::Open);
    assert_eq!(page(open, 10, 0).await, (vec![rooms[6], rooms[5]], 2, 7));
    let (all, filtered, total) = page(None, 10, 0).await;
    assert_eq!((all.len(), filtered, total), (7, 7, 7));
    assert_eq!(all[0], rooms[6]);

    // A new message in the oldest closed room puts it first, with its
    // newest message; a repeated one (same client id) changes nothing.
    let mut new = visitor_message(&first, rooms[0], "back again", Some("again"));
    new.sent_at_ms = base + 100_000;
    store.append_message(new.clone()).await.unwrap();
    assert_eq!(page(closed, 1, 0).await, (vec![rooms[0]], 5, 7));
    let newest = store
        .member_rooms(tenant, admin.0, &[], closed, 1, 0)
        .await
        .unwrap();
    assert_eq!(
        newest.items[0]
            .last_message
            .as_ref()
            .map(|m| m.content.as_str()),
        Some("back again")
    );
    let mut repeated = new;
    repeated.id = MessageId::new();
    repeated.sent_at_ms = base + 200_000;
    assert!(!store.append_message(repeated).await.unwrap().created);
    let mut later = visitor_message(&first, rooms[1], "later", None);
    later.sent_at_ms = base + 150_000;
    store.append_message(later).await.unwrap();
    assert_eq!(
        page(closed, 2, 0).await,
        (vec![rooms[1], rooms[0]], 5, 7),
        "the repeated message did not move room 0 up"
    );
}

async fn concurrent_opens_migrate_once(db: Db) {
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        let store = tokio::time::timeout(DEADLINE, open)
            .await
            .expect("opens finish")
            .unwrap()
            .unwrap_or_else(|e| panic!("concurrent open failed: {e}"));
        stores.push(store);
    }
    for store in &stores {
        store.ping().await.unwrap();
    }
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied.first(), Some(&(1, true)));
    let versions: HashSet<_> = applied.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions.len(),
        applied.len(),
        "each migration recorded once"
    );
    conn.close().await.unwrap();
}

/// `PgSchema` really gives each test its own schema (sqlx sends
/// the URL's `options` to the server), so parallel tests cannot interfere.
async fn fresh_schemas_are_isolated(db: Db) {
    let (store, _) = bootstrapped(&db).await;
    store.jwt_secret("one").await.unwrap();

    let other = Db::fresh(Backend::Postgres).await;
    let other_store = other.open().await;
    assert!(other_store
        .bootstrap(&first_start("admin@example.com"))
        .await
        .unwrap());
    assert_eq!(other_store.jwt_secret("two").await.unwrap(), "two");

    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(schema.starts_with("chatgate_t_"), "{schema}");
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name IN ('settings', 'tenants', 'messages')",
    )
    .bind(&schema)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 3, "the migrations created the tables in {schema}");
    conn.close().await.unwrap();
}
