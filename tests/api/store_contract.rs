//! The `Store` contract, written once and run against every backend: each
//! case below is an async fn taking a fresh database, and `contract!` turns
//! it into `sqlite::<case>` and `postgres::<case>` tests. A backend is
//! correct when it passes all of them; nothing here knows which one it runs.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chatgate::domain::time::now_ms;
use chatgate::domain::{
    Agent, AgentId, AgentPresence, Channel, ChannelId, ConversationId, DeliveryState, Message,
    MessageId, Notice, OriginPattern, PresenceState, QuickReply, Reaction, Role, RoomState,
    SenderKind, SessionId, TenantId, VisitorContext,
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

impl Db {
    /// Runs SQL statements directly (a migration's file, again).
    async fn execute(&self, sql: &str) {
        use sqlx::Connection;
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.url))
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
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
    outbox_rows_are_claimed_once_retried_and_joined_by_their_key,
    a_receiver_back_gets_its_waiting_rows_at_once,
    rows_behind_a_waiting_row_come_back_in_order_once_it_is_sent,
    a_long_parked_backlog_comes_back_a_part_per_round_in_order,
    outbox_rows_done_with_are_pruned_and_unsent_ones_kept,
    outbox_rows_go_with_their_message_in_its_group_commit,
    concurrent_outbox_claims_take_disjoint_rows,
    visitors_email_state_is_per_tenant_and_transcripts_one_per_interval,
    a_rounds_email_states_and_pending_replies_are_read_at_once_in_their_tenant_and_channel,
    canned_responses_are_saved_searched_and_deleted_per_tenant,
    attachments_are_read_back_whole_and_per_tenant,
    attachments_are_claimed_whole_by_their_uploader_and_go_with_their_message,
    quick_replies_and_postbacks_are_read_back_by_every_reader,
    system_notices_are_read_back_by_every_reader,
    joins_stored_before_notices_get_their_notice,
    visitor_rooms_are_every_visitor_room_of_the_tenant_by_filter,
    jwt_secret_keeps_the_first_value,
    concurrent_jwt_secret_calls_agree,
    bootstrap_creates_once,
    concurrent_bootstrap_creates_exactly_one,
    agent_by_email_ignores_case,
    set_password_replaces_the_hash,
    sessions_are_active_until_expired_or_revoked,
    a_session_is_read_with_a_room_of_its_agents_tenant_only,
    channels_are_listed_per_tenant_and_update,
    conversation_exists_after_its_first_message,
    a_first_message_creates_its_conversation_with_its_opening_and_later_ones_change_nothing,
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
    marks_queued_with_appends_are_written_with_them_and_survive_a_bad_message,
    unused_visitor_contexts_are_cleaned_and_used_ones_kept,
    settings_keep_the_first_value_per_key,
    insert_tenant_creates_a_tenant_with_its_admin_or_nothing,
    agents_are_inserted_once_and_listed_per_tenant,
    update_agent_changes_what_it_names_in_its_tenant_only,
    delete_agent_removes_it_with_its_sessions_and_memberships,
    revoke_agent_sessions_ends_every_login_of_one_agent,
    presences_are_set_and_read_per_tenant,
    enqueued_appends_commit_in_queue_order,
    room_messages_page_filter_and_count_in_their_tenant,
    search_messages_finds_matches_in_the_members_rooms_only,
    message_is_found_in_its_room_and_tenant_only,
    edit_message_changes_then_deletes_once,
    fail_pending_marks_only_the_channels_pending_messages,
    visitor_read_marks_the_agents_messages_up_to_a_seq,
    queue_lists_queued_visitor_rooms_oldest_first,
    assign_many_respects_each_limit_and_gives_a_room_once,
    answer_transfer_and_state_changes_have_one_winner,
    agent_rooms_are_created_once_per_set_of_members,
    agent_room_members_are_added_and_removed_in_their_tenant_only,
    concurrent_adds_to_an_agent_room_respect_its_cap,
    messages_keep_their_mentions,
    mark_read_moves_forward_only,
    reactions_are_capped_per_user_and_stay_in_their_tenant,
    visitor_names_are_those_given_in_the_tenant,
    labels_are_unique_per_tenant_by_name_and_go_with_their_rooms,
    notes_follow_their_message_for_agents_and_never_reach_visitor_reads,
    a_closed_visitor_room_is_rated_once_in_its_tenant_and_channel,
    desk_settings_round_trip_and_idle_rooms_close_once,
    identity_secrets_visitor_keys_and_blocks_stay_in_their_tenant_and_channel,
    erasures_make_shells_once_per_tenant_and_are_audited,
    webhooks_and_their_delivery_logs_stay_in_their_tenant,
    ordered_outbox_rows_go_one_at_a_time_per_key_behind_a_failing_one,
    change_events_go_once_in_order_wherever_the_store_keeps_them,
    changes_write_the_rows_they_make_in_their_own_transaction_or_none,
    applications_stay_in_their_tenant_are_found_by_token_hash_and_revoked_once,
    requeue_returns_a_members_open_room_to_the_queue_once,
    report_facts_are_the_tenants_visitor_conversations_of_the_scope;
    postgres_only:
    concurrent_opens_migrate_once,
    fresh_schemas_are_isolated,
    concurrent_appends_from_two_instances_are_gapless,
    concurrent_duplicates_from_two_instances_store_one_message,
    interleaved_conversations_from_two_instances_stay_gapless,
    concurrent_erasures_erase_each_conversation_once,
);

async fn desk_settings_round_trip_and_idle_rooms_close_once(db: Db) {
    use chatgate::domain::{BusinessHours, PrechatForm};
    let (store, first) = bootstrapped(&db).await;
    let (tenant, channel_id) = (first.tenant_id, first.channel.id);
    let mut channel = first.channel.clone();
    channel.desk.business_hours = Some(
        BusinessHours::parse(&serde_json::json!({"time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "17:30"]]}, "closed_dates": ["2026-12-25"]}))
        .unwrap(),
    );
    channel.desk.away_message = Some("Back soon".into());
    channel.desk.prechat = PrechatForm::parse(&serde_json::json!({"email": "required"})).unwrap();
    channel.desk.auto_close_hours = Some(2);
    store.update_channel(&channel).await.unwrap();
    assert_eq!(
        store.channel(tenant, channel_id).await.unwrap().unwrap(),
        channel
    );

    let room = queued_room(store.as_ref(), &first, channel_id, 1_000).await;
    // The away message is claimed once per conversation, in its tenant.
    assert!(!store.mark_away_sent(TenantId::new(), room).await.unwrap());
    assert!(store.mark_away_sent(tenant, room).await.unwrap());
    assert!(!store.mark_away_sent(tenant, room).await.unwrap());

    // Idle since 1970: listed, and closed by one of two racing instances.
    let now = now_ms();
    let idle = store.idle_rooms(now, 10).await.unwrap();
    assert_eq!(idle, vec![(tenant, room)]);
    assert_eq!(
        store
            .close_idle_room(TenantId::new(), room, now, None)
            .await
            .unwrap(),
        None
    );
    let (a, b) = tokio::join!(
        store.close_idle_room(tenant, room, now, None),
        store.close_idle_room(tenant, room, now, None)
    );
    let closed: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(closed.len(), 1, "closed once");
    assert_eq!(closed[0].0.state, RoomState::Closed);
    assert_eq!(closed[0].1, RoomState::Queued);
    assert!(store.idle_rooms(now, 10).await.unwrap().is_empty());
    // Not idle long enough: neither listed nor closed.
    let recent = queued_room(store.as_ref(), &first, channel_id, now - 3_600_000).await;
    assert!(store.idle_rooms(now, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .close_idle_room(tenant, recent, now, None)
            .await
            .unwrap(),
        None
    );
    // Auto-close off: nothing is idle.
    channel.desk.auto_close_hours = None;
    store.update_channel(&channel).await.unwrap();
    assert!(store
        .idle_rooms(now + 100 * 3_600_000, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_closed_visitor_room_is_rated_once_in_its_tenant_and_channel(db: Db) {
    use chatgate::domain::Rating;
    use chatgate::store::Rated;
    let (store, first) = bootstrapped(&db).await;
    let (tenant, channel) = (first.tenant_id, first.channel.id);
    let room = queued_room(store.as_ref(), &first, channel, 1_000).await;
    let rating = Rating::parse(4, Some("Quick and kind"), 5_000).unwrap();
    let rate = |room| {
        let store = store.clone();
        let rating = rating.clone();
        async move {
            store
                .rate_room(tenant, channel, room, &rating, None)
                .await
                .unwrap()
        }
    };
    assert_eq!(rate(room).await, Rated::NotClosed, "a queued room");
    assert_eq!(
        store.room(tenant, room).await.unwrap().unwrap().rating,
        None
    );
    store
        .set_room_state(tenant, room, None, RoomState::Closed, 2_000, None)
        .await
        .unwrap()
        .unwrap();
    // Another tenant, another channel, an agent room: no such room.
    assert_eq!(
        store
            .rate_room(TenantId::new(), channel, room, &rating, None)
            .await
            .unwrap(),
        Rated::NoRoom
    );
    assert_eq!(
        store
            .rate_room(tenant, ChannelId::new(), room, &rating, None)
            .await
            .unwrap(),
        Rated::NoRoom
    );
    let team = team_room(tenant, &[first.admin.id]);
    store.create_agent_room(&team).await.unwrap();
    assert_eq!(rate(team.id).await, Rated::NoRoom);
    assert_eq!(rate(ConversationId::new()).await, Rated::NoRoom);

    let Rated::Rated(rated) = rate(room).await else {
        panic!("a closed room is rated")
    };
    assert_eq!(rated.rating.as_ref(), Some(&rating));
    assert_eq!(rated.state, RoomState::Closed);
    // Every reader of rooms reads it back.
    assert_eq!(
        store.room(tenant, room).await.unwrap().unwrap().rating,
        Some(rating.clone())
    );
    let listed = store
        .visitor_rooms(
            tenant,
            first.admin.id.0,
            &store::RoomFilter::default(),
            10,
            0,
        )
        .await
        .unwrap();
    let listed = listed.items.iter().find(|s| s.room.id == room).unwrap();
    assert_eq!(listed.room.rating, Some(rating.clone()));
    // Once: a second rating changes nothing.
    let other = Rating::parse(1, None, 6_000).unwrap();
    assert_eq!(
        store
            .rate_room(tenant, channel, room, &other, None)
            .await
            .unwrap(),
        Rated::AlreadyRated
    );
    assert_eq!(
        store.room(tenant, room).await.unwrap().unwrap().rating,
        Some(rating.clone())
    );
    // Reopened, the room keeps its rating, and is still rated once.
    store
        .set_room_state(tenant, room, None, RoomState::Open, 7_000, None)
        .await
        .unwrap();
    assert_eq!(rate(room).await, Rated::AlreadyRated);

    // Of concurrent rates, one wins.
    let raced = queued_room(store.as_ref(), &first, channel, 8_000).await;
    store
        .set_room_state(tenant, raced, None, RoomState::Closed, 9_000, None)
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (1..=4u8)
        .map(|stars| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let rating = Rating::parse(i64::from(stars), None, 10_000).unwrap();
                barrier.wait().await;
                store
                    .rate_room(tenant, channel, raced, &rating, None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap() {
            Rated::Rated(room) => won.push(room.rating.unwrap()),
            outcome => assert_eq!(outcome, Rated::AlreadyRated),
        }
    }
    assert_eq!(won.len(), 1, "exactly one rate wins");
    assert_eq!(
        store
            .room(tenant, raced)
            .await
            .unwrap()
            .unwrap()
            .rating
            .as_ref(),
        won.first()
    );
}

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
            desk: Default::default(),
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
        notice: None,
        quick_replies: Vec::new(),
        postback: None,
        mentions: Vec::new(),
        attachments: Vec::new(),
        bot: false,
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

async fn a_session_is_read_with_a_room_of_its_agents_tenant_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let now = now_ms();
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let session = SessionId::new();
    store
        .create_session(session, ana.id, now + 60_000)
        .await
        .unwrap();
    let room = team_room(tenant, &[first.admin.id, ana.id]);
    store.create_agent_room(&room).await.unwrap();

    // The room as `room` reads it, members in joining order.
    let (agent, read) = store
        .session_agent_and_room(session, now, room.id)
        .await
        .unwrap()
        .expect("an active session");
    assert_eq!(agent, ana);
    let stored = store.room(tenant, room.id).await.unwrap().expect("stored");
    assert_eq!(read.as_ref(), Some(&stored));
    let members: Vec<uuid::Uuid> = stored.members.iter().map(|m| m.id).collect();
    assert_eq!(members, vec![first.admin.id.0, ana.id.0]);

    // A visitor room of the tenant, queued (no agent yet).
    let conversation = ConversationId::new();
    store
        .append_message(visitor_message(&first, conversation, "hello", None))
        .await
        .unwrap();
    let (_, visitor_room) = store
        .session_agent_and_room(session, now, conversation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        visitor_room,
        store.room(tenant, conversation).await.unwrap(),
        "read the same way"
    );
    assert!(visitor_room.is_some());

    // No such room, or another tenant's: the agent alone.
    let (_, none) = store
        .session_agent_and_room(session, now, ConversationId::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    let other = other_tenant(&db).await;
    let olga = agent_in(other, "olga@example.com", Role::Agent);
    store.insert_agent(&olga).await.unwrap();
    let theirs = team_room(other, &[olga.id]);
    store.create_agent_room(&theirs).await.unwrap();
    let (_, foreign) = store
        .session_agent_and_room(session, now, theirs.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(foreign, None, "another tenant's room is not read");

    // An expired, revoked or unknown session reads nothing.
    assert!(store
        .session_agent_and_room(session, now + 60_000, room.id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session_agent_and_room(SessionId::new(), now, room.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.revoke_session(session).await.unwrap());
    assert!(store
        .session_agent_and_room(session, now, room.id)
        .await
        .unwrap()
        .is_none());
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
        desk: Default::default(),
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
        desk: Default::default(),
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

/// What a first message stores with the conversation it creates (whose it
/// is, the pre-chat answers, the page's context) is there when the append
/// returns; a later message's opening, or one for a conversation created
/// without any, writes nothing.
async fn a_first_message_creates_its_conversation_with_its_opening_and_later_ones_change_nothing(
    db: Db,
) {
    use chatgate::domain::identity::VisitorKey;
    use chatgate::domain::PrechatAnswers;
    let (store, first) = bootstrapped(&db).await;
    let (tenant, channel) = (first.tenant_id, first.channel.id);
    let opening = |who: &str, url: &str| store::Opening {
        owner: Some((VisitorKey::identified(who), true)),
        prechat: Some(PrechatAnswers {
            name: Some(who.to_string()),
            question: Some(format!("{who} asks")),
            ..Default::default()
        }),
        context: Some(Arc::new(VisitorContext {
            name: Some(who.to_string()),
            url: Some(url.to_string()),
            ..Default::default()
        })),
    };
    let send = |conversation: ConversationId, opening: Option<store::Opening>| {
        let store = store.clone();
        let message = visitor_message(&first, conversation, "hello", None);
        async move {
            let appended = store
                .enqueue_append(message, None, opening)
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(appended.created);
            appended.message.seq
        }
    };
    let read = |conversation: ConversationId| {
        let store = store.clone();
        async move {
            let owner = store
                .conversation_visitor(channel, conversation)
                .await
                .unwrap()
                .unwrap();
            let prechat = store
                .room(tenant, conversation)
                .await
                .unwrap()
                .unwrap()
                .prechat;
            let context = store.visitor_context(tenant, conversation).await.unwrap();
            (owner, prechat, context)
        }
    };

    let ana = ConversationId::new();
    assert_eq!(
        send(ana, Some(opening("ana", "https://shop.example/a"))).await,
        1
    );
    let written = read(ana).await;
    let expected = opening("ana", "https://shop.example/a");
    assert_eq!(written.0, (Some(VisitorKey::identified("ana")), true));
    assert_eq!(written.1, expected.prechat);
    assert_eq!(written.2.as_ref(), expected.context.as_deref());

    assert_eq!(
        send(ana, Some(opening("bob", "https://shop.example/b"))).await,
        2
    );
    assert_eq!(
        read(ana).await,
        written,
        "a later message's opening is ignored"
    );

    // Several conversations opening at once (queued before any commits,
    // so that they share group commits): each gets its own.
    let many: Vec<ConversationId> = (0..20).map(|_| ConversationId::new()).collect();
    let mut pending = Vec::new();
    for (i, &conversation) in many.iter().enumerate() {
        let who = format!("visitor{i}");
        let message = visitor_message(&first, conversation, "hi", None);
        let opening = opening(&who, &format!("https://shop.example/{i}"));
        pending.push(
            store
                .enqueue_append(message, None, Some(opening))
                .await
                .unwrap(),
        );
    }
    for appended in pending {
        assert!(appended.await.unwrap().created);
    }
    for (i, &conversation) in many.iter().enumerate() {
        let who = format!("visitor{i}");
        let expected = opening(&who, &format!("https://shop.example/{i}"));
        let (owner, prechat, context) = read(conversation).await;
        assert_eq!(owner, (Some(VisitorKey::identified(&who)), true));
        assert_eq!(prechat, expected.prechat);
        assert_eq!(context.as_ref(), expected.context.as_deref());
    }

    let bare = ConversationId::new();
    assert_eq!(send(bare, None).await, 1);
    assert_eq!(
        send(bare, Some(opening("bob", "https://shop.example/b"))).await,
        2
    );
    assert_eq!(read(bare).await, ((None, false), None, None));
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

/// A system message's notice is stored beside its content and comes back
/// from every read of messages; other messages have none.
async fn system_notices_are_read_back_by_every_reader(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let asked = store
        .append_message(visitor_message(&first, conversation, "Hello", None))
        .await
        .unwrap()
        .message;
    assert_eq!(asked.notice, None);
    let notice = Notice::transferred("Bo", "Ana");
    let joined = NewMessage {
        sender_kind: SenderKind::System,
        sender_name: None,
        content: notice.english(),
        notice: Some(notice.clone()),
        ..visitor_message(&first, conversation, "", None)
    };
    let stored = store.append_message(joined).await.unwrap().message;
    assert_eq!(stored.notice.as_ref(), Some(&notice));
    // Through the queue of the group commit too.
    let closed = NewMessage {
        sender_kind: SenderKind::System,
        content: "Conversation closed".into(),
        notice: Some(Notice::closed(None)),
        ..visitor_message(&first, conversation, "", None)
    };
    let closed = store
        .enqueue_append(closed, None, None)
        .await
        .unwrap()
        .await
        .unwrap()
        .message;
    let expected = vec![asked.clone(), stored.clone(), closed.clone()];
    let scope = first.channel.scope();
    assert_eq!(
        store.history(scope, conversation, 10).await.unwrap(),
        expected
    );
    assert_eq!(
        store
            .messages_after(scope, conversation, 0, 10)
            .await
            .unwrap(),
        expected
    );
    let page = store
        .room_messages(first.tenant_id, conversation, &page_query(10, true))
        .await
        .unwrap();
    assert_eq!(page.items, expected);
    assert_eq!(
        store
            .message(first.tenant_id, conversation, stored.id)
            .await
            .unwrap()
            .and_then(|m| m.notice),
        Some(notice)
    );
    assert_eq!(closed.notice, Some(Notice::closed(None)));
    // The queue shows the newest message with its notice.
    let queued = store.queue(first.tenant_id, None).await.unwrap();
    assert_eq!(queued[0].last_message.as_ref(), Some(&closed));
}

/// An agent's quick replies and a visitor's postback are stored with
/// their messages (migration 0010) and come back from every read; deleting
/// the message takes its buttons away.
async fn quick_replies_and_postbacks_are_read_back_by_every_reader(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let plain = store
        .append_message(visitor_message(&first, conversation, "Hello", None))
        .await
        .unwrap()
        .message;
    assert_eq!(
        (plain.quick_replies.as_slice(), &plain.postback),
        (&[][..], &None)
    );
    let buttons = vec![
        QuickReply {
            title: "Yes".into(),
            payload: "yes".into(),
        },
        QuickReply {
            title: "Non, merci « ! »".into(),
            payload: r#"{"answer": "no"}"#.into(),
        },
    ];
    let asked = NewMessage {
        sender_kind: SenderKind::Agent,
        sender_id: uuid::Uuid::new_v4(),
        quick_replies: buttons.clone(),
        ..visitor_message(&first, conversation, "Shall we?", None)
    };
    let asked = store.append_message(asked).await.unwrap().message;
    assert_eq!(asked.quick_replies, buttons);
    // A visitor's choice, through the queue of the group commit.
    let chose = NewMessage {
        postback: Some("yes".into()),
        ..visitor_message(&first, conversation, "Yes", None)
    };
    let chose = store
        .enqueue_append(chose, None, None)
        .await
        .unwrap()
        .await
        .unwrap()
        .message;
    assert_eq!(chose.postback.as_deref(), Some("yes"));
    let expected = vec![plain, asked.clone(), chose.clone()];
    let scope = first.channel.scope();
    assert_eq!(
        store.history(scope, conversation, 10).await.unwrap(),
        expected
    );
    assert_eq!(
        store
            .messages_after(scope, conversation, 0, 10)
            .await
            .unwrap(),
        expected
    );
    let page = store
        .room_messages(first.tenant_id, conversation, &page_query(10, true))
        .await
        .unwrap();
    assert_eq!(page.items, expected);
    assert_eq!(
        store
            .message(first.tenant_id, conversation, asked.id)
            .await
            .unwrap()
            .map(|m| m.quick_replies),
        Some(buttons.clone())
    );
    // An edit keeps the buttons; deleting the message removes them.
    let edited = store
        .edit_message(
            first.tenant_id,
            conversation,
            asked.id,
            Some("Sure?"),
            2_000,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.quick_replies, buttons);
    let deleted = store
        .edit_message(first.tenant_id, conversation, asked.id, None, 3_000, None)
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.quick_replies, Vec::new());
    let chose_again = store
        .message(first.tenant_id, conversation, chose.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chose_again.postback.as_deref(), Some("yes"));
}

/// Migration 0008: a system message stored before notices ("Ana joined",
/// no notice) gets its `agent_joined` notice; nothing else changes.
async fn joins_stored_before_notices_get_their_notice(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let system = |content: &str, notice: Option<Notice>| NewMessage {
        sender_kind: SenderKind::System,
        sender_name: None,
        content: content.into(),
        notice,
        ..visitor_message(&first, conversation, "", None)
    };
    store
        .append_message(visitor_message(&first, conversation, "I joined", None))
        .await
        .unwrap();
    store
        .append_message(system("Zoë Ana joined", None))
        .await
        .unwrap();
    store
        .append_message(system("Conversation closed", Some(Notice::closed(None))))
        .await
        .unwrap();
    let migration = match db.backend {
        Backend::Sqlite => {
            include_str!("../../migrations/sqlite/0008_notices_of_earlier_joins.sql")
        }
        Backend::Postgres => {
            include_str!("../../migrations/postgres/0008_notices_of_earlier_joins.sql")
        }
    };
    db.execute(migration).await;
    let notices: Vec<Option<Notice>> = store
        .history(first.channel.scope(), conversation, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.notice)
        .collect();
    assert_eq!(
        notices,
        [
            None,
            Some(Notice::agent_joined("Zoë Ana")),
            Some(Notice::closed(None))
        ]
    );
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
        labels: Vec::new(),
        rating: None,
        prechat: None,
        verified: false,
        blocked: false,
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

/// DELIVERED marks queue on the append lanes and are written in the
/// transaction of the messages queued with them: marks and appends sent
/// at once all get their own results, a message that cannot be stored
/// fails alone (the rest of its batch, marks included, is stored), and
/// a mark changes a message once, in its own tenant only.
async fn marks_queued_with_appends_are_written_with_them_and_survive_a_bad_message(db: Db) {
    let s = scopes(&db).await;
    let tenant = s.first.tenant_id;
    let mut replies = Vec::new();
    for i in 0..6 {
        let mut reply = visitor_message(&s.first, s.conversation, &format!("reply {i}"), None);
        reply.sender_kind = SenderKind::Agent;
        reply.sender_id = s.first.admin.id.0;
        reply.state = DeliveryState::Pending;
        replies.push(s.store.append_message(reply).await.unwrap().message);
    }
    let other_tenant = s.other_tenant_channel.tenant_id;
    let busy = ConversationId::new();
    // It cannot be stored (its id is taken by a reply): it alone fails.
    let bad = NewMessage {
        id: replies[0].id,
        ..visitor_message(&s.first, ConversationId::new(), "a taken id", None)
    };
    // Queued in one go from one task, so that all but the first (which
    // the idle lane takes at once) wait for the same batch: the bad
    // message's batch holds marks too.
    let mut appends = Vec::new();
    let mut marks = Vec::new();
    for i in 0..30 {
        appends.push(s.store.append_message(visitor_message(
            &s.first,
            busy,
            &format!("m{i}"),
            None,
        )));
        if i % 5 == 0 {
            marks.push(mark_twice_and_elsewhere(
                s.store.as_ref(),
                tenant,
                other_tenant,
                replies[i / 5].id,
            ));
        }
        if i == 12 {
            appends.push(s.store.append_message(bad.clone()));
        }
    }
    let (appended, marked) = tokio::join!(
        futures_util::future::join_all(appends),
        futures_util::future::join_all(marks)
    );
    let mut failed = 0;
    for result in appended {
        match result {
            Ok(appended) => assert_eq!(appended.message.conversation_id, busy),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 1, "only the bad message fails");
    for (reply, a, b, other) in marked {
        assert_eq!(other, None, "another tenant's mark changes nothing");
        let changed: Vec<Message> = [a, b].into_iter().flatten().collect();
        assert_eq!(changed.len(), 1, "one of two marks changes the message");
        assert_eq!(changed[0].id, reply);
        assert_eq!(changed[0].state, DeliveryState::Delivered);
    }
    let stored = s
        .store
        .messages_after(s.first.channel.scope(), busy, 0, 100)
        .await
        .unwrap();
    assert_eq!(seqs(&stored), (1..=30).collect::<Vec<_>>());
    let history = s
        .store
        .messages_after(s.first.channel.scope(), s.conversation, 0, 100)
        .await
        .unwrap();
    for reply in &replies {
        let state = history.iter().find(|m| m.id == reply.id).unwrap().state;
        assert_eq!(state, DeliveryState::Delivered, "{}", reply.content);
    }
}

/// Marks `reply` twice at once in `tenant` (two tabs) and once in `other`.
async fn mark_twice_and_elsewhere(
    store: &dyn Store,
    tenant: TenantId,
    other: TenantId,
    reply: MessageId,
) -> (MessageId, Option<Message>, Option<Message>, Option<Message>) {
    let (a, b, elsewhere) = tokio::join!(
        store.mark_delivered(tenant, reply, None),
        store.mark_delivered(tenant, reply, None),
        store.mark_delivered(other, reply, None)
    );
    (reply, a.unwrap(), b.unwrap(), elsewhere.unwrap())
}

async fn delivered_marks_and_unread_counts_stay_in_their_tenant(db: Db) {
    let s = scopes(&db).await;
    let mut reply = visitor_message(&s.first, s.conversation, "an agent's reply", None);
    reply.sender_kind = SenderKind::Agent;
    reply.sender_id = s.first.admin.id.0;
    reply.state = DeliveryState::Pending;
    let reply = s.store.append_message(reply).await.unwrap().message;
    let other = s.other_tenant_channel.tenant_id;
    assert_eq!(
        s.store.mark_delivered(other, reply.id, None).await.unwrap(),
        None
    );
    let marked = s
        .store
        .mark_delivered(s.first.tenant_id, reply.id, None)
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
        let answered = store
            .answer(tenant, room, admin, base + k * 1000 + 1, None)
            .await;
        assert!(matches!(answered.unwrap(), store::Answered::Won(_)));
        // Rooms 0..5 closed, 5 and 6 open.
        if k < 5 {
            store
                .set_room_state(
                    tenant,
                    room,
                    None,
                    RoomState::Closed,
                    base + k * 1000 + 2,
                    None,
                )
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
                .member_rooms(
                    tenant,
                    admin.0,
                    &[],
                    &store::RoomFilter {
                        state,
                        ..Default::default()
                    },
                    limit,
                    offset,
                )
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
        .member_rooms(
            tenant,
            admin.0,
            &[],
            &store::RoomFilter {
                state: closed,
                ..Default::default()
            },
            1,
            0,
        )
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

// --- labels -------------------------------------------------------------------

fn a_label(tenant: TenantId, name: &str, color: &str) -> chatgate::domain::Label {
    chatgate::domain::Label {
        id: chatgate::domain::LabelId::new(),
        tenant_id: tenant,
        name: chatgate::domain::LabelName::parse(name).unwrap(),
        color: chatgate::domain::LabelColor::parse(color).unwrap(),
    }
}

async fn labels_are_unique_per_tenant_by_name_and_go_with_their_rooms(db: Db) {
    use chatgate::store::{LabelChange, RoomLabelsSet};
    let s = scopes(&db).await;
    let (store, first) = (s.store.as_ref(), &s.first);
    let tenant = first.tenant_id;
    let foreign_tenant = s.other_tenant_channel.tenant_id;
    let now = now_ms();

    // Names are unique per tenant whatever their case; another tenant
    // may use the same one.
    let vip = a_label(tenant, "VIP", "#ff0000");
    let billing = a_label(tenant, "billing", "#00aa00");
    let theirs = a_label(foreign_tenant, "vip", "#0000ff");
    assert_eq!(
        store.insert_label(&vip, now).await.unwrap(),
        LabelChange::Done
    );
    assert_eq!(
        store.insert_label(&billing, now).await.unwrap(),
        LabelChange::Done
    );
    assert_eq!(
        store.insert_label(&theirs, now).await.unwrap(),
        LabelChange::Done
    );
    assert_eq!(
        store
            .insert_label(&a_label(tenant, "vip", "#000000"), now)
            .await
            .unwrap(),
        LabelChange::NameTaken
    );
    let listed: Vec<String> = store
        .labels(tenant)
        .await
        .unwrap()
        .iter()
        .map(|l| l.name.as_str().to_string())
        .collect();
    assert_eq!(listed, ["billing", "VIP"]);
    assert_eq!(
        store.label(tenant, vip.id).await.unwrap(),
        Some(vip.clone())
    );
    assert_eq!(store.label(foreign_tenant, vip.id).await.unwrap(), None);

    // Renames: taken names refused, one's own in another case allowed,
    // another tenant's label not found.
    let mut taken = billing.clone();
    taken.name = chatgate::domain::LabelName::parse("Vip").unwrap();
    assert_eq!(
        store.update_label(&taken).await.unwrap(),
        LabelChange::NameTaken
    );
    let mut gold = vip.clone();
    gold.name = chatgate::domain::LabelName::parse("vip").unwrap();
    gold.color = chatgate::domain::LabelColor::parse("#ffd700").unwrap();
    assert_eq!(store.update_label(&gold).await.unwrap(), LabelChange::Done);
    assert_eq!(
        store.label(tenant, vip.id).await.unwrap(),
        Some(gold.clone())
    );
    let mut hijack = theirs.clone();
    hijack.tenant_id = tenant;
    assert_eq!(
        store.update_label(&hijack).await.unwrap(),
        LabelChange::NotFound
    );
    assert_eq!(
        store.label(foreign_tenant, theirs.id).await.unwrap(),
        Some(theirs.clone())
    );

    // Labels on rooms: exactly the list given, the tenant's only.
    let room = s.conversation;
    assert_eq!(
        store
            .set_room_labels(tenant, room, &[vip.id, billing.id, vip.id])
            .await
            .unwrap(),
        RoomLabelsSet::Done
    );
    assert_eq!(
        store
            .set_room_labels(tenant, room, &[theirs.id])
            .await
            .unwrap(),
        RoomLabelsSet::UnknownLabel
    );
    assert_eq!(
        store
            .set_room_labels(foreign_tenant, room, &[theirs.id])
            .await
            .unwrap(),
        RoomLabelsSet::UnknownRoom
    );
    let names = |room: &chatgate::domain::Room| -> Vec<String> {
        room.labels.iter().map(|l| l.name.clone()).collect()
    };
    let read = store.room(tenant, room).await.unwrap().unwrap();
    assert_eq!(names(&read), ["billing", "vip"], "refusals changed nothing");
    assert_eq!(read.labels[1].color, "#ffd700");
    assert_eq!(read.labels[1].id, vip.id);
    // Every reader of rooms carries them: the queue, the tenant's
    // visitor rooms (filtered by label), a session's room.
    let queue = store.queue(tenant, None).await.unwrap();
    let queued = queue.iter().find(|r| r.room.id == room).unwrap();
    assert_eq!(names(&queued.room), ["billing", "vip"]);
    let by_label = store
        .visitor_rooms(
            tenant,
            first.admin.id.0,
            &store::RoomFilter {
                label: Some(billing.id),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    let ids: Vec<ConversationId> = by_label.items.iter().map(|r| r.room.id).collect();
    assert_eq!(ids, [room]);
    assert_eq!(names(&by_label.items[0].room), ["billing", "vip"]);
    let foreign_label = store
        .visitor_rooms(
            tenant,
            first.admin.id.0,
            &store::RoomFilter {
                label: Some(theirs.id),
                ..Default::default()
            },
            10,
            0,
        )
        .await
        .unwrap();
    assert!(foreign_label.items.is_empty());
    let session = SessionId::new();
    store
        .create_session(session, first.admin.id, now + 60_000)
        .await
        .unwrap();
    let (_, with_room) = store
        .session_agent_and_room(session, now, room)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(names(&with_room.unwrap()), ["billing", "vip"]);
    assert_eq!(store.label_rooms(tenant, vip.id, 10).await.unwrap(), [room]);
    assert!(store
        .label_rooms(foreign_tenant, vip.id, 10)
        .await
        .unwrap()
        .is_empty());

    // A member's rooms, filtered by label: answered by the admin.
    assert!(matches!(
        store
            .answer(tenant, room, first.admin.id, now, None)
            .await
            .unwrap(),
        store::Answered::Won(_)
    ));
    let member_filter = |label| store::RoomFilter {
        label: Some(label),
        ..Default::default()
    };
    let mine = store
        .member_rooms(tenant, first.admin.id.0, &[], &member_filter(vip.id), 10, 0)
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    assert_eq!(names(&mine.items[0].room), ["billing", "vip"]);
    assert_eq!(mine.total, 2, "the agent room is the admin's too");
    let none = store
        .member_rooms(
            tenant,
            first.admin.id.0,
            &[],
            &member_filter(theirs.id),
            10,
            0,
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());

    // Deleting a label takes it off every room; once, in its tenant.
    assert!(!store.delete_label(foreign_tenant, vip.id).await.unwrap());
    assert!(store.delete_label(tenant, vip.id).await.unwrap());
    assert!(!store.delete_label(tenant, vip.id).await.unwrap());
    let read = store.room(tenant, room).await.unwrap().unwrap();
    assert_eq!(names(&read), ["billing"]);
    assert!(store
        .label_rooms(tenant, vip.id, 10)
        .await
        .unwrap()
        .is_empty());
    // Clearing: an empty list.
    assert_eq!(
        store.set_room_labels(tenant, room, &[]).await.unwrap(),
        RoomLabelsSet::Done
    );
    assert!(store
        .room(tenant, room)
        .await
        .unwrap()
        .unwrap()
        .labels
        .is_empty());
    assert_eq!(store.labels(foreign_tenant).await.unwrap(), [theirs]);
}

/// Private notes: stored after the conversation's newest message (its
/// seq), listed to agents right after it in either direction and in any
/// page that holds it, never by the visitor's reads, never in an agent
/// room, another tenant's or an unknown room; the seqs stay gapless.
async fn notes_follow_their_message_for_agents_and_never_reach_visitor_reads(db: Db) {
    let s = scopes(&db).await;
    let (store, first) = (s.store.as_ref(), &s.first);
    let tenant = first.tenant_id;
    let note = |room: ConversationId, tenant: TenantId, text: &str| store::NewNote {
        id: MessageId::new(),
        tenant_id: tenant,
        room,
        author_id: first.admin.id.0,
        author_name: Some("Admin".into()),
        author_avatar: None,
        content: text.into(),
        at_ms: now_ms(),
    };
    let stored = store
        .add_note(note(s.conversation, tenant, "VIP"), None)
        .await
        .unwrap()
        .expect("a visitor conversation takes a note");
    assert!(stored.private);
    assert_eq!((stored.seq, stored.content.as_str()), (2, "VIP"));
    let second = store
        .add_note(note(s.conversation, tenant, "second"), None)
        .await
        .unwrap()
        .unwrap();
    append_all(store, first, s.conversation, &["after"]).await;
    // No room of that kind or tenant: nothing stored.
    for (room, in_tenant) in [
        (s.agent_room, tenant),
        (s.conversation, s.other_tenant_channel.tenant_id),
        (ConversationId::new(), tenant),
    ] {
        assert_eq!(
            store
                .add_note(note(room, in_tenant, "x"), None)
                .await
                .unwrap(),
            None
        );
    }

    let ids = |items: &[Message]| items.iter().map(|m| m.id).collect::<Vec<_>>();
    let all = store
        .room_messages(tenant, s.conversation, &page_query(10, true))
        .await
        .unwrap();
    assert_eq!(
        contents(&all.items),
        ["hi", "there", "VIP", "second", "after"]
    );
    assert_eq!(seqs(&all.items), [1, 2, 2, 2, 3]);
    assert_eq!((all.filtered, all.total), (3, 3), "notes are not counted");
    let newest_first = store
        .room_messages(tenant, s.conversation, &page_query(10, false))
        .await
        .unwrap();
    assert_eq!(
        ids(&newest_first.items),
        ids(&all.items).into_iter().rev().collect::<Vec<_>>()
    );
    let without = store
        .room_messages(tenant, s.conversation, &page_query(1, false))
        .await
        .unwrap();
    assert_eq!(contents(&without.items), ["after"]);
    let search = store::MessageQuery {
        search: chatgate::domain::search::like_pattern("VIP"),
        ..page_query(10, true)
    };
    assert!(store
        .room_messages(tenant, s.conversation, &search)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .room_messages(
            s.other_tenant_channel.tenant_id,
            s.conversation,
            &page_query(10, true)
        )
        .await
        .unwrap()
        .items
        .is_empty());

    // The visitor's reads: the messages alone, seqs 1..=3.
    let scope = first.channel.scope();
    let history = store.history(scope, s.conversation, 10).await.unwrap();
    assert_eq!(contents(&history), ["hi", "there", "after"]);
    let after = store
        .messages_after(scope, s.conversation, 0, 10)
        .await
        .unwrap();
    assert_eq!(seqs(&after), [1, 2, 3]);
    assert!(after
        .iter()
        .all(|m| !m.private && m.id != stored.id && m.id != second.id));
}

async fn identity_secrets_visitor_keys_and_blocks_stay_in_their_tenant_and_channel(db: Db) {
    use chatgate::domain::identity::{IdentitySecrets, VisitorKey};
    let (store, first) = bootstrapped(&db).await;
    let (tenant, channel) = (first.tenant_id, first.channel.id);
    let other = other_tenant(&db).await;

    // Secrets: the first candidate is kept; none for another tenant or an
    // unknown channel.
    let one = IdentitySecrets::generate();
    let kept = store.identity_secrets(tenant, channel, &one).await.unwrap();
    assert_eq!(kept, Some(one.clone()));
    let two = IdentitySecrets::generate();
    assert_eq!(
        store.identity_secrets(tenant, channel, &two).await.unwrap(),
        Some(one.clone())
    );
    assert_eq!(
        store.identity_secrets(other, channel, &two).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .identity_secrets(tenant, ChannelId::new(), &two)
            .await
            .unwrap(),
        None
    );
    // Rotation keeps the previous one with the time.
    let rotated = store
        .rotate_identity_secret(tenant, channel, "new-secret", 7_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.secret, "new-secret");
    assert_eq!(rotated.previous, Some(one.secret.clone()));
    assert_eq!(rotated.rotated_at_ms, Some(7_000));
    assert_eq!(
        store
            .rotate_identity_secret(other, channel, "theirs", 8_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.identity_secrets(tenant, channel, &two).await.unwrap(),
        Some(rotated)
    );

    // Visitor keys: recorded once; read per channel.
    let alice = VisitorKey::identified("alice");
    let (a1, a2) = (
        queued_room(store.as_ref(), &first, channel, 1_000).await,
        queued_room(store.as_ref(), &first, channel, 2_000).await,
    );
    let legacy = queued_room(store.as_ref(), &first, channel, 3_000).await;
    assert_eq!(
        store.conversation_visitor(channel, legacy).await.unwrap(),
        Some((None, false))
    );
    for room in [a1, a2] {
        store
            .set_conversation_visitor(tenant, room, &alice, true)
            .await
            .unwrap();
    }
    // A second record, or another tenant's, changes nothing.
    let bob = VisitorKey::identified("bob");
    store
        .set_conversation_visitor(tenant, a1, &bob, false)
        .await
        .unwrap();
    store
        .set_conversation_visitor(other, legacy, &bob, false)
        .await
        .unwrap();
    assert_eq!(
        store.conversation_visitor(channel, a1).await.unwrap(),
        Some((Some(alice.clone()), true))
    );
    assert_eq!(
        store.conversation_visitor(channel, legacy).await.unwrap(),
        Some((None, false))
    );
    assert_eq!(
        store
            .conversation_visitor(ChannelId::new(), a1)
            .await
            .unwrap(),
        None
    );
    let listed = store
        .visitor_conversations(channel, &alice, legacy, 10)
        .await
        .unwrap();
    let listed: Vec<ConversationId> = listed.into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [legacy, a2, a1]);
    let listed = store
        .visitor_conversations(channel, &alice, ConversationId::new(), 1)
        .await
        .unwrap();
    assert_eq!(listed, [(a2, RoomState::Queued)]);
    assert!(store
        .visitor_conversations(ChannelId::new(), &alice, a1, 10)
        .await
        .unwrap()
        .is_empty());
    let room = store.room(tenant, a1).await.unwrap().unwrap();
    assert!(room.verified && !room.blocked, "{room:?}");

    // Blocks: per channel and key; rooms of the key say so; another
    // tenant blocks nothing.
    assert!(!store.visitor_blocked(channel, &alice).await.unwrap());
    store
        .set_visitor_blocked(other, channel, &alice, true, 9_000)
        .await
        .unwrap();
    assert!(!store.visitor_blocked(channel, &alice).await.unwrap());
    store
        .set_visitor_blocked(tenant, channel, &alice, true, 9_000)
        .await
        .unwrap();
    assert!(store.visitor_blocked(channel, &alice).await.unwrap());
    assert!(!store
        .visitor_blocked(ChannelId::new(), &alice)
        .await
        .unwrap());
    assert!(!store.visitor_blocked(channel, &bob).await.unwrap());
    assert!(store.room(tenant, a2).await.unwrap().unwrap().blocked);
    assert!(!store.room(tenant, legacy).await.unwrap().unwrap().blocked);
    // A conversation with no key recorded is blocked by its own.
    let own = VisitorKey::anonymous(legacy);
    store
        .set_visitor_blocked(tenant, channel, &own, true, 9_500)
        .await
        .unwrap();
    assert!(store.room(tenant, legacy).await.unwrap().unwrap().blocked);
    store
        .set_visitor_blocked(other, channel, &alice, false, 10_000)
        .await
        .unwrap();
    assert!(store.visitor_blocked(channel, &alice).await.unwrap());
    store
        .set_visitor_blocked(tenant, channel, &alice, false, 10_000)
        .await
        .unwrap();
    assert!(!store.visitor_blocked(channel, &alice).await.unwrap());
    assert!(!store.room(tenant, a1).await.unwrap().unwrap().blocked);
    assert!(store.room(tenant, legacy).await.unwrap().unwrap().blocked);
}

// --- the outbox -----------------------------------------------------------------

fn outbox_row(tenant: TenantId, key: Option<&str>, due_at_ms: i64) -> store::NewOutbox {
    store::NewOutbox {
        id: uuid::Uuid::new_v4(),
        kind: "email".into(),
        tenant_id: tenant,
        dedupe_key: key.map(str::to_string),
        payload: r#"{"type":"test"}"#.into(),
        created_at_ms: 1_000,
        due_at_ms,
        order_key: None,
        target: None,
    }
}

/// Records one row's outcome (`finish_outbox` takes a round's).
async fn finish(
    store: &Arc<dyn Store>,
    id: uuid::Uuid,
    claim: uuid::Uuid,
    outcome: &store::OutboxOutcome,
    now_ms: i64,
) -> bool {
    let finished = [store::Finished {
        id,
        outcome: outcome.clone(),
        answer: None,
    }];
    let done = store.finish_outbox(claim, &finished, now_ms).await.unwrap();
    assert_eq!(done.len(), 1);
    done[0]
}

/// Records that `conversation` was emailed up to `seq` at `at_ms`, as a
/// worker does with a sent row's outcome (here a row no longer its own:
/// what was sent is recorded all the same).
async fn mark_emailed(
    store: &Arc<dyn Store>,
    tenant: TenantId,
    conversation: ConversationId,
    seq: i64,
    at_ms: i64,
) {
    let sent = store::OutboxOutcome::Sent {
        again_at_ms: at_ms,
        emailed: Some(store::Emailed {
            tenant,
            conversation,
            seq,
            at_ms,
        }),
    };
    let lapsed = uuid::Uuid::new_v4();
    assert!(!finish(store, uuid::Uuid::new_v4(), lapsed, &sent, at_ms).await);
}

async fn outbox_rows_are_claimed_once_retried_and_joined_by_their_key(db: Db) {
    use store::{Enqueued, OutboxOutcome};
    let store = db.open().await;
    let tenant = TenantId::new();
    let a = outbox_row(tenant, Some("offline:a"), 1_000);
    assert_eq!(
        store.enqueue_outbox(&a, 1_000).await.unwrap(),
        Enqueued::Added
    );
    let joined = outbox_row(tenant, Some("offline:a"), 1_000);
    assert_eq!(
        store.enqueue_outbox(&joined, 1_000).await.unwrap(),
        Enqueued::Joined
    );
    assert!(store.outbox_row(joined.id).await.unwrap().is_none());
    let later = outbox_row(tenant, None, 50_000);
    store.enqueue_outbox(&later, 1_000).await.unwrap();

    // Only what is due, once while the lease holds.
    let (one, two) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let claimed = store.claim_outbox(one, 2_000, 1_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [a.id]);
    assert_eq!(claimed[0].payload, a.payload);
    assert_eq!(claimed[0].attempts, 0);
    assert!(store
        .claim_outbox(two, 2_500, 1_000, 10)
        .await
        .unwrap()
        .is_empty());
    // A request joining while it is claimed makes it run once more.
    let during = outbox_row(tenant, Some("offline:a"), 2_500);
    assert_eq!(
        store.enqueue_outbox(&during, 2_500).await.unwrap(),
        Enqueued::Joined
    );
    let sent = OutboxOutcome::Sent {
        again_at_ms: 4_000,
        emailed: None,
    };
    assert!(
        !finish(&store, a.id, two, &sent, 2_600).await,
        "not its claim"
    );
    assert!(finish(&store, a.id, one, &sent, 2_600).await);
    let row = store
        .pending_outbox("offline:a")
        .await
        .unwrap()
        .expect("runs again");
    assert_eq!(
        (row.id, row.sent_at_ms, row.due_at_ms, row.attempts),
        (a.id, None, 4_000, 1)
    );
    assert!(store
        .claim_outbox(two, 3_999, 1_000, 10)
        .await
        .unwrap()
        .is_empty());

    // A failure is counted and retried at its time.
    let three = uuid::Uuid::new_v4();
    assert_eq!(
        store
            .claim_outbox(three, 4_000, 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let retry = OutboxOutcome::Retry {
        at_ms: 6_000,
        error: "SMTP: connection refused".into(),
    };
    assert!(finish(&store, a.id, three, &retry, 4_100).await);
    let row = store.outbox_row(a.id).await.unwrap().unwrap();
    assert_eq!(row.attempts, 2);
    assert_eq!(row.last_error.as_deref(), Some("SMTP: connection refused"));
    assert!(store
        .claim_outbox(three, 5_999, 1_000, 10)
        .await
        .unwrap()
        .is_empty());
    // A postponement counts no attempt.
    let four = uuid::Uuid::new_v4();
    assert_eq!(
        store
            .claim_outbox(four, 6_000, 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let later_on = OutboxOutcome::Later { at_ms: 7_000 };
    assert!(finish(&store, a.id, four, &later_on, 6_000).await);
    assert_eq!(store.outbox_row(a.id).await.unwrap().unwrap().attempts, 2);
    // A lapsed lease is claimed again; the first claimant's word no longer counts.
    let (five, six) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    assert_eq!(
        store
            .claim_outbox(five, 7_000, 100, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_outbox(six, 7_100, 1_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!finish(&store, a.id, five, &sent, 7_200).await);
    assert!(finish(&store, a.id, six, &sent, 7_200).await);
    let row = store.outbox_row(a.id).await.unwrap().unwrap();
    assert_eq!(
        (row.sent_at_ms, row.attempts, row.last_error),
        (Some(7_200), 3, None)
    );
    assert!(store.pending_outbox("offline:a").await.unwrap().is_none());
    // Sent, the key is free again.
    let next = outbox_row(tenant, Some("offline:a"), 8_000);
    assert_eq!(
        store.enqueue_outbox(&next, 8_000).await.unwrap(),
        Enqueued::Added
    );

    // Dropped rows stay, never claimed again.
    let seven = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(seven, 60_000, 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    let dropped = OutboxOutcome::Dropped {
        error: "bad payload".into(),
    };
    for row in &claimed {
        assert!(finish(&store, row.id, seven, &dropped, 60_000).await);
    }
    let row = store.outbox_row(later.id).await.unwrap().unwrap();
    assert_eq!(row.dropped_at_ms, Some(60_000));
    assert!(store
        .claim_outbox(seven, 10_000_000, 1_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .outbox_row(uuid::Uuid::new_v4())
        .await
        .unwrap()
        .is_none());
}

async fn outbox_rows_go_with_their_message_in_its_group_commit(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (a, b) = (ConversationId::new(), ConversationId::new());
    let tenant = first.tenant_id;
    let key_a = format!("offline:{a}");
    // Several at once share group commits; two rows of one key are one.
    let mut tasks = Vec::new();
    let mut ids = Vec::new();
    for (i, conversation) in [a, a, b].into_iter().enumerate() {
        let row = outbox_row(tenant, Some(&format!("offline:{conversation}")), 0);
        ids.push(row.id);
        let store = store.clone();
        let message = visitor_message(&first, conversation, "hi", Some(&format!("k{i}")));
        tasks.push(tokio::spawn(async move {
            store
                .append_message_with(message, vec![row], None)
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().created);
    }
    let pending_a = store
        .pending_outbox(&key_a)
        .await
        .unwrap()
        .expect("a's row");
    assert!(
        ids[..2].contains(&pending_a.id),
        "one of a's rows stands for both"
    );
    let pending_b = store
        .pending_outbox(&format!("offline:{b}"))
        .await
        .unwrap()
        .expect("b's row");
    assert_eq!(pending_b.id, ids[2]);
    assert_eq!(pending_b.payload, r#"{"type":"test"}"#);

    // A repeated client_message_id stores neither the message nor its row.
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 1, 60_000, 100).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let sent = store::OutboxOutcome::Sent {
        again_at_ms: 1,
        emailed: None,
    };
    let finished: Vec<store::Finished> = claimed
        .iter()
        .map(|r| store::Finished {
            id: r.id,
            outcome: sent.clone(),
            answer: None,
        })
        .collect();
    assert_eq!(
        store.finish_outbox(claim, &finished, 2).await.unwrap(),
        [true, true],
        "a round is recorded at once"
    );
    let again = outbox_row(tenant, Some(&key_a), 0);
    let repeated = store
        .append_message_with(
            visitor_message(&first, a, "hi", Some("k0")),
            vec![again.clone()],
            None,
        )
        .await
        .unwrap();
    assert!(!repeated.created);
    assert!(store.pending_outbox(&key_a).await.unwrap().is_none());
    assert!(store.outbox_row(again.id).await.unwrap().is_none());
    // A message into a room it does not belong in stores no row either.
    let mut wrong = visitor_message(&first, a, "hi", None);
    wrong.tenant_id = TenantId::new();
    let stray = outbox_row(tenant, Some(&key_a), 0);
    assert!(store
        .append_message_with(wrong, vec![stray.clone()], None)
        .await
        .is_err());
    assert!(store.outbox_row(stray.id).await.unwrap().is_none());
    // A new message of that room adds it again.
    let next = outbox_row(tenant, Some(&key_a), 0);
    assert!(
        store
            .append_message_with(
                visitor_message(&first, a, "more", None),
                vec![next.clone()],
                None
            )
            .await
            .unwrap()
            .created
    );
    assert_eq!(
        store.pending_outbox(&key_a).await.unwrap().map(|r| r.id),
        Some(next.id)
    );
}

async fn concurrent_outbox_claims_take_disjoint_rows(db: Db) {
    let tenant = TenantId::new();
    let first = db.open().await;
    for i in 0..40 {
        first
            .enqueue_outbox(&outbox_row(tenant, None, i), 0)
            .await
            .unwrap();
    }
    let handles: Vec<Arc<dyn Store>> = vec![first, db.open().await, db.open().await];
    let barrier = Arc::new(Barrier::new(handles.len()));
    let mut tasks = Vec::new();
    for store in handles {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            loop {
                let rows = store
                    .claim_outbox(uuid::Uuid::new_v4(), 1_000, 60_000, 3)
                    .await
                    .unwrap();
                if rows.is_empty() {
                    return mine;
                }
                mine.extend(rows.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 40, "every row claimed");
    assert_eq!(distinct.len(), 40, "no row claimed twice");
}

async fn visitors_email_state_is_per_tenant_and_transcripts_one_per_interval(db: Db) {
    use store::TranscriptRequested;
    let store = db.open().await;
    let (tenant, other) = (TenantId::new(), TenantId::new());
    let (with_email, without) = (ConversationId::new(), ConversationId::new());
    let context = VisitorContext {
        email: Some("ana@example.com".into()),
        url: Some("https://shop.example/p".into()),
        ..Default::default()
    };
    store
        .save_visitor_context(tenant, with_email, &context, 1)
        .await
        .unwrap();
    let nameless = VisitorContext {
        name: Some("Bo".into()),
        ..Default::default()
    };
    store
        .save_visitor_context(tenant, without, &nameless, 1)
        .await
        .unwrap();

    let state = store
        .visitor_email(tenant, with_email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.email.as_deref(), Some("ana@example.com"));
    assert_eq!(state.url.as_deref(), Some("https://shop.example/p"));
    assert_eq!(
        (state.emailed_seq, state.emailed_at_ms, state.unsubscribed),
        (0, None, false)
    );
    assert!(store
        .visitor_email(other, with_email)
        .await
        .unwrap()
        .is_none());

    mark_emailed(&store, tenant, with_email, 5, 10).await;
    mark_emailed(&store, tenant, with_email, 3, 20).await;
    mark_emailed(&store, other, with_email, 9, 30).await;
    let state = store
        .visitor_email(tenant, with_email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (state.emailed_seq, state.emailed_at_ms),
        (5, Some(20)),
        "never backwards"
    );

    assert!(!store.unsubscribe_email(other, with_email).await.unwrap());
    assert!(
        !store
            .visitor_email(tenant, with_email)
            .await
            .unwrap()
            .unwrap()
            .unsubscribed
    );
    assert!(store.unsubscribe_email(tenant, with_email).await.unwrap());
    assert!(
        store
            .visitor_email(tenant, with_email)
            .await
            .unwrap()
            .unwrap()
            .unsubscribed
    );
    assert!(!store
        .unsubscribe_email(tenant, ConversationId::new())
        .await
        .unwrap());

    // A transcript needs an email; one per interval; its row is stored with it.
    let row = outbox_row(tenant, None, 100);
    assert_eq!(
        store
            .request_transcript(tenant, without, 100, 1_000, &row)
            .await
            .unwrap(),
        TranscriptRequested::NoEmail
    );
    assert_eq!(
        store
            .request_transcript(other, with_email, 100, 1_000, &row)
            .await
            .unwrap(),
        TranscriptRequested::NoEmail
    );
    assert!(store.outbox_row(row.id).await.unwrap().is_none());
    assert_eq!(
        store
            .request_transcript(tenant, with_email, 100, 1_000, &row)
            .await
            .unwrap(),
        TranscriptRequested::Queued
    );
    assert!(store.outbox_row(row.id).await.unwrap().is_some());
    let soon = outbox_row(tenant, None, 500);
    assert_eq!(
        store
            .request_transcript(tenant, with_email, 500, 1_000, &soon)
            .await
            .unwrap(),
        TranscriptRequested::TooSoon
    );
    assert!(store.outbox_row(soon.id).await.unwrap().is_none());
    let state = store
        .visitor_email(tenant, with_email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.transcript_at_ms, Some(100));
    let later = outbox_row(tenant, None, 1_100);
    assert_eq!(
        store
            .request_transcript(tenant, with_email, 1_100, 1_000, &later)
            .await
            .unwrap(),
        TranscriptRequested::Queued
    );
}

async fn a_rounds_email_states_and_pending_replies_are_read_at_once_in_their_tenant_and_channel(
    db: Db,
) {
    let s = scopes(&db).await;
    let (store, first) = (&s.store, &s.first);
    let tenant = first.tenant_id;
    let (a, b, silent) = (
        ConversationId::new(),
        ConversationId::new(),
        ConversationId::new(),
    );
    for (conversation, email) in [(a, "a@example.com"), (b, "b@example.com")] {
        let context = VisitorContext {
            email: Some(email.into()),
            ..Default::default()
        };
        store
            .save_visitor_context(tenant, conversation, &context, 1)
            .await
            .unwrap();
    }
    mark_emailed(store, tenant, b, 7, 40).await;
    let states = store
        .visitor_emails(&[(tenant, a), (tenant, b), (tenant, silent)])
        .await
        .unwrap();
    assert_eq!(states.len(), 2, "no context, no state");
    assert_eq!(states[&a].email.as_deref(), Some("a@example.com"));
    assert_eq!(
        (states[&b].emailed_seq, states[&b].emailed_at_ms),
        (7, Some(40))
    );
    let other = s.other_tenant_channel.tenant_id;
    assert!(store
        .visitor_emails(&[(other, a), (other, b)])
        .await
        .unwrap()
        .is_empty());
    assert!(store.visitor_emails(&[]).await.unwrap().is_empty());

    // a: a visitor message, three replies (one delivered, one deleted);
    // b: two replies.
    append_all(store.as_ref(), first, a, &["hello"]).await;
    let mut replies = Vec::new();
    for text in ["one", "two", "three"] {
        let reply = store
            .append_message(agent_reply(first, a, text))
            .await
            .unwrap();
        replies.push(reply.message);
    }
    store
        .mark_delivered(tenant, replies[0].id, None)
        .await
        .unwrap();
    store
        .edit_message(tenant, a, replies[2].id, None, 5, None)
        .await
        .unwrap();
    let mut in_b = Vec::new();
    for text in ["b1", "b2"] {
        in_b.push(
            store
                .append_message(agent_reply(first, b, text))
                .await
                .unwrap()
                .message,
        );
    }
    let scope = first.channel.scope();
    let after = |conversation, after_seq| store::RepliesAfter {
        scope,
        conversation,
        after_seq,
    };
    let found = store
        .pending_replies(&[after(a, 0), after(b, 0), after(silent, 0)], 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    let contents = |m: &[Message]| m.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    assert_eq!(
        contents(&found[&a]),
        ["two"],
        "pending, not deleted, agents' only"
    );
    assert_eq!(contents(&found[&b]), ["b1", "b2"], "oldest first");
    // After a seq; at most `limit_each` per conversation, each its own.
    let found = store
        .pending_replies(&[after(a, replies[1].seq), after(b, 0)], 1)
        .await
        .unwrap();
    assert!(!found.contains_key(&a));
    assert_eq!(contents(&found[&b]), ["b1"]);
    // Another tenant's or channel's scope reads nothing.
    let elsewhere = store::RepliesAfter {
        scope: s.other_channel.scope(),
        ..after(b, 0)
    };
    let stranger = store::RepliesAfter {
        scope: s.other_tenant_channel.scope(),
        ..after(b, 0)
    };
    assert!(store
        .pending_replies(&[elsewhere, stranger], 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.pending_replies(&[], 10).await.unwrap().is_empty());
}

// --- webhooks ----------------------------------------------------------------------

fn a_webhook(tenant: TenantId, url: &str) -> chatgate::domain::webhook::Webhook {
    use chatgate::domain::webhook::{EventFilter, Webhook, WebhookSecret, WebhookUrl};
    Webhook {
        id: chatgate::domain::WebhookId::new(),
        tenant_id: tenant,
        url: WebhookUrl::parse(url).unwrap(),
        events: EventFilter::All,
        secret: WebhookSecret::generate(),
        enabled: true,
        paused_reason: None,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    }
}

/// A webhook row of `webhook` in the order `key`, with `body` for its payload.
fn webhook_row(tenant: TenantId, webhook: uuid::Uuid, key: &str, body: &str) -> store::NewOutbox {
    store::NewOutbox {
        order_key: Some(key.to_string()),
        target: Some(webhook),
        payload: body.to_string(),
        ..store::NewOutbox::new("webhook", tenant, String::new(), 1_000)
    }
}

/// The webhook events waiting, wherever the store keeps them (SQLite's
/// log, the outbox), in their order, taken as a worker takes them (the
/// outbox's due at `now_ms`) and recorded as sent.
async fn take_events(store: &Arc<dyn Store>, now_ms: i64) -> Vec<store::OutboxRow> {
    let mut rows = Vec::new();
    let tail = store.webhook_log_tail(1_000).await.unwrap();
    if let Some(upto) = tail.upto {
        let sent: Vec<store::Finished> = tail
            .logged
            .iter()
            .map(|l| store::Finished {
                id: l.row.id,
                outcome: store::OutboxOutcome::Sent {
                    again_at_ms: now_ms,
                    emailed: None,
                },
                answer: None,
            })
            .collect();
        store
            .finish_webhook_log(upto, &tail.logged, &sent, now_ms)
            .await
            .unwrap();
        rows.extend(tail.logged.into_iter().map(|l| l.row));
    }
    let claim = uuid::Uuid::new_v4();
    let claimed = store
        .claim_outbox(claim, now_ms, 60_000, 100)
        .await
        .unwrap();
    let sent: Vec<store::Finished> = claimed
        .iter()
        .map(|r| store::Finished {
            id: r.id,
            outcome: store::OutboxOutcome::Sent {
                again_at_ms: now_ms,
                emailed: None,
            },
            answer: None,
        })
        .collect();
    store.finish_outbox(claim, &sent, now_ms).await.unwrap();
    rows.extend(claimed);
    rows
}

/// A round's outcomes for its events, in order: recorded as a worker
/// records them, in the log (SQLite) or on the outbox claim (PostgreSQL).
/// What came from neither (the log's events behind an outbox row of their
/// key) go behind it untried.
async fn deliver_round(
    store: &Arc<dyn Store>,
    now_ms: i64,
    outcomes: &[(&str, store::OutboxOutcome, Option<store::Answer>)],
) -> Vec<String> {
    let tail = store.webhook_log_tail(1_000).await.unwrap();
    let claim = uuid::Uuid::new_v4();
    let claimed = store
        .claim_outbox(claim, now_ms, 60_000, 100)
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut logged_done = Vec::new();
    let mut claimed_done = Vec::new();
    let mut held = Vec::new();
    for l in &tail.logged {
        if l.row
            .order_key
            .as_ref()
            .is_some_and(|k| tail.held.contains(k))
        {
            held.push(event_name(&l.row.payload));
            continue;
        }
        order.push((true, &l.row));
    }
    order.extend(claimed.iter().map(|r| (false, r)));
    let mut bodies = Vec::new();
    for ((from_log, row), (body, outcome, answer)) in order.iter().zip(outcomes) {
        assert_eq!(event_name(&row.payload), *body, "events in order");
        bodies.push(event_name(&row.payload));
        let done = store::Finished {
            id: row.id,
            outcome: outcome.clone(),
            answer: *answer,
        };
        if *from_log {
            logged_done.push(done);
        } else {
            claimed_done.push(done);
        }
    }
    assert_eq!(
        order.len(),
        outcomes.len(),
        "events due: {bodies:?}, then {order:?}"
    );
    if let Some(upto) = tail.upto {
        store
            .finish_webhook_log(upto, &tail.logged, &logged_done, now_ms)
            .await
            .unwrap();
    }
    assert!(store
        .finish_outbox(claim, &claimed_done, now_ms)
        .await
        .unwrap()
        .iter()
        .all(|done| *done));
    bodies.extend(held.into_iter().map(|h| format!("held:{h}")));
    bodies
}

/// A test event's body, named `id`.
fn event_body(id: &str) -> String {
    serde_json::json!({"id": id, "type": "message.created"}).to_string()
}

/// The name `event_body` gave an event.
fn event_name(body: &str) -> String {
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    body["id"].as_str().unwrap_or_default().to_string()
}

/// A change's webhook events are delivered once each, in order per key,
/// whether the store keeps them in SQLite's log or the outbox: a failed
/// one holds back the later ones of its conversation, new ones included,
/// and the delivery log shows every try; sending again, erasing and
/// pruning see both.
async fn change_events_go_once_in_order_wherever_the_store_keeps_them(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let hook = a_webhook(tenant, "https://a.example/in");
    store.insert_webhook(&hook).await.unwrap();
    let target = hook.id.0;
    let (a, b) = (ConversationId::new(), ConversationId::new());
    let say = |room: ConversationId, body: &str| {
        let store = store.clone();
        let message = visitor_message(&first, room, body, None);
        let row = webhook_row(
            tenant,
            target,
            &format!("{target}:{room}"),
            &event_body(body),
        );
        async move {
            assert!(
                store
                    .append_message_with(message, vec![row], None)
                    .await
                    .unwrap()
                    .created
            );
        }
    };
    for (room, body) in [(a, "a1"), (b, "b1"), (a, "a2"), (a, "a3")] {
        say(room, body).await;
    }
    let sent = |at| store::OutboxOutcome::Sent {
        again_at_ms: at,
        emailed: None,
    };
    let ok = Some(store::Answer {
        status: Some(200),
        duration_ms: 12,
    });
    let retry = store::OutboxOutcome::Retry {
        at_ms: 50_000,
        error: "503 Service Unavailable".into(),
    };
    let untried = store::OutboxOutcome::Later { at_ms: 2_000 };
    // a1 and b1 sent, a2 failed, a3 given back untried behind it.
    let failed = Some(store::Answer {
        status: Some(503),
        duration_ms: 30,
    });
    assert_eq!(
        deliver_round(
            &store,
            2_000,
            &[
                ("a1", sent(2_000), ok),
                ("b1", sent(2_000), ok),
                ("a2", retry.clone(), failed),
                ("a3", untried, None),
            ],
        )
        .await,
        ["a1", "b1", "a2", "a3"]
    );
    // Nothing is due before a2's retry; a new event of a waits behind it,
    // one of b does not.
    say(a, "a4").await;
    say(b, "b2").await;
    let held = deliver_round(&store, 3_000, &[("b2", sent(3_000), ok)]).await;
    assert!(
        held == ["b2", "held:a4"] || held == ["b2"],
        "a4 behind a2: {held:?}"
    );
    assert_eq!(
        deliver_round(&store, 4_000, &[]).await,
        Vec::<String>::new()
    );
    // a2 at its retry; the events parked behind it follow.
    assert_eq!(
        deliver_round(&store, 50_000, &[("a2", sent(50_000), ok)]).await,
        ["a2"]
    );
    assert_eq!(
        deliver_round(
            &store,
            50_001,
            &[("a3", sent(50_001), ok), ("a4", sent(50_001), ok)],
        )
        .await,
        ["a3", "a4"]
    );

    // The delivery log: every event once, newest first, with its tries.
    let log = store
        .webhook_deliveries(tenant, hook.id, 100)
        .await
        .unwrap();
    let mut bodies: Vec<String> = log.iter().map(|d| d.id.to_string()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 6, "{log:?}");
    assert!(log.iter().all(|d| d.sent_at_ms.is_some()), "{log:?}");
    assert!(log.iter().all(|d| d.last_status == Some(200)), "{log:?}");
    let tried_twice = log.iter().filter(|d| d.attempts == 2).count();
    assert_eq!(tried_twice, 1, "a2 was tried twice: {log:?}");
    assert_eq!(
        store
            .webhook_deliveries(tenant, hook.id, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    let other = other_tenant(&db).await;
    assert!(store
        .webhook_deliveries(other, hook.id, 100)
        .await
        .unwrap()
        .is_empty());

    // Sent again: the same body as a new row, once; not from another tenant.
    for delivery in log.iter().map(|d| d.id) {
        assert_eq!(
            store
                .redeliver(other, hook.id, delivery, 60_000)
                .await
                .unwrap(),
            None
        );
    }
    let b1 = log.iter().find(|d| d.event_id == "b1").expect("b1").id;
    let again = store
        .redeliver(tenant, hook.id, b1, 60_000)
        .await
        .unwrap()
        .expect("sent again");
    let taken = take_events(&store, 60_001).await;
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].id, event_name(&taken[0].payload)),
        (again, "b1".into())
    );

    // A round recorded while messages are being stored (on SQLite it
    // rides their group commit): each event taken once.
    let (taken, ..) = tokio::join!(
        take_events(&store, 65_000),
        say(b, "c1"),
        say(b, "c2"),
        say(b, "c3")
    );
    let mut names: Vec<String> = taken.iter().map(|r| event_name(&r.payload)).collect();
    names.extend(
        take_events(&store, 65_001)
            .await
            .iter()
            .map(|r| event_name(&r.payload)),
    );
    names.sort();
    assert_eq!(names, ["c1", "c2", "c3"]);
    assert!(take_events(&store, 65_002).await.is_empty());

    // Pruned: what was recorded before the cut goes (SQLite keeps the
    // log's last recorded event); a new event is still taken, once.
    store.prune_outbox(i64::MAX, 10_000).await.unwrap();
    let kept = store
        .webhook_deliveries(tenant, hook.id, 100)
        .await
        .unwrap();
    assert!(kept.len() <= 1, "{kept:?}");
    say(a, "a5").await;
    let taken = take_events(&store, 70_000).await;
    assert_eq!(
        taken
            .iter()
            .map(|r| event_name(&r.payload))
            .collect::<Vec<_>>(),
        ["a5"]
    );
    assert!(take_events(&store, 70_001).await.is_empty());

    // Erased before it was sent: given up, its body gone, never taken.
    say(a, "a6 with the visitor's secret").await;
    let at = now_ms();
    store
        .erase_conversations(&erasure(tenant, vec![a], at, false), None)
        .await
        .unwrap();
    assert!(take_events(&store, 80_000).await.is_empty());
    let log = store
        .webhook_deliveries(tenant, hook.id, 100)
        .await
        .unwrap();
    let erased: Vec<_> = log.iter().filter(|d| d.dropped_at_ms == Some(at)).collect();
    assert_eq!(erased.len(), 1, "{log:?}");
    assert_eq!(
        erased[0].last_error.as_deref(),
        Some("the visitor was erased")
    );
    assert_eq!(erased[0].event_id, "");
}

async fn webhooks_and_their_delivery_logs_stay_in_their_tenant(db: Db) {
    use chatgate::domain::webhook::{EventFilter, EventType, WebhookUrl};
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let other = other_tenant(&db).await;
    let mut hook = a_webhook(tenant, "https://a.example/in");
    store.insert_webhook(&hook).await.unwrap();
    let theirs = a_webhook(other, "https://b.example/in");
    store.insert_webhook(&theirs).await.unwrap();
    assert_eq!(store.webhooks(tenant).await.unwrap(), vec![hook.clone()]);
    assert_eq!(
        store.webhook(tenant, hook.id).await.unwrap(),
        Some(hook.clone())
    );
    assert_eq!(store.webhook(other, hook.id).await.unwrap(), None);

    hook.url = WebhookUrl::parse("https://a.example/v2").unwrap();
    hook.events = EventFilter::Only(vec![EventType::MessageCreated]);
    hook.updated_at_ms = 2_000;
    assert!(store.update_webhook(&hook).await.unwrap());
    assert_eq!(
        store.webhook(tenant, hook.id).await.unwrap(),
        Some(hook.clone())
    );
    let mut forged = hook.clone();
    forged.tenant_id = other;
    assert!(
        !store.update_webhook(&forged).await.unwrap(),
        "another tenant's"
    );

    // Pausing: once, and only in its tenant.
    assert!(!store
        .pause_webhook(other, hook.id, "x", 3_000)
        .await
        .unwrap());
    assert!(store
        .pause_webhook(tenant, hook.id, "down", 3_000)
        .await
        .unwrap());
    assert!(!store
        .pause_webhook(tenant, hook.id, "again", 3_100)
        .await
        .unwrap());
    let paused = store.webhook(tenant, hook.id).await.unwrap().unwrap();
    assert!(!paused.enabled);
    assert_eq!(paused.paused_reason.as_deref(), Some("down"));

    // The log: the rows whose target it is, newest first, with their attempts.
    let body = |n: u32| format!(r#"{{"id":"evt_{n}","type":"message.created"}}"#);
    let first_row = webhook_row(tenant, hook.id.0, "k", &body(1));
    let second_row = webhook_row(tenant, hook.id.0, "k", &body(2));
    store.enqueue_outbox(&first_row, 1_000).await.unwrap();
    store.enqueue_outbox(&second_row, 1_000).await.unwrap();
    store
        .enqueue_outbox(&webhook_row(other, theirs.id.0, "k", &body(3)), 1_000)
        .await
        .unwrap();
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 2_000, 1_000, 10).await.unwrap();
    let finished: Vec<store::Finished> = claimed
        .iter()
        .filter(|r| r.id == first_row.id)
        .map(|r| store::Finished {
            id: r.id,
            outcome: store::OutboxOutcome::Retry {
                at_ms: 9_000,
                error: "HTTP 500".into(),
            },
            answer: Some(store::Answer {
                status: Some(500),
                duration_ms: 12,
            }),
        })
        .collect();
    assert_eq!(
        store.finish_outbox(claim, &finished, 2_100).await.unwrap(),
        [true]
    );
    let log = store.webhook_deliveries(tenant, hook.id, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    let failed = log.iter().find(|d| d.id == first_row.id).unwrap();
    assert_eq!(failed.event_id, "evt_1");
    assert_eq!(failed.event_type, "message.created");
    assert_eq!((failed.attempts, failed.last_status), (1, Some(500)));
    assert_eq!(failed.last_duration_ms, Some(12));
    assert_eq!(failed.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(failed.status(), "retrying");
    assert!(store
        .webhook_deliveries(other, hook.id, 10)
        .await
        .unwrap()
        .is_empty());

    // Send again: a new row with the same body, in its order key.
    assert_eq!(
        store
            .redeliver(other, hook.id, first_row.id, 5_000)
            .await
            .unwrap(),
        None
    );
    let again = store
        .redeliver(tenant, hook.id, first_row.id, 5_000)
        .await
        .unwrap()
        .expect("redelivered");
    let row = store.outbox_row(again).await.unwrap().unwrap();
    assert_eq!(row.payload, first_row.payload);
    assert_eq!(row.order_key.as_deref(), Some("k"));
    assert_eq!(row.target, Some(hook.id.0));
    assert_eq!(
        (row.created_at_ms, row.due_at_ms, row.attempts),
        (5_000, 5_000, 0)
    );

    assert!(!store.delete_webhook(other, hook.id).await.unwrap());
    assert!(store.delete_webhook(tenant, hook.id).await.unwrap());
    assert!(store.webhooks(tenant).await.unwrap().is_empty());
    assert_eq!(store.webhooks(other).await.unwrap(), vec![theirs]);
}

async fn ordered_outbox_rows_go_one_at_a_time_per_key_behind_a_failing_one(db: Db) {
    let store = db.open().await;
    let tenant = TenantId::new();
    let target = uuid::Uuid::new_v4();
    let rows: Vec<store::NewOutbox> = ["a", "a", "b", "a"]
        .iter()
        .map(|key| webhook_row(tenant, target, key, "{}"))
        .collect();
    for row in &rows {
        store.enqueue_outbox(row, 1_000).await.unwrap();
    }
    // Every row of a key is claimed together, in insertion order.
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 2_000, 10_000, 10).await.unwrap();
    let ids: Vec<uuid::Uuid> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(ids, rows.iter().map(|r| r.id).collect::<Vec<_>>());
    // The first of `a` fails (retried later), the rest of `a` go back
    // untried; `b` is sent.
    let outcome = |id, outcome| store::Finished {
        id,
        outcome,
        answer: None,
    };
    let finished = vec![
        outcome(
            rows[0].id,
            store::OutboxOutcome::Retry {
                at_ms: 5_000,
                error: "down".into(),
            },
        ),
        outcome(rows[1].id, store::OutboxOutcome::Later { at_ms: 2_000 }),
        outcome(
            rows[2].id,
            store::OutboxOutcome::Sent {
                again_at_ms: 2_000,
                emailed: None,
            },
        ),
        outcome(rows[3].id, store::OutboxOutcome::Later { at_ms: 2_000 }),
    ];
    store.finish_outbox(claim, &finished, 2_000).await.unwrap();
    // Until the failed row is due again, its key's later rows wait; a
    // new key goes at once.
    let late = webhook_row(tenant, target, "c", "{}");
    store.enqueue_outbox(&late, 2_000).await.unwrap();
    let claimed = store
        .claim_outbox(uuid::Uuid::new_v4(), 3_000, 10_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [late.id]);
    // Once it is due, the whole key in order; a claimed row holds its
    // key's later rows from any other claim.
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 6_000, 10_000, 1).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [rows[0].id]
    );
    assert!(store
        .claim_outbox(uuid::Uuid::new_v4(), 6_000, 10_000, 10)
        .await
        .unwrap()
        .is_empty());
}

/// After an outage the receiver's rows waiting for a retry (its own
/// failures: no answer, 5xx, 429) are due at once; a row it refused (4xx),
/// another receiver's rows and claimed rows keep their time.
async fn a_receiver_back_gets_its_waiting_rows_at_once(db: Db) {
    let store = db.open().await;
    let tenant = TenantId::new();
    let (back, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let rows = [
        webhook_row(tenant, back, "k1", "{}"),
        webhook_row(tenant, back, "k2", "{}"),
        webhook_row(tenant, back, "k3", "{}"),
        webhook_row(tenant, other, "k4", "{}"),
        webhook_row(tenant, back, "k5", "{}"),
    ];
    for row in &rows {
        store.enqueue_outbox(row, 1_000).await.unwrap();
    }
    let claim = uuid::Uuid::new_v4();
    assert_eq!(
        store
            .claim_outbox(claim, 2_000, 10_000, 10)
            .await
            .unwrap()
            .len(),
        5
    );
    let failed = |row: &store::NewOutbox, status: Option<u16>| store::Finished {
        id: row.id,
        outcome: store::OutboxOutcome::Retry {
            at_ms: 60_000,
            error: "down".into(),
        },
        answer: status.map(|s| store::Answer {
            status: Some(s),
            duration_ms: 3,
        }),
    };
    let finished = [
        failed(&rows[0], None),
        failed(&rows[1], Some(400)),
        failed(&rows[2], Some(503)),
        failed(&rows[3], None),
        failed(&rows[4], Some(429)),
    ];
    store.finish_outbox(claim, &finished, 2_000).await.unwrap();
    // Nothing is due before the receiver is back.
    assert!(store
        .claim_outbox(uuid::Uuid::new_v4(), 3_000, 10_000, 10)
        .await
        .unwrap()
        .is_empty());
    // Another tenant's receiver being back moves none of these.
    assert_eq!(
        store
            .retry_targets_now(&[uuid::Uuid::new_v4()], 3_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.retry_targets_now(&[back], 3_000).await.unwrap(), 3);
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 3_000, 10_000, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        [rows[0].id, rows[2].id, rows[4].id]
    );
    // Claimed rows are left to their claim; the refused row keeps its time.
    assert_eq!(store.retry_targets_now(&[back], 4_000).await.unwrap(), 0);
    let refused = store.outbox_row(rows[1].id).await.unwrap().unwrap();
    assert_eq!(refused.due_at_ms, 60_000);
    let others = store.outbox_row(rows[3].id).await.unwrap().unwrap();
    assert_eq!(others.due_at_ms, 60_000);
}

/// Rows behind a waiting row of their key (a failure's retry, or a
/// postponement) are parked, not read by every claim, and come back in
/// order, all together, once that row is sent or dropped.
async fn rows_behind_a_waiting_row_come_back_in_order_once_it_is_sent(db: Db) {
    let store = db.open().await;
    let tenant = TenantId::new();
    let target = uuid::Uuid::new_v4();
    let ids = |rows: &[store::OutboxRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    let finish = |id, outcome| store::Finished {
        id,
        outcome,
        answer: None,
    };
    // (A failed row parks the rows behind it; a postponed one holds them
    // back by the claim's condition alone: when it is due again, they go
    // with it, after it.)
    for (head_outcome, sent_or_dropped, parks) in [
        (
            store::OutboxOutcome::Retry {
                at_ms: 50_000,
                error: "down".into(),
            },
            store::OutboxOutcome::Sent {
                again_at_ms: 0,
                emailed: None,
            },
            true,
        ),
        (
            store::OutboxOutcome::Later { at_ms: 50_000 },
            store::OutboxOutcome::Dropped {
                error: "gone".into(),
            },
            false,
        ),
    ] {
        let key = uuid::Uuid::new_v4().to_string();
        let head = webhook_row(tenant, target, &key, "{}");
        store.enqueue_outbox(&head, 1_000).await.unwrap();
        let claim = uuid::Uuid::new_v4();
        let claimed = store.claim_outbox(claim, 2_000, 10_000, 10).await.unwrap();
        assert_eq!(ids(&claimed), [head.id]);
        // Rows of the key come while the head is out.
        let mut behind = Vec::new();
        for _ in 0..3 {
            let row = webhook_row(tenant, target, &key, "{}");
            store.enqueue_outbox(&row, 2_500).await.unwrap();
            behind.push(row.id);
        }
        store
            .finish_outbox(claim, &[finish(head.id, head_outcome.clone())], 3_000)
            .await
            .unwrap();
        // A row of the key added while the head waits waits too; another
        // key goes at once.
        let late = webhook_row(tenant, target, &key, "{}");
        store.enqueue_outbox(&late, 4_000).await.unwrap();
        behind.push(late.id);
        let other = webhook_row(tenant, target, &uuid::Uuid::new_v4().to_string(), "{}");
        store.enqueue_outbox(&other, 4_000).await.unwrap();
        let c = uuid::Uuid::new_v4();
        let claimed = store.claim_outbox(c, 5_000, 10_000, 10).await.unwrap();
        assert_eq!(ids(&claimed), [other.id]);
        let sent = store::OutboxOutcome::Sent {
            again_at_ms: 0,
            emailed: None,
        };
        store
            .finish_outbox(c, &[finish(other.id, sent.clone())], 5_000)
            .await
            .unwrap();
        for at in [6_000, 7_000] {
            assert!(store
                .claim_outbox(uuid::Uuid::new_v4(), at, 1, 10)
                .await
                .unwrap()
                .is_empty());
        }
        // Due again, the head goes alone (or first, when nothing was
        // parked); then the rest, in order, at once.
        let c = uuid::Uuid::new_v4();
        let claimed = store.claim_outbox(c, 60_000, 10_000, 10).await.unwrap();
        if !parks {
            let mut all = vec![head.id];
            all.extend(&behind);
            assert_eq!(ids(&claimed), all);
            let later = behind
                .iter()
                .map(|&id| finish(id, store::OutboxOutcome::Later { at_ms: 60_000 }));
            let mut done = vec![finish(head.id, sent_or_dropped)];
            done.extend(later);
            store.finish_outbox(c, &done, 60_000).await.unwrap();
            let claimed = store
                .claim_outbox(uuid::Uuid::new_v4(), 60_001, 10_000, 10)
                .await
                .unwrap();
            assert_eq!(ids(&claimed), behind);
            continue;
        }
        assert_eq!(ids(&claimed), [head.id]);
        store
            .finish_outbox(c, &[finish(head.id, sent_or_dropped)], 60_000)
            .await
            .unwrap();
        let claimed = store
            .claim_outbox(uuid::Uuid::new_v4(), 60_001, 10_000, 10)
            .await
            .unwrap();
        assert_eq!(ids(&claimed), behind);
    }
}

/// A long backlog parked behind a waiting row (a receiver's outage) comes
/// back a bounded part per round, not in one statement that would hold the
/// writer for all of it: the first claim after the head is sent sees only
/// a prefix of the backlog, and each round's sends release the next, in
/// order, every row once.
async fn a_long_parked_backlog_comes_back_a_part_per_round_in_order(db: Db) {
    let store = db.open().await;
    let tenant = TenantId::new();
    let target = uuid::Uuid::new_v4();
    let key = uuid::Uuid::new_v4().to_string();
    let sent = || store::OutboxOutcome::Sent {
        again_at_ms: 0,
        emailed: None,
    };
    let head = webhook_row(tenant, target, &key, "{}");
    store.enqueue_outbox(&head, 1_000).await.unwrap();
    let claim = uuid::Uuid::new_v4();
    assert_eq!(
        store
            .claim_outbox(claim, 2_000, 10_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .finish_outbox(
            claim,
            &[store::Finished {
                id: head.id,
                outcome: store::OutboxOutcome::Retry {
                    at_ms: 50_000,
                    error: "down".into(),
                },
                answer: None,
            }],
            3_000,
        )
        .await
        .unwrap();
    let mut backlog = Vec::new();
    for _ in 0..1_200 {
        let row = webhook_row(tenant, target, &key, "{}");
        store.enqueue_outbox(&row, 4_000).await.unwrap();
        backlog.push(row.id);
    }
    // The claim parks them all behind the head.
    assert!(store
        .claim_outbox(uuid::Uuid::new_v4(), 5_000, 10_000, 10_000)
        .await
        .unwrap()
        .is_empty());
    let claim = uuid::Uuid::new_v4();
    let claimed = store
        .claim_outbox(claim, 60_000, 10_000, 10_000)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [head.id]);
    let mut done = vec![store::Finished {
        id: head.id,
        outcome: sent(),
        answer: None,
    }];
    let mut delivered = Vec::new();
    let mut rounds = 0;
    let mut at = 60_000;
    let mut claim = claim;
    loop {
        store.finish_outbox(claim, &done, at).await.unwrap();
        at += 1;
        let c = uuid::Uuid::new_v4();
        let claimed = store.claim_outbox(c, at, 10_000, 10_000).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        rounds += 1;
        assert!(
            claimed.len() < backlog.len(),
            "a round released the whole backlog at once"
        );
        delivered.extend(claimed.iter().map(|r| r.id));
        done = claimed
            .iter()
            .map(|r| store::Finished {
                id: r.id,
                outcome: sent(),
                answer: None,
            })
            .collect();
        claim = c;
    }
    assert!(rounds >= 2, "{rounds} rounds");
    assert_eq!(delivered, backlog);
}

/// The housekeeping deletes rows sent or dropped before its time, a chunk
/// at a time, and never a row still to send.
async fn outbox_rows_done_with_are_pruned_and_unsent_ones_kept(db: Db) {
    let store = db.open().await;
    let tenant = TenantId::new();
    let target = uuid::Uuid::new_v4();
    let rows: Vec<store::NewOutbox> = (0..5)
        .map(|i| webhook_row(tenant, target, &format!("k{i}"), "{}"))
        .collect();
    for row in &rows {
        store.enqueue_outbox(row, 1_000).await.unwrap();
    }
    let claim = uuid::Uuid::new_v4();
    assert_eq!(
        store
            .claim_outbox(claim, 2_000, 10_000, 10)
            .await
            .unwrap()
            .len(),
        5
    );
    let sent = store::OutboxOutcome::Sent {
        again_at_ms: 0,
        emailed: None,
    };
    let finished = [
        (0, sent.clone()),
        (1, sent.clone()),
        (
            2,
            store::OutboxOutcome::Dropped {
                error: "gone".into(),
            },
        ),
        (
            3,
            store::OutboxOutcome::Retry {
                at_ms: 9_000,
                error: "down".into(),
            },
        ),
        (4, store::OutboxOutcome::Later { at_ms: 9_000 }),
    ]
    .map(|(i, outcome)| store::Finished {
        id: rows[i].id,
        outcome,
        answer: None,
    });
    store.finish_outbox(claim, &finished, 3_000).await.unwrap();
    // Nothing done with before 3,000.
    assert_eq!(store.prune_outbox(3_000, 10).await.unwrap(), 0);
    // A chunk at a time.
    assert_eq!(store.prune_outbox(3_001, 2).await.unwrap(), 2);
    assert_eq!(store.prune_outbox(3_001, 2).await.unwrap(), 1);
    assert_eq!(store.prune_outbox(i64::MAX, 10).await.unwrap(), 0);
    for (i, row) in rows.iter().enumerate() {
        let kept = store.outbox_row(row.id).await.unwrap();
        assert_eq!(kept.is_some(), i >= 3, "row {i}");
    }
}

async fn changes_write_the_rows_they_make_in_their_own_transaction_or_none(db: Db) {
    use store::{MessageRows, PresenceRows, RoomRows};
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let target = uuid::Uuid::new_v4();
    // Each row's body says what it was made of.
    let of_message = MessageRows::new(move |m: &Message| {
        vec![webhook_row(
            m.tenant_id,
            target,
            &m.conversation_id.to_string(),
            &format!(r#"{{"id":"m","seq":{},"private":{}}}"#, m.seq, m.private),
        )]
    });
    let of_room = RoomRows::new(move |r: &chatgate::domain::Room| {
        vec![webhook_row(
            r.tenant_id,
            target,
            &r.id.to_string(),
            &format!(r#"{{"id":"r","state":"{}"}}"#, r.state.as_str()),
        )]
    });
    let pending = |store: Arc<dyn Store>| async move {
        let rows = take_events(&store, now_ms() + 1_000_000).await;
        rows.into_iter().map(|r| r.payload).collect::<Vec<_>>()
    };
    let room = ConversationId::new();
    let appended = store
        .append_message_with(
            visitor_message(&first, room, "hi", Some("k1")),
            Vec::new(),
            Some(of_message.clone()),
        )
        .await
        .unwrap();
    assert_eq!(appended.message.seq, 1);
    // A repeat of the same client_message_id stores nothing, writes no row.
    store
        .append_message_with(
            visitor_message(&first, room, "hi", Some("k1")),
            Vec::new(),
            Some(of_message.clone()),
        )
        .await
        .unwrap();
    let pending_append = store
        .enqueue_append(
            visitor_message(&first, room, "again", None),
            Some(of_message.clone()),
            None,
        )
        .await
        .unwrap();
    pending_append.await.unwrap();
    let answered = store
        .answer(
            tenant,
            room,
            first.admin.id,
            now_ms(),
            Some(of_room.clone()),
        )
        .await
        .unwrap();
    assert!(matches!(answered, store::Answered::Won(_)));
    // A lost race writes nothing.
    let lost = store
        .answer(
            tenant,
            room,
            first.admin.id,
            now_ms(),
            Some(of_room.clone()),
        )
        .await
        .unwrap();
    assert_eq!(lost, store::Answered::AlreadyAnswered);
    let note = store::NewNote {
        id: MessageId::new(),
        tenant_id: tenant,
        room,
        author_id: first.admin.id.0,
        author_name: None,
        author_avatar: None,
        content: "note".into(),
        at_ms: now_ms(),
    };
    store
        .add_note(note, Some(of_message.clone()))
        .await
        .unwrap()
        .unwrap();
    store
        .set_room_state(
            tenant,
            room,
            None,
            RoomState::Closed,
            now_ms(),
            Some(of_room.clone()),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .set_room_state(
            tenant,
            room,
            Some(RoomState::Open),
            RoomState::Queued,
            now_ms(),
            Some(of_room.clone())
        )
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        pending(store.clone()).await,
        [
            r#"{"id":"m","seq":1,"private":false}"#,
            r#"{"id":"m","seq":2,"private":false}"#,
            r#"{"id":"r","state":"open"}"#,
            r#"{"id":"m","seq":2,"private":true}"#,
            r#"{"id":"r","state":"closed"}"#,
        ]
    );
    let of_presence = PresenceRows::new(move |p: &AgentPresence| {
        vec![webhook_row(
            p.tenant_id,
            target,
            &p.agent_id.to_string(),
            &format!(r#"{{"state":"{}"}}"#, p.state.as_str()),
        )]
    });
    let other = other_tenant(&db).await;
    assert!(store
        .set_presence(
            other,
            first.admin.id,
            PresenceState::Away,
            None,
            1,
            Some(of_presence.clone())
        )
        .await
        .unwrap()
        .is_none());
    store
        .set_presence(
            tenant,
            first.admin.id,
            PresenceState::Away,
            None,
            1,
            Some(of_presence),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending(store.clone()).await, [r#"{"state":"away"}"#]);

    // DELIVERED and read marks write rows of the messages they change, once.
    let other_room = ConversationId::new();
    store
        .append_message(visitor_message(&first, other_room, "hi", None))
        .await
        .unwrap();
    let reply = store
        .append_message(agent_reply(&first, other_room, "hello"))
        .await
        .unwrap()
        .message;
    for _ in 0..2 {
        store
            .mark_delivered(tenant, reply.id, Some(of_message.clone()))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        store
            .visitor_read(tenant, other_room, 10, now_ms(), Some(of_message.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        pending(store.clone()).await,
        [
            r#"{"id":"m","seq":2,"private":false}"#,
            r#"{"id":"m","seq":2,"private":false}"#,
        ]
    );
}

// --- reports ---------------------------------------------------------------------

async fn report_facts_are_the_tenants_visitor_conversations_of_the_scope(db: Db) {
    use chatgate::domain::report::ConversationFacts;
    use chatgate::domain::Rating;
    use chatgate::store::ReportScope;
    let (store, first) = bootstrapped(&db).await;
    let (tenant, a) = (first.tenant_id, first.channel.id);
    let admin = first.admin.id;
    let bea = agent_in(tenant, "bea@example.com", Role::Agent);
    store.insert_agent(&bea).await.unwrap();
    let shop = Channel {
        id: ChannelId::new(),
        name: "Shop".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&shop).await.unwrap();
    let said = |room, kind, who: uuid::Uuid, at| {
        let mut m = visitor_message(&first, room, "text", None);
        m.sender_kind = kind;
        m.sender_id = who;
        m.sent_at_ms = at;
        m
    };

    // One: channel A, the admin's; a notice is no reply, the first agent
    // message is; closed and rated.
    let one = queued_room(store.as_ref(), &first, a, 1_000).await;
    store.answer(tenant, one, admin, 1_100, None).await.unwrap();
    for (kind, at) in [
        (SenderKind::System, 1_200),
        (SenderKind::Visitor, 1_300),
        (SenderKind::Agent, 1_500),
        (SenderKind::Agent, 1_700),
    ] {
        store
            .append_message(said(one, kind, admin.0, at))
            .await
            .unwrap();
    }
    store
        .set_room_state(tenant, one, None, RoomState::Closed, 5_000, None)
        .await
        .unwrap()
        .unwrap();
    let rating = Rating::parse(4, None, 5_100).unwrap();
    store
        .rate_room(tenant, a, one, &rating, None)
        .await
        .unwrap();

    // Two: the shop's, Bea's; its visitor's message and her reply queued
    // together (one group commit, or two).
    let two = queued_room(store.as_ref(), &first, shop.id, 2_000).await;
    store
        .answer(tenant, two, bea.id, 2_050, None)
        .await
        .unwrap();
    let mut visitor = said(two, SenderKind::Visitor, two.0, 2_100);
    visitor.channel_id = Some(shop.id);
    let mut reply = said(two, SenderKind::Agent, bea.id.0, 2_300);
    reply.channel_id = Some(shop.id);
    let visitor = store.enqueue_append(visitor, None, None).await.unwrap();
    let reply = store.enqueue_append(reply, None, None).await.unwrap();
    visitor.await.unwrap();
    reply.await.unwrap();

    // Three starts at the scope's end; an agent room and another tenant's
    // conversation are never a report's.
    queued_room(store.as_ref(), &first, a, 10_000).await;
    let team = team_room(tenant, &[admin, bea.id]);
    store.create_agent_room(&team).await.unwrap();
    let mut team_message = said(team.id, SenderKind::Agent, admin.0, 3_000);
    team_message.channel_id = None;
    store.append_message(team_message).await.unwrap();
    let other_tenant = TenantId::new();
    db.insert_tenant(other_tenant).await;
    let foreign = Channel {
        id: ChannelId::new(),
        tenant_id: other_tenant,
        name: "Foreign".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&foreign).await.unwrap();
    let mut theirs = visitor_message(&first, ConversationId::new(), "hi", None);
    theirs.tenant_id = other_tenant;
    theirs.channel_id = Some(foreign.id);
    theirs.sent_at_ms = 1_500;
    store.append_message(theirs).await.unwrap();

    let facts = |tenant, from_ms, to_ms, channel, agent, limit| {
        let store = store.clone();
        async move {
            store
                .report_facts(
                    &ReportScope {
                        tenant,
                        from_ms,
                        to_ms,
                        channel,
                        agent,
                    },
                    limit,
                )
                .await
                .unwrap()
        }
    };
    let f_one = ConversationFacts {
        created_ms: 1_000,
        first_response_ms: Some(1_500),
        closed_ms: Some(5_000),
        rating: Some(4),
    };
    let f_two = ConversationFacts {
        created_ms: 2_000,
        first_response_ms: Some(2_300),
        closed_ms: None,
        rating: None,
    };
    assert_eq!(
        facts(tenant, 0, 10_000, None, None, 100).await,
        [f_one, f_two]
    );
    assert_eq!(facts(tenant, 0, 10_000, None, None, 1).await, [f_one]);
    assert_eq!(facts(tenant, 1_000, 2_000, None, None, 100).await, [f_one]);
    assert_eq!(facts(tenant, 0, 1_000, None, None, 100).await, []);
    assert_eq!(
        facts(tenant, 0, 10_000, Some(shop.id), None, 100).await,
        [f_two]
    );
    assert_eq!(
        facts(tenant, 0, 10_000, None, Some(bea.id), 100).await,
        [f_two]
    );
    assert_eq!(
        facts(tenant, 0, 10_000, None, Some(admin), 100).await,
        [f_one]
    );
    assert_eq!(
        facts(tenant, 0, 10_000, Some(shop.id), Some(admin), 100).await,
        []
    );
    assert_eq!(facts(tenant, 0, 20_000, None, None, 100).await.len(), 3);
    // The other tenant's: its own only, and never through our channel.
    let their_facts = facts(other_tenant, 0, 10_000, None, None, 100).await;
    assert_eq!(their_facts.len(), 1);
    assert_eq!(their_facts[0].created_ms, 1_500);
    assert_eq!(their_facts[0].first_response_ms, None);
    assert_eq!(facts(other_tenant, 0, 10_000, Some(a), None, 100).await, []);

    // Reopened: not closed any more; the first response stays.
    store
        .set_room_state(tenant, one, None, RoomState::Open, 6_000, None)
        .await
        .unwrap()
        .unwrap();
    let reopened = facts(tenant, 0, 2_000, None, None, 100).await;
    assert_eq!(reopened[0].closed_ms, None);
    assert_eq!(reopened[0].first_response_ms, Some(1_500));

    // Migration 0023's backfill finds the same first responses in the
    // messages of conversations stored before it.
    let migration = match db.backend {
        Backend::Sqlite => include_str!("../../migrations/sqlite/0023_reports.sql"),
        Backend::Postgres => include_str!("../../migrations/postgres/0023_reports.sql"),
    };
    let start = migration.find("UPDATE conversations").unwrap();
    let backfill = &migration[start..start + migration[start..].find(';').unwrap() + 1];
    db.execute("UPDATE conversations SET first_response_at = NULL")
        .await;
    assert_eq!(
        facts(tenant, 0, 10_000, None, None, 100).await[0].first_response_ms,
        None
    );
    db.execute(backfill).await;
    let backfilled = facts(tenant, 0, 10_000, None, None, 100).await;
    assert_eq!(backfilled[0].first_response_ms, Some(1_500));
    assert_eq!(backfilled[1], f_two);
}

// --- every method of every store trait -----------------------------------------

/// Every method of the store traits (`src/store/mod.rs`) is called by some
/// case of this contract, so a new method cannot land without one: add a
/// case (good and bad inputs, another tenant, an unknown id) to `contract!`.
#[test]
fn every_store_method_has_a_contract_case() {
    let traits = include_str!("../../src/store/mod.rs");
    let contract = include_str!("store_contract.rs");
    let mut methods = Vec::new();
    let mut in_trait = false;
    for line in traits.lines() {
        if line.starts_with("pub trait ") && line.contains("Store: Send") {
            in_trait = true;
        } else if line == "}" {
            in_trait = false;
        } else if in_trait {
            let line = line.trim_start();
            let line = line.strip_prefix("async ").unwrap_or(line);
            if let Some(rest) = line.strip_prefix("fn ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                methods.push(name);
            }
        }
    }
    assert!(methods.len() >= 50, "the traits were read: {methods:?}");
    let uncovered: Vec<&String> = methods
        .iter()
        .filter(|name| !contract.contains(&format!(".{name}(")))
        .collect();
    assert!(
        uncovered.is_empty(),
        "store methods without a contract case: {uncovered:?}"
    );
}

fn agent_in(tenant: TenantId, email: &str, role: Role) -> Agent {
    Agent {
        id: AgentId::new(),
        tenant_id: tenant,
        email: email.into(),
        display_name: email.split('@').next().unwrap_or(email).into(),
        avatar_url: None,
        role,
        password_hash: "$argon2id$not-a-real-hash".into(),
        disabled: false,
    }
}

/// A second tenant, with nothing in it.
async fn other_tenant(db: &Db) -> TenantId {
    let tenant = TenantId::new();
    db.insert_tenant(tenant).await;
    tenant
}

/// An agent's message in a visitor conversation, PENDING until delivered.
fn agent_reply(first: &Bootstrap, conversation: ConversationId, text: &str) -> NewMessage {
    NewMessage {
        sender_kind: SenderKind::Agent,
        sender_id: first.admin.id.0,
        sender_name: Some(first.admin.display_name.clone()),
        state: DeliveryState::Pending,
        ..visitor_message(first, conversation, text, None)
    }
}

/// A visitor conversation with one message sent at `at_ms`, still queued.
async fn queued_room(
    store: &dyn Store,
    first: &Bootstrap,
    channel: ChannelId,
    at_ms: i64,
) -> ConversationId {
    let room = ConversationId::new();
    let mut new = visitor_message(first, room, &format!("waiting since {at_ms}"), None);
    new.channel_id = Some(channel);
    new.sent_at_ms = at_ms;
    store.append_message(new).await.unwrap();
    room
}

/// An agent room of these agents.
fn team_room(tenant: TenantId, members: &[AgentId]) -> chatgate::domain::Room {
    chatgate::domain::Room {
        id: ConversationId::new(),
        tenant_id: tenant,
        kind: chatgate::domain::RoomKind::Agent,
        channel_id: None,
        name: Some("team".into()),
        state: RoomState::Open,
        assignee: None,
        created_at_ms: now_ms(),
        queued_at_ms: None,
        last_seq: 0,
        members: members
            .iter()
            .map(|id| chatgate::domain::Member {
                id: id.0,
                kind: chatgate::domain::RoomKind::Agent,
            })
            .collect(),
        labels: Vec::new(),
        rating: None,
        prechat: None,
        verified: false,
        blocked: false,
    }
}

fn page_query(limit: u32, ascending: bool) -> store::MessageQuery {
    store::MessageQuery {
        limit,
        ascending,
        ..Default::default()
    }
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

async fn settings_keep_the_first_value_per_key(db: Db) {
    let store = db.open().await;
    assert_eq!(store.setting("region", "eu").await.unwrap(), "eu");
    assert_eq!(store.setting("region", "us").await.unwrap(), "eu");
    assert_eq!(
        store.setting("theme", "dark").await.unwrap(),
        "dark",
        "keys are independent"
    );
    assert_eq!(
        db.open().await.setting("region", "ap").await.unwrap(),
        "eu",
        "another instance agrees"
    );
}

async fn insert_tenant_creates_a_tenant_with_its_admin_or_nothing(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = TenantId::new();
    let boss = agent_in(tenant, "boss@other.example", Role::Admin);
    store.insert_tenant(tenant, "Other", &boss).await.unwrap();
    assert_eq!(store.agents(tenant).await.unwrap(), vec![boss.clone()]);
    assert_eq!(
        store.agent(first.tenant_id, boss.id).await.unwrap(),
        None,
        "not an agent of the first tenant"
    );
    // An admin whose email is taken fails the whole insert.
    let refused = TenantId::new();
    let clash = agent_in(refused, "admin@example.com", Role::Admin);
    assert!(store.insert_tenant(refused, "Clash", &clash).await.is_err());
    assert!(store.agents(refused).await.unwrap().is_empty());
    // No tenant row was left behind: the same id can be created afresh.
    let admin = agent_in(refused, "fresh@other.example", Role::Admin);
    store.insert_tenant(refused, "Clash", &admin).await.unwrap();
    assert_eq!(store.agents(refused).await.unwrap(), vec![admin]);
}

async fn agents_are_inserted_once_and_listed_per_tenant(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    assert_eq!(
        store.insert_agent(&ana).await.unwrap(),
        store::Added::Added(())
    );
    let twin = agent_in(tenant, "ANA@example.com", Role::Admin);
    assert_eq!(
        store.insert_agent(&twin).await.unwrap(),
        store::Added::AlreadyExists(()),
        "emails are unique, whatever their case"
    );
    assert_eq!(store.agent(tenant, twin.id).await.unwrap(), None);
    let other = other_tenant(&db).await;
    let foreign = agent_in(other, "zoe@other.example", Role::Agent);
    assert_eq!(
        store.insert_agent(&foreign).await.unwrap(),
        store::Added::Added(())
    );
    let mut listed = store.agents(tenant).await.unwrap();
    listed.sort_by_key(|a| a.id.0);
    let mut expected = vec![first.admin.clone(), ana.clone()];
    expected.sort_by_key(|a| a.id.0);
    assert_eq!(listed, expected, "own agents only");
    assert_eq!(store.agents(other).await.unwrap(), vec![foreign.clone()]);
    assert!(store.agents(TenantId::new()).await.unwrap().is_empty());
    assert_eq!(store.agent(tenant, foreign.id).await.unwrap(), None);
}

async fn update_agent_changes_what_it_names_in_its_tenant_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, id) = (first.tenant_id, first.admin.id);
    let session = SessionId::new();
    store
        .create_session(session, id, now_ms() + 60_000)
        .await
        .unwrap();
    let renamed = store
        .update_agent(
            tenant,
            id,
            &store::AgentChanges {
                display_name: Some("Boss".into()),
                avatar_url: Some(Some("https://example.com/boss.png".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let expected = Agent {
        display_name: "Boss".into(),
        avatar_url: Some("https://example.com/boss.png".into()),
        ..first.admin.clone()
    };
    assert_eq!(renamed, Some(expected.clone()));
    assert!(
        store
            .session_agent(session, now_ms())
            .await
            .unwrap()
            .is_some(),
        "a new name keeps the sessions"
    );
    let demoted = store
        .update_agent(
            tenant,
            id,
            &store::AgentChanges {
                avatar_url: Some(None),
                role: Some(Role::Agent),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        demoted,
        Agent {
            avatar_url: None,
            role: Role::Agent,
            ..expected.clone()
        }
    );
    // Another tenant, or an unknown id: nothing found, nothing changed.
    let other = other_tenant(&db).await;
    let hijack = store::AgentChanges {
        display_name: Some("Hijacked".into()),
        disabled: Some(true),
        ..Default::default()
    };
    assert_eq!(store.update_agent(other, id, &hijack).await.unwrap(), None);
    assert_eq!(
        store
            .update_agent(tenant, AgentId::new(), &hijack)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.agent(tenant, id).await.unwrap(),
        Some(demoted.clone())
    );
    assert!(store
        .session_agent(session, now_ms())
        .await
        .unwrap()
        .is_some());
    // A new password ends every login; so does disabling.
    let rehashed = store
        .update_agent(
            tenant,
            id,
            &store::AgentChanges {
                password_hash: Some("$argon2id$changed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rehashed.password_hash, "$argon2id$changed");
    assert!(store
        .session_agent(session, now_ms())
        .await
        .unwrap()
        .is_none());
    let again = SessionId::new();
    store
        .create_session(again, id, now_ms() + 60_000)
        .await
        .unwrap();
    let disabled = store
        .update_agent(
            tenant,
            id,
            &store::AgentChanges {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(disabled.disabled);
    assert!(store
        .session_agent(again, now_ms())
        .await
        .unwrap()
        .is_none());
}

async fn delete_agent_removes_it_with_its_sessions_and_memberships(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let session = SessionId::new();
    store
        .create_session(session, ana.id, now_ms() + 60_000)
        .await
        .unwrap();
    let room = team_room(tenant, &[first.admin.id, ana.id]);
    store.create_agent_room(&room).await.unwrap();

    let other = other_tenant(&db).await;
    assert!(!store.delete_agent(other, ana.id).await.unwrap());
    assert!(!store.delete_agent(tenant, AgentId::new()).await.unwrap());
    assert_eq!(
        store.agent(tenant, ana.id).await.unwrap(),
        Some(ana.clone())
    );
    assert!(store
        .session_agent(session, now_ms())
        .await
        .unwrap()
        .is_some());

    assert!(store.delete_agent(tenant, ana.id).await.unwrap());
    assert_eq!(store.agent(tenant, ana.id).await.unwrap(), None);
    assert!(store
        .session_agent(session, now_ms())
        .await
        .unwrap()
        .is_none());
    let members: Vec<uuid::Uuid> = store
        .room(tenant, room.id)
        .await
        .unwrap()
        .unwrap()
        .members
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(members, [first.admin.id.0], "ana left the room");
    assert!(!store.delete_agent(tenant, ana.id).await.unwrap(), "twice");
}

async fn revoke_agent_sessions_ends_every_login_of_one_agent(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let later = now_ms() + 60_000;
    let (admin_a, admin_b, anas) = (SessionId::new(), SessionId::new(), SessionId::new());
    store
        .create_session(admin_a, first.admin.id, later)
        .await
        .unwrap();
    store
        .create_session(admin_b, first.admin.id, later)
        .await
        .unwrap();
    store.create_session(anas, ana.id, later).await.unwrap();
    store.revoke_session(admin_b).await.unwrap();

    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .revoke_agent_sessions(other, first.admin.id)
            .await
            .unwrap(),
        0,
        "another tenant's agent"
    );
    assert!(store
        .session_agent(admin_a, now_ms())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .revoke_agent_sessions(tenant, first.admin.id)
            .await
            .unwrap(),
        1,
        "the active one; the revoked one is not counted"
    );
    assert!(store
        .session_agent(admin_a, now_ms())
        .await
        .unwrap()
        .is_none());
    assert!(
        store.session_agent(anas, now_ms()).await.unwrap().is_some(),
        "another agent's login stays"
    );
    assert_eq!(
        store
            .revoke_agent_sessions(tenant, first.admin.id)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .revoke_agent_sessions(tenant, AgentId::new())
            .await
            .unwrap(),
        0
    );
}

async fn presences_are_set_and_read_per_tenant(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let all = store.presences(tenant, &[]).await.unwrap();
    let mut ids: Vec<AgentId> = all.iter().map(|p| p.agent_id).collect();
    ids.sort_by_key(|id| id.0);
    let mut expected = vec![first.admin.id, ana.id];
    expected.sort_by_key(|id| id.0);
    assert_eq!(ids, expected);
    assert!(all
        .iter()
        .all(|p| p.state == PresenceState::Available && p.tenant_id == tenant));

    let away = store
        .set_presence(
            tenant,
            ana.id,
            PresenceState::Away,
            Some("lunch"),
            1_234,
            None,
        )
        .await
        .unwrap();
    let expected = AgentPresence {
        agent_id: ana.id,
        tenant_id: tenant,
        state: PresenceState::Away,
        status: Some("lunch".into()),
        last_activity_ms: Some(1_234),
    };
    assert_eq!(away, Some(expected.clone()));
    assert_eq!(
        store
            .presences(tenant, &[ana.id, AgentId::new()])
            .await
            .unwrap(),
        vec![expected.clone()],
        "only the agents asked for, unknown ones skipped"
    );
    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .set_presence(other, ana.id, PresenceState::Invisible, None, 2_000, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .set_presence(
                tenant,
                AgentId::new(),
                PresenceState::Away,
                None,
                2_000,
                None
            )
            .await
            .unwrap(),
        None
    );
    assert!(store.presences(other, &[ana.id]).await.unwrap().is_empty());
    assert!(store.presences(other, &[]).await.unwrap().is_empty());
    assert_eq!(
        store.presences(tenant, &[ana.id]).await.unwrap(),
        vec![expected],
        "unchanged by the refused updates"
    );
    let back = store
        .set_presence(tenant, ana.id, PresenceState::Available, None, 3_000, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.status, None, "the status is cleared");
}

async fn enqueued_appends_commit_in_queue_order(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let conversation = ConversationId::new();
    let mut pending = Vec::new();
    for text in ["one", "two", "three"] {
        let new = visitor_message(&first, conversation, text, None);
        pending.push(store.enqueue_append(new, None, None).await.unwrap());
    }
    let mut stored = Vec::new();
    for append in pending {
        let appended = append.await.unwrap();
        assert!(appended.created);
        stored.push((appended.message.seq, appended.message.content));
    }
    assert_eq!(
        stored,
        [
            (1, "one".to_string()),
            (2, "two".into()),
            (3, "three".into())
        ]
    );
    // A message for a room of another tenant is refused through the queue too.
    let mut wrong = visitor_message(&first, conversation, "intruder", None);
    wrong.tenant_id = other_tenant(&db).await;
    let refused = store.enqueue_append(wrong, None, None).await.unwrap().await;
    assert!(matches!(refused, Err(store::StoreError::WrongRoom)));
    assert_eq!(
        store
            .history(first.channel.scope(), conversation, 10)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn room_messages_page_filter_and_count_in_their_tenant(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    let base = now_ms() - 100_000;
    let texts = [
        "alpha one",
        "beta two",
        "alpha three",
        "gamma four",
        "alpha five",
    ];
    for (k, text) in texts.iter().enumerate() {
        let mut new = visitor_message(&first, room, text, None);
        new.sent_at_ms = base + k as i64 * 1_000;
        store.append_message(new).await.unwrap();
    }
    let page = store
        .room_messages(tenant, room, &page_query(2, false))
        .await
        .unwrap();
    assert_eq!(seqs(&page.items), [5, 4], "newest first");
    assert_eq!((page.filtered, page.total), (5, 5));
    let page = store
        .room_messages(
            tenant,
            room,
            &store::MessageQuery {
                offset: 2,
                ..page_query(2, false)
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&page.items), [3, 2]);
    let between = store::MessageQuery {
        after_seq: Some(1),
        before_seq: Some(5),
        ..page_query(10, true)
    };
    let page = store.room_messages(tenant, room, &between).await.unwrap();
    assert_eq!(
        seqs(&page.items),
        [2, 3, 4],
        "oldest first, bounds excluded"
    );
    assert_eq!((page.filtered, page.total), (3, 5));
    let recent = store::MessageQuery {
        from_ms: Some(base + 3_000),
        ..page_query(10, true)
    };
    let page = store.room_messages(tenant, room, &recent).await.unwrap();
    assert_eq!(seqs(&page.items), [4, 5]);
    assert_eq!((page.filtered, page.total), (2, 5));
    let search = store::MessageQuery {
        search: chatgate::domain::search::like_pattern("ALPHA"),
        ..page_query(10, false)
    };
    let page = store.room_messages(tenant, room, &search).await.unwrap();
    assert_eq!(
        contents(&page.items),
        ["alpha five", "alpha three", "alpha one"]
    );
    assert_eq!((page.filtered, page.total), (3, 5));
    // Another tenant, or an unknown room: an empty page with nothing counted.
    let other = other_tenant(&db).await;
    for (tenant, room) in [(other, room), (tenant, ConversationId::new())] {
        let page = store
            .room_messages(tenant, room, &page_query(10, false))
            .await
            .unwrap();
        assert!(page.items.is_empty());
        assert_eq!((page.filtered, page.total), (0, 0));
        let page = store.room_messages(tenant, room, &search).await.unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.filtered, 0);
    }
}

async fn search_messages_finds_matches_in_the_members_rooms_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, admin) = (first.tenant_id, first.admin.id);
    let base = now_ms() - 100_000;
    let send = |room: ConversationId, text: &str, k: i64| {
        let mut new = visitor_message(&first, room, text, None);
        new.sent_at_ms = base + k * 1_000;
        new
    };
    let answered = ConversationId::new();
    store
        .append_message(send(answered, "hello world", 0))
        .await
        .unwrap();
    store
        .answer(tenant, answered, admin, base + 500, None)
        .await
        .unwrap();
    store
        .append_message(send(answered, "another world", 1))
        .await
        .unwrap();
    store
        .append_message(send(answered, "bye", 2))
        .await
        .unwrap();
    let unanswered = ConversationId::new();
    store
        .append_message(send(unanswered, "world elsewhere", 3))
        .await
        .unwrap();
    let team = team_room(tenant, &[admin]);
    store.create_agent_room(&team).await.unwrap();
    let mut in_team = send(team.id, "world of the team", 4);
    in_team.channel_id = None;
    in_team.sender_kind = SenderKind::Agent;
    in_team.sender_id = admin.0;
    store.append_message(in_team).await.unwrap();

    let world = store::MessageQuery {
        search: chatgate::domain::search::like_pattern("world"),
        ..page_query(10, true)
    };
    let page = store
        .search_messages(tenant, admin.0, &world, false)
        .await
        .unwrap();
    assert_eq!(
        contents(&page.items),
        ["hello world", "another world", "world of the team"],
        "the member's rooms only, oldest first"
    );
    assert_eq!((page.filtered, page.total), (3, 4));
    let newest = store::MessageQuery {
        ascending: false,
        ..world.clone()
    };
    let page = store
        .search_messages(tenant, admin.0, &newest, true)
        .await
        .unwrap();
    assert_eq!(
        contents(&page.items),
        ["world of the team", "another world"],
        "the newest match of each room"
    );
    assert_eq!(page.filtered, 2);
    let other = other_tenant(&db).await;
    let page = store
        .search_messages(other, admin.0, &world, false)
        .await
        .unwrap();
    assert!(page.items.is_empty());
    assert_eq!((page.filtered, page.total), (0, 0));
    let page = store
        .search_messages(tenant, uuid::Uuid::new_v4(), &world, false)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "a stranger is in no room");
}

async fn message_is_found_in_its_room_and_tenant_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    let stored = append_all(store.as_ref(), &first, room, &["hello"]).await;
    let id = stored[0].id;
    assert_eq!(
        store.message(tenant, room, id).await.unwrap(),
        Some(stored[0].clone())
    );
    let elsewhere = ConversationId::new();
    append_all(store.as_ref(), &first, elsewhere, &["other"]).await;
    let other = other_tenant(&db).await;
    assert_eq!(store.message(tenant, elsewhere, id).await.unwrap(), None);
    assert_eq!(store.message(other, room, id).await.unwrap(), None);
    assert_eq!(
        store.message(tenant, room, MessageId::new()).await.unwrap(),
        None
    );
}

async fn edit_message_changes_then_deletes_once(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    let original = append_all(store.as_ref(), &first, room, &["hello"])
        .await
        .remove(0);
    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .edit_message(other, room, original.id, Some("hijacked"), 1_000, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .edit_message(
                tenant,
                ConversationId::new(),
                original.id,
                Some("moved"),
                1_000,
                None
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .edit_message(tenant, room, MessageId::new(), Some("ghost"), 1_000, None)
            .await
            .unwrap(),
        None
    );
    let edited = store
        .edit_message(tenant, room, original.id, Some("Hallo Welt"), 2_000, None)
        .await
        .unwrap();
    let expected = Message {
        content: "Hallo Welt".into(),
        edited_at_ms: Some(2_000),
        ..original.clone()
    };
    assert_eq!(edited, Some(expected.clone()));
    // The search text follows the new content.
    let search = |text: &str| store::MessageQuery {
        search: chatgate::domain::search::like_pattern(text),
        ..page_query(10, false)
    };
    let found = store
        .room_messages(tenant, room, &search("welt"))
        .await
        .unwrap();
    assert_eq!(found.items, vec![expected]);
    let gone = store
        .room_messages(tenant, room, &search("hello"))
        .await
        .unwrap();
    assert!(gone.items.is_empty());

    let deleted = store
        .edit_message(tenant, room, original.id, None, 3_000, None)
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert_eq!(deleted.edited_at_ms, Some(3_000));
    assert_eq!(
        store
            .edit_message(tenant, room, original.id, Some("back"), 4_000, None)
            .await
            .unwrap(),
        None,
        "a deleted message stays deleted"
    );
    assert_eq!(
        store.message(tenant, room, original.id).await.unwrap(),
        Some(deleted)
    );
}

async fn fail_pending_marks_only_the_channels_pending_messages(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    append_all(store.as_ref(), &first, room, &["hello"]).await;
    let pending = store
        .append_message(agent_reply(&first, room, "are you there?"))
        .await
        .unwrap()
        .message;
    let delivered = store
        .append_message(agent_reply(&first, room, "hello again"))
        .await
        .unwrap()
        .message;
    store
        .mark_delivered(tenant, delivered.id, None)
        .await
        .unwrap()
        .unwrap();
    let second = Channel {
        id: ChannelId::new(),
        name: "Second".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&second).await.unwrap();
    let elsewhere = queued_room(store.as_ref(), &first, second.id, now_ms()).await;
    let mut reply = agent_reply(&first, elsewhere, "other channel");
    reply.channel_id = Some(second.id);
    let untouched = store.append_message(reply).await.unwrap().message;

    let other = other_tenant(&db).await;
    assert!(store
        .fail_pending(other, first.channel.id)
        .await
        .unwrap()
        .is_empty());
    let failed = store.fail_pending(tenant, first.channel.id).await.unwrap();
    assert_eq!(
        failed,
        vec![Message {
            state: DeliveryState::Failed,
            ..pending.clone()
        }]
    );
    assert!(
        store
            .fail_pending(tenant, first.channel.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing is pending any more"
    );
    assert_eq!(
        store
            .message(tenant, room, delivered.id)
            .await
            .unwrap()
            .map(|m| m.state),
        Some(DeliveryState::Delivered)
    );
    assert_eq!(
        store
            .message(tenant, elsewhere, untouched.id)
            .await
            .unwrap()
            .map(|m| m.state),
        Some(DeliveryState::Pending),
        "another channel's message stays pending"
    );
}

async fn visitor_read_marks_the_agents_messages_up_to_a_seq(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    append_all(store.as_ref(), &first, room, &["question"]).await;
    let a = store
        .append_message(agent_reply(&first, room, "answer"))
        .await
        .unwrap()
        .message;
    let b = store
        .append_message(agent_reply(&first, room, "more"))
        .await
        .unwrap()
        .message;
    append_all(store.as_ref(), &first, room, &["thanks"]).await;
    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .visitor_read(other, room, 10, 500, None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .visitor_read(tenant, room, a.seq, 500, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .visitor_read(tenant, room, a.seq, 550, None)
            .await
            .unwrap(),
        0,
        "read already"
    );
    assert_eq!(
        store
            .visitor_read(tenant, room, 10, 600, None)
            .await
            .unwrap(),
        1
    );
    let read: Vec<(i64, Option<i64>)> = store
        .messages_after(first.channel.scope(), room, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.seq, m.read_at_ms))
        .collect();
    assert_eq!(
        read,
        [(1, None), (a.seq, Some(500)), (b.seq, Some(600)), (4, None)],
        "only the agents' messages, each at its first read"
    );
    // An agent room has no visitor to read it.
    let team = team_room(tenant, &[first.admin.id]);
    store.create_agent_room(&team).await.unwrap();
    let mut in_team = agent_reply(&first, team.id, "team");
    in_team.channel_id = None;
    store.append_message(in_team).await.unwrap();
    assert_eq!(
        store
            .visitor_read(tenant, team.id, 10, 700, None)
            .await
            .unwrap(),
        0
    );
}

/// An admin's list: every visitor room of the tenant (no agent room, no
/// other tenant's), newest activity first, filtered by state, channel and
/// assignee, paged with the count of matches; the reader's unread counts.
async fn visitor_rooms_are_every_visitor_room_of_the_tenant_by_filter(db: Db) {
    let s = scopes(&db).await;
    let (store, first) = (s.store.as_ref(), &s.first);
    let tenant = first.tenant_id;
    let admin = first.admin.id;
    let base = now_ms() - 100_000;
    // `s.conversation` (queued, first channel, newest: two messages now);
    // `on_second` (queued, second channel); `answered` (open, the admin's,
    // one reply); a foreign tenant's room.
    let on_second = queued_room(store, first, s.other_channel.id, base).await;
    let answered = queued_room(store, first, first.channel.id, base + 10).await;
    assert!(matches!(
        store
            .answer(tenant, answered, admin, base + 20, None)
            .await
            .unwrap(),
        store::Answered::Won(_)
    ));
    let mut reply = agent_reply(first, answered, "on it");
    reply.sent_at_ms = base + 30;
    store.append_message(reply).await.unwrap();
    let mut more = visitor_message(first, answered, "thanks", None);
    more.sent_at_ms = base + 40;
    store.append_message(more).await.unwrap();
    let foreign = ConversationId::new();
    let mut elsewhere = visitor_message(first, foreign, "foreign", None);
    elsewhere.tenant_id = s.other_tenant_channel.tenant_id;
    elsewhere.channel_id = Some(s.other_tenant_channel.id);
    store.append_message(elsewhere).await.unwrap();
    append_all(store, first, s.conversation, &["again"]).await;

    let list = |filter: store::RoomFilter, limit: u32, offset: u32| async move {
        store
            .visitor_rooms(tenant, admin.0, &filter, limit, offset)
            .await
            .unwrap()
    };
    let ids = |page: &store::Page<chatgate::domain::RoomSummary>| -> Vec<ConversationId> {
        page.items.iter().map(|r| r.room.id).collect()
    };
    let all = list(store::RoomFilter::default(), 10, 0).await;
    assert_eq!(ids(&all), [s.conversation, answered, on_second]);
    assert_eq!((all.total, all.filtered), (3, 3));
    assert_eq!(
        all.items[0]
            .last_message
            .as_ref()
            .map(|m| m.content.as_str()),
        Some("again")
    );
    // The reader's unread: the visitor's "thanks" (the reply is the
    // reader's own); none in rooms the reader is not in.
    let unread: Vec<i64> = all.items.iter().map(|r| r.unread_count).collect();
    assert_eq!(unread, [0, 2, 0]);
    assert!(all.items[1].room.has_member(admin.0));

    let cases = [
        (
            store::RoomFilter {
                state: Some(RoomState::Queued),
                ..Default::default()
            },
            vec![s.conversation, on_second],
        ),
        (
            store::RoomFilter {
                state: Some(RoomState::Open),
                ..Default::default()
            },
            vec![answered],
        ),
        (
            store::RoomFilter {
                state: Some(RoomState::Closed),
                ..Default::default()
            },
            vec![],
        ),
        (
            store::RoomFilter {
                channel: Some(s.other_channel.id),
                ..Default::default()
            },
            vec![on_second],
        ),
        (
            store::RoomFilter {
                assignee: Some(admin),
                state: Some(RoomState::Open),
                channel: Some(first.channel.id),
                label: None,
            },
            vec![answered],
        ),
        (
            store::RoomFilter {
                channel: Some(s.other_tenant_channel.id),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let page = list(filter, 10, 0).await;
        assert_eq!(ids(&page), expected, "{filter:?}");
        assert_eq!(page.total, expected.len() as i64, "{filter:?}");
    }
    let second_page = list(store::RoomFilter::default(), 2, 2).await;
    assert_eq!(ids(&second_page), [on_second]);
    assert_eq!(second_page.total, 3);
    let past_the_end = list(store::RoomFilter::default(), 2, 10).await;
    assert!(past_the_end.items.is_empty());
    assert_eq!(past_the_end.total, 3);
    // The other tenant sees only its own.
    let theirs = store
        .visitor_rooms(
            s.other_tenant_channel.tenant_id,
            admin.0,
            &store::RoomFilter::default(),
            10,
            0,
        )
        .await
        .unwrap();
    assert_eq!(ids(&theirs), [foreign]);
}

async fn queue_lists_queued_visitor_rooms_oldest_first(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let second = Channel {
        id: ChannelId::new(),
        name: "Second".into(),
        ..first.channel.clone()
    };
    store.insert_channel(&second).await.unwrap();
    let base = now_ms() - 100_000;
    let oldest = queued_room(store.as_ref(), &first, first.channel.id, base).await;
    let middle = queued_room(store.as_ref(), &first, second.id, base + 10).await;
    let answered = queued_room(store.as_ref(), &first, first.channel.id, base + 20).await;
    store
        .answer(tenant, answered, first.admin.id, base + 30, None)
        .await
        .unwrap();
    append_all(store.as_ref(), &first, oldest, &["still waiting"]).await;

    let queue = store.queue(tenant, None).await.unwrap();
    let rooms: Vec<ConversationId> = queue.iter().map(|s| s.room.id).collect();
    assert_eq!(rooms, [oldest, middle]);
    assert_eq!(queue[0].room.state, RoomState::Queued);
    assert_eq!(
        queue[0].last_message.as_ref().map(|m| m.content.as_str()),
        Some("still waiting")
    );
    assert_eq!(queue[0].unread_count, 2, "nobody read a queued room");
    let of_second: Vec<ConversationId> = store
        .queue(tenant, Some(second.id))
        .await
        .unwrap()
        .iter()
        .map(|s| s.room.id)
        .collect();
    assert_eq!(of_second, [middle]);
    assert_eq!(
        store.queued_rooms(tenant, 10).await.unwrap(),
        vec![(oldest, first.channel.id), (middle, second.id)]
    );
    assert_eq!(
        store.queued_rooms(tenant, 1).await.unwrap(),
        vec![(oldest, first.channel.id)]
    );
    let other = other_tenant(&db).await;
    assert!(store.queue(other, None).await.unwrap().is_empty());
    assert!(store
        .queue(other, Some(first.channel.id))
        .await
        .unwrap()
        .is_empty());
    assert!(store.queued_rooms(other, 10).await.unwrap().is_empty());
}

async fn assign_many_respects_each_limit_and_gives_a_room_once(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    let bob = Agent {
        disabled: true,
        ..agent_in(tenant, "bob@example.com", Role::Agent)
    };
    store.insert_agent(&ana).await.unwrap();
    store.insert_agent(&bob).await.unwrap();
    let base = now_ms() - 100_000;
    let mut queued = Vec::new();
    for k in 0..3 {
        queued.push(queued_room(store.as_ref(), &first, first.channel.id, base + k).await);
    }
    let mut loads = store.agent_loads(tenant).await.unwrap();
    loads.sort_by_key(|l| l.agent.0);
    let mut idle = vec![
        store::AgentLoad {
            agent: first.admin.id,
            open: 0,
            last_assigned_ms: None,
        },
        store::AgentLoad {
            agent: ana.id,
            open: 0,
            last_assigned_ms: None,
        },
    ];
    idle.sort_by_key(|l| l.agent.0);
    assert_eq!(loads, idle, "enabled agents only");

    let pick = |room, agent, max_open| store::Pick {
        room,
        agent,
        max_open,
    };
    let at = base + 1_000;
    let outcomes = store
        .assign_many(
            tenant,
            &[
                pick(queued[0], ana.id, 1),
                pick(queued[1], ana.id, 1),
                pick(queued[2], bob.id, 5),
            ],
            at,
            None,
        )
        .await
        .unwrap();
    let store::Assigned::Won(won) = &outcomes[0] else {
        panic!("the first pick wins: {outcomes:?}");
    };
    assert_eq!(won.id, queued[0]);
    assert_eq!(won.state, RoomState::Open);
    assert_eq!(won.assignee, Some(ana.id));
    assert!(won.members.iter().any(|m| m.id == ana.id.0));
    assert_eq!(
        outcomes[1..],
        [store::Assigned::Full, store::Assigned::Full],
        "ana is at her limit; bob is disabled"
    );
    let ana_load = store
        .agent_loads(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.agent == ana.id)
        .unwrap();
    assert_eq!((ana_load.open, ana_load.last_assigned_ms), (1, Some(at)));

    assert_eq!(
        store
            .assign_many(tenant, &[pick(queued[0], first.admin.id, 5)], at, None)
            .await
            .unwrap(),
        [store::Assigned::Taken],
        "a room is assigned once"
    );
    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .assign_many(other, &[pick(queued[1], first.admin.id, 5)], at, None)
            .await
            .unwrap(),
        [store::Assigned::Full],
        "no such agent in that tenant"
    );
    assert!(store.agent_loads(other).await.unwrap().is_empty());
    assert!(store
        .assign_many(tenant, &[], at, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.queued_rooms(tenant, 10).await.unwrap(),
        vec![(queued[1], first.channel.id), (queued[2], first.channel.id)]
    );
}

async fn answer_transfer_and_state_changes_have_one_winner(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, admin) = (first.tenant_id, first.admin.id);
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let room = queued_room(store.as_ref(), &first, first.channel.id, now_ms()).await;
    let other = other_tenant(&db).await;
    assert_eq!(
        store.answer(other, room, admin, 1, None).await.unwrap(),
        store::Answered::AlreadyAnswered,
        "not a room of that tenant"
    );
    assert!(matches!(
        store.answer(tenant, room, admin, 2, None).await.unwrap(),
        store::Answered::Won(_)
    ));
    assert_eq!(
        store.answer(tenant, room, ana.id, 3, None).await.unwrap(),
        store::Answered::AlreadyAnswered
    );

    assert_eq!(
        store
            .transfer(other, room, admin, ana.id, 4, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .transfer(tenant, room, ana.id, admin, 4, None)
            .await
            .unwrap(),
        None,
        "ana is not in the room"
    );
    let moved = store
        .transfer(tenant, room, admin, ana.id, 5, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.assignee, Some(ana.id));
    assert_eq!(moved.state, RoomState::Open);
    let members: Vec<uuid::Uuid> = moved
        .members
        .iter()
        .filter(|m| m.kind == chatgate::domain::RoomKind::Agent)
        .map(|m| m.id)
        .collect();
    assert_eq!(members, [ana.id.0], "the admin left, ana joined");
    let team = team_room(tenant, &[admin, ana.id]);
    store.create_agent_room(&team).await.unwrap();
    assert_eq!(
        store
            .transfer(tenant, team.id, admin, ana.id, 6, None)
            .await
            .unwrap(),
        None,
        "only visitor rooms are handed over"
    );

    assert_eq!(
        store
            .set_room_state(
                tenant,
                room,
                Some(RoomState::Queued),
                RoomState::Closed,
                7,
                None
            )
            .await
            .unwrap(),
        None,
        "not in the state named"
    );
    assert_eq!(
        store
            .set_room_state(other, room, None, RoomState::Closed, 7, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .set_room_state(tenant, team.id, None, RoomState::Closed, 7, None)
            .await
            .unwrap(),
        None,
        "team rooms have no state to change"
    );
    let requeued = store
        .set_room_state(
            tenant,
            room,
            Some(RoomState::Open),
            RoomState::Queued,
            8,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(requeued.state, RoomState::Queued);
    assert_eq!(requeued.assignee, None);
    assert_eq!(requeued.queued_at_ms, Some(8));
    assert!(
        requeued
            .members
            .iter()
            .all(|m| m.kind != chatgate::domain::RoomKind::Agent),
        "back in the queue without agents"
    );
    assert_eq!(
        store.queued_rooms(tenant, 10).await.unwrap(),
        vec![(room, first.channel.id)]
    );
}

async fn agent_rooms_are_created_once_per_set_of_members(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let room = team_room(tenant, &[first.admin.id, ana.id]);
    assert_eq!(
        store.create_agent_room(&room).await.unwrap(),
        store::Added::Added(room.clone())
    );
    assert_eq!(
        store.room(tenant, room.id).await.unwrap(),
        Some(room.clone())
    );
    // The same members in another order: the existing room.
    let again = team_room(tenant, &[ana.id, first.admin.id]);
    assert_eq!(
        store.create_agent_room(&again).await.unwrap(),
        store::Added::AlreadyExists(room.clone())
    );
    assert_eq!(store.room(tenant, again.id).await.unwrap(), None);
    let other = other_tenant(&db).await;
    assert_eq!(store.room(other, room.id).await.unwrap(), None);
    assert_eq!(
        store.room(tenant, ConversationId::new()).await.unwrap(),
        None
    );
}

/// An agent's message in an agent room.
fn team_message(first: &Bootstrap, room: ConversationId, text: &str) -> NewMessage {
    NewMessage {
        channel_id: None,
        sender_kind: SenderKind::Agent,
        sender_id: first.admin.id.0,
        sender_name: Some(first.admin.display_name.clone()),
        ..visitor_message(first, room, text, None)
    }
}

async fn agent_room_members_are_added_and_removed_in_their_tenant_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, admin) = (first.tenant_id, first.admin.id);
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    let bo = agent_in(tenant, "bo@example.com", Role::Agent);
    let cy = agent_in(tenant, "cy@example.com", Role::Agent);
    for agent in [&ana, &bo, &cy] {
        store.insert_agent(agent).await.unwrap();
    }
    let room = team_room(tenant, &[admin, ana.id]);
    store.create_agent_room(&room).await.unwrap();
    for text in ["one", "two"] {
        store
            .append_message(team_message(&first, room.id, text))
            .await
            .unwrap();
    }

    // Added: a member at the end, who has read up to the newest message.
    let store::MemberAdded::Added(after) = store
        .add_member(tenant, room.id, bo.id, 3, now_ms())
        .await
        .unwrap()
    else {
        panic!("bo is added");
    };
    let ids: Vec<_> = after.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, [admin.0, ana.id.0, bo.id.0]);
    assert_eq!(store.room(tenant, room.id).await.unwrap(), Some(after));
    assert_eq!(
        store.unread_count(tenant, room.id, bo.id.0).await.unwrap(),
        0
    );
    let bos = store
        .member_rooms(tenant, bo.id.0, &[], &Default::default(), 10, 0)
        .await
        .unwrap();
    assert_eq!(bos.items.len(), 1);
    assert_eq!(bos.items[0].room.id, room.id);

    // Twice, over the cap, another tenant's or a visitor room: nothing changes.
    assert_eq!(
        store
            .add_member(tenant, room.id, bo.id, 3, now_ms())
            .await
            .unwrap(),
        store::MemberAdded::AlreadyMember
    );
    assert_eq!(
        store
            .add_member(tenant, room.id, cy.id, 3, now_ms())
            .await
            .unwrap(),
        store::MemberAdded::Full
    );
    let other = other_tenant(&db).await;
    assert_eq!(
        store
            .add_member(other, room.id, cy.id, 100, now_ms())
            .await
            .unwrap(),
        store::MemberAdded::NoRoom
    );
    let visitor_room = ConversationId::new();
    append_all(store.as_ref(), &first, visitor_room, &["hi"]).await;
    store
        .answer(tenant, visitor_room, admin, now_ms(), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .add_member(tenant, visitor_room, cy.id, 100, now_ms())
            .await
            .unwrap(),
        store::MemberAdded::NoRoom
    );
    assert_eq!(
        store
            .add_member(tenant, ConversationId::new(), cy.id, 100, now_ms())
            .await
            .unwrap(),
        store::MemberAdded::NoRoom
    );
    assert_eq!(
        store
            .room(tenant, room.id)
            .await
            .unwrap()
            .unwrap()
            .members
            .len(),
        3
    );

    // The members changed: creating a room of the first members makes a new one.
    let again = team_room(tenant, &[admin, ana.id]);
    assert_eq!(
        store.create_agent_room(&again).await.unwrap(),
        store::Added::Added(again.clone())
    );

    // Removed: the room and its messages stay; the member no longer lists it.
    let after = store
        .remove_member(tenant, room.id, ana.id)
        .await
        .unwrap()
        .expect("ana was a member");
    let ids: Vec<_> = after.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, [admin.0, bo.id.0]);
    let anas = store
        .member_rooms(tenant, ana.id.0, &[], &Default::default(), 10, 0)
        .await
        .unwrap();
    let listed: Vec<_> = anas.items.iter().map(|s| s.room.id).collect();
    assert_eq!(listed, [again.id]);
    let kept = store
        .room_messages(tenant, room.id, &page_query(10, true))
        .await
        .unwrap();
    assert_eq!(contents(&kept.items), ["one", "two"]);
    assert_eq!(
        store.remove_member(tenant, room.id, ana.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.remove_member(other, room.id, bo.id).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .remove_member(tenant, visitor_room, admin)
            .await
            .unwrap(),
        None,
        "visitor rooms keep their agents"
    );
    assert!(store
        .room(tenant, visitor_room)
        .await
        .unwrap()
        .unwrap()
        .has_member(admin.0));
    assert_eq!(
        store
            .room(tenant, room.id)
            .await
            .unwrap()
            .unwrap()
            .members
            .len(),
        2
    );

    // The last members leave: the room is kept, with no one in it.
    for agent in [admin, bo.id] {
        store.remove_member(tenant, room.id, agent).await.unwrap();
    }
    let empty = store.room(tenant, room.id).await.unwrap().unwrap();
    assert!(empty.members.is_empty());
}

/// Six agents added at once, from two store handles (two instances), to
/// a room of two with room for three more: exactly three get in.
async fn concurrent_adds_to_an_agent_room_respect_its_cap(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let second = db.open().await;
    let tenant = first.tenant_id;
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let room = team_room(tenant, &[first.admin.id, ana.id]);
    store.create_agent_room(&room).await.unwrap();
    let mut newcomers = Vec::new();
    for i in 0..6 {
        let agent = agent_in(tenant, &format!("new{i}@example.com"), Role::Agent);
        store.insert_agent(&agent).await.unwrap();
        newcomers.push(agent.id);
    }
    let barrier = Arc::new(Barrier::new(newcomers.len()));
    let tasks: Vec<_> = newcomers
        .iter()
        .enumerate()
        .map(|(i, &agent)| {
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                second.clone()
            };
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.add_member(tenant, room.id, agent, 5, now_ms()).await
            })
        })
        .collect();
    let (mut added, mut full) = (0, 0);
    for task in tasks {
        match tokio::time::timeout(DEADLINE, task)
            .await
            .expect("adds finish (no deadlock)")
            .unwrap()
            .unwrap()
        {
            store::MemberAdded::Added(_) => added += 1,
            store::MemberAdded::Full => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((added, full), (3, 3));
    let members = store.room(tenant, room.id).await.unwrap().unwrap().members;
    assert_eq!(members.len(), 5);
}

async fn messages_keep_their_mentions(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, admin) = (first.tenant_id, first.admin.id);
    let ana = agent_in(tenant, "ana@example.com", Role::Agent);
    store.insert_agent(&ana).await.unwrap();
    let room = team_room(tenant, &[admin, ana.id]);
    store.create_agent_room(&room).await.unwrap();
    let mentions = vec![ana.id.0, admin.0];
    let mut new = team_message(&first, room.id, "@ana @admin look");
    new.mentions = mentions.clone();
    let stored = store.append_message(new).await.unwrap().message;
    assert_eq!(stored.mentions, mentions);
    let plain = store
        .append_message(team_message(&first, room.id, "nobody"))
        .await
        .unwrap()
        .message;
    assert!(plain.mentions.is_empty());
    let read = store
        .message(tenant, room.id, stored.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.mentions, mentions);
    let page = store
        .room_messages(tenant, room.id, &page_query(10, true))
        .await
        .unwrap();
    let read: Vec<_> = page.items.iter().map(|m| m.mentions.clone()).collect();
    assert_eq!(read, [mentions, Vec::new()]);
}

async fn mark_read_moves_forward_only(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let (tenant, admin) = (first.tenant_id, first.admin.id);
    let room = ConversationId::new();
    append_all(store.as_ref(), &first, room, &["one", "two", "three"]).await;
    store
        .answer(tenant, room, admin, now_ms(), None)
        .await
        .unwrap();
    assert_eq!(store.agents_read_up_to(tenant, room).await.unwrap(), 0);
    assert_eq!(store.unread_count(tenant, room, admin.0).await.unwrap(), 3);
    assert_eq!(
        store
            .mark_read(tenant, room, admin.0, Some(2))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.agents_read_up_to(tenant, room).await.unwrap(), 2);
    assert_eq!(store.unread_count(tenant, room, admin.0).await.unwrap(), 1);
    assert_eq!(
        store
            .mark_read(tenant, room, admin.0, Some(1))
            .await
            .unwrap(),
        2,
        "never backwards"
    );
    assert_eq!(
        store
            .mark_read(tenant, room, admin.0, Some(99))
            .await
            .unwrap(),
        3,
        "at most the room's end"
    );
    append_all(store.as_ref(), &first, room, &["four"]).await;
    assert_eq!(
        store.mark_read(tenant, room, admin.0, None).await.unwrap(),
        4
    );
    assert_eq!(store.unread_count(tenant, room, admin.0).await.unwrap(), 0);
    let other = other_tenant(&db).await;
    assert_eq!(
        store.mark_read(other, room, admin.0, None).await.unwrap(),
        0
    );
    assert_eq!(store.agents_read_up_to(other, room).await.unwrap(), 0);
    assert_eq!(
        store
            .agents_read_up_to(tenant, ConversationId::new())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .mark_read(tenant, room, uuid::Uuid::new_v4(), None)
            .await
            .unwrap(),
        0,
        "a stranger has no read position"
    );
    assert_eq!(store.agents_read_up_to(tenant, room).await.unwrap(), 4);
}

async fn reactions_are_capped_per_user_and_stay_in_their_tenant(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let room = ConversationId::new();
    let message = append_all(store.as_ref(), &first, room, &["hello"])
        .await
        .remove(0);
    let (ana, zoe) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let add = |user, emoji: &'static str, at| {
        let store = store.clone();
        async move {
            store
                .add_reaction(tenant, message.id, user, emoji, at, 2)
                .await
                .unwrap()
        }
    };
    assert_eq!(add(ana, "👍", 1).await, store::ReactionAdded::Added);
    assert_eq!(add(ana, "👍", 2).await, store::ReactionAdded::AlreadyExists);
    assert_eq!(add(ana, "❤️", 3).await, store::ReactionAdded::Added);
    assert_eq!(add(ana, "😂", 4).await, store::ReactionAdded::TooMany);
    assert_eq!(add(zoe, "😂", 5).await, store::ReactionAdded::Added);
    let reaction = |user_id, emoji: &str| Reaction {
        user_id,
        emoji: emoji.into(),
    };
    let expected = vec![
        reaction(ana, "👍"),
        reaction(ana, "❤️"),
        reaction(zoe, "😂"),
    ];
    assert_eq!(store.reactions(tenant, message.id).await.unwrap(), expected);
    let page = store
        .room_messages(tenant, room, &page_query(10, false))
        .await
        .unwrap();
    assert_eq!(page.items[0].reactions, expected, "pages carry reactions");

    let other = other_tenant(&db).await;
    assert!(store.reactions(other, message.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .add_reaction(other, message.id, zoe, "🎉", 6, 2)
            .await
            .unwrap(),
        store::ReactionAdded::AlreadyExists,
        "no such message in that tenant"
    );
    assert!(!store
        .remove_reaction(other, message.id, ana, "👍")
        .await
        .unwrap());
    assert!(store
        .remove_reaction(tenant, message.id, ana, "👍")
        .await
        .unwrap());
    assert!(!store
        .remove_reaction(tenant, message.id, ana, "👍")
        .await
        .unwrap());
    assert!(!store
        .remove_reaction(tenant, MessageId::new(), zoe, "😂")
        .await
        .unwrap());
    assert_eq!(
        store.reactions(tenant, message.id).await.unwrap(),
        vec![reaction(ana, "❤️"), reaction(zoe, "😂")]
    );
    assert_eq!(
        add(ana, "😂", 7).await,
        store::ReactionAdded::Added,
        "below the cap again"
    );
    assert!(store
        .reactions(tenant, MessageId::new())
        .await
        .unwrap()
        .is_empty());
}

async fn visitor_names_are_those_given_in_the_tenant(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let other = other_tenant(&db).await;
    let (named, unnamed, foreign) = (
        ConversationId::new(),
        ConversationId::new(),
        ConversationId::new(),
    );
    let context = |name: Option<&str>, email: Option<&str>| VisitorContext {
        name: name.map(str::to_string),
        email: email.map(str::to_string),
        ..Default::default()
    };
    store
        .save_visitor_context(tenant, named, &context(Some("Ana"), None), 1)
        .await
        .unwrap();
    store
        .save_visitor_context(tenant, unnamed, &context(None, Some("x@example.com")), 1)
        .await
        .unwrap();
    store
        .save_visitor_context(other, foreign, &context(Some("Zoe"), None), 1)
        .await
        .unwrap();
    // A later save keeps what it does not name.
    store
        .save_visitor_context(tenant, named, &context(None, Some("ana@example.com")), 2)
        .await
        .unwrap();
    assert_eq!(
        store.visitor_context(tenant, named).await.unwrap(),
        Some(context(Some("Ana"), Some("ana@example.com")))
    );
    // Another tenant's save does not touch the row.
    store
        .save_visitor_context(other, named, &context(Some("Mallory"), None), 3)
        .await
        .unwrap();
    assert_eq!(store.visitor_context(other, named).await.unwrap(), None);
    assert_eq!(
        store
            .visitor_names(tenant, &[named, unnamed, foreign, ConversationId::new()])
            .await
            .unwrap(),
        vec![(named, "Ana".to_string())]
    );
    assert!(store.visitor_names(tenant, &[]).await.unwrap().is_empty());
    assert_eq!(
        store.visitor_names(other, &[named, foreign]).await.unwrap(),
        vec![(foreign, "Zoe".to_string())]
    );
}

async fn attachments_are_read_back_whole_and_per_tenant(db: Db) {
    use chatgate::domain::{Attachment, AttachmentId};
    let (store, first) = bootstrapped(&db).await;
    let image = Attachment {
        id: AttachmentId::new(),
        tenant_id: first.tenant_id,
        conversation_id: ConversationId::new(),
        uploader_kind: SenderKind::Visitor,
        uploader_id: uuid::Uuid::new_v4(),
        name: "photo ü.png".into(),
        size: 10 * 1024 * 1024,
        content_type: "image/png".into(),
        width: Some(4000),
        height: Some(3000),
        message_id: None,
        created_at_ms: now_ms(),
    };
    let file = Attachment {
        id: AttachmentId::new(),
        uploader_kind: SenderKind::Agent,
        name: "notes.txt".into(),
        size: 5,
        content_type: "text/plain".into(),
        width: None,
        height: None,
        message_id: Some(MessageId::new()),
        ..image.clone()
    };
    store.insert_attachment(&image).await.unwrap();
    store.insert_attachment(&file).await.unwrap();
    assert_eq!(
        store.attachment(first.tenant_id, image.id).await.unwrap(),
        Some(image.clone())
    );
    assert_eq!(
        store.attachment(first.tenant_id, file.id).await.unwrap(),
        Some(file.clone())
    );
    assert_eq!(
        store.attachment_by_id(file.id).await.unwrap(),
        Some(file.clone())
    );
    // Another tenant, an unknown id.
    let other = TenantId::new();
    assert_eq!(store.attachment(other, image.id).await.unwrap(), None);
    assert_eq!(
        store
            .attachment(first.tenant_id, AttachmentId::new())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.attachment_by_id(AttachmentId::new()).await.unwrap(),
        None
    );
    // Ids are unique.
    assert!(store.insert_attachment(&image).await.is_err());

    // Unsent uploads older than a time, oldest first; sent ones never.
    let old = Attachment {
        id: AttachmentId::new(),
        created_at_ms: image.created_at_ms - 10_000,
        ..image.clone()
    };
    store.insert_attachment(&old).await.unwrap();
    let before = image.created_at_ms + 1;
    assert_eq!(
        store.unsent_attachments(before, 10).await.unwrap(),
        [old.id, image.id]
    );
    assert_eq!(store.unsent_attachments(before, 1).await.unwrap(), [old.id]);
    assert_eq!(
        store
            .unsent_attachments(old.created_at_ms, 10)
            .await
            .unwrap(),
        []
    );
    // A sent one is not deleted; an unsent one is, once.
    assert!(!store
        .delete_unsent_attachment(file.id, before)
        .await
        .unwrap());
    assert!(store.attachment_by_id(file.id).await.unwrap().is_some());
    assert!(store
        .delete_unsent_attachment(old.id, before)
        .await
        .unwrap());
    assert!(!store
        .delete_unsent_attachment(old.id, before)
        .await
        .unwrap());
    assert_eq!(store.attachment_by_id(old.id).await.unwrap(), None);
    assert_eq!(
        store.unsent_attachments(before, 10).await.unwrap(),
        [image.id]
    );
}

async fn attachments_are_claimed_whole_by_their_uploader_and_go_with_their_message(db: Db) {
    use chatgate::domain::{Attachment, AttachmentId};
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let conversation = ConversationId::new();
    // The conversation exists once its first message is stored.
    append_all(store.as_ref(), &first, conversation, &["hello"]).await;
    let visitor = (SenderKind::Visitor, conversation.0);
    let upload = |name: &str| Attachment {
        id: AttachmentId::new(),
        tenant_id: tenant,
        conversation_id: conversation,
        uploader_kind: visitor.0,
        uploader_id: visitor.1,
        name: name.into(),
        size: 3,
        content_type: "text/plain".into(),
        width: None,
        height: None,
        message_id: None,
        created_at_ms: now_ms(),
    };
    let (a, b) = (upload("a.txt"), upload("b.txt"));
    store.insert_attachment(&a).await.unwrap();
    store.insert_attachment(&b).await.unwrap();
    let now = now_ms();
    let claim = |who: (SenderKind, uuid::Uuid), tenant, conversation, ids: Vec<AttachmentId>| {
        let store = store.clone();
        async move {
            store
                .claim_attachments(tenant, conversation, who, &ids, MessageId::new(), now)
                .await
                .unwrap()
        }
    };
    // Another uploader, kind, conversation or tenant, an unknown id among
    // good ones: nothing is claimed, not even the good ones.
    let agent = (SenderKind::Agent, conversation.0);
    let stranger = (SenderKind::Visitor, uuid::Uuid::new_v4());
    for got in [
        claim(stranger, tenant, conversation, vec![a.id]).await,
        claim(agent, tenant, conversation, vec![a.id]).await,
        claim(visitor, tenant, ConversationId::new(), vec![a.id]).await,
        claim(visitor, TenantId::new(), conversation, vec![a.id]).await,
        claim(
            visitor,
            tenant,
            conversation,
            vec![a.id, AttachmentId::new()],
        )
        .await,
    ] {
        assert!(got.is_empty(), "{got:?}");
    }
    for x in [&a, &b] {
        let unsent = store.attachment(tenant, x.id).await.unwrap().unwrap();
        assert_eq!(unsent.message_id, None);
    }
    // The uploader's own: claimed in the order given, once only.
    let message = MessageId::new();
    let claimed = store
        .claim_attachments(tenant, conversation, visitor, &[b.id, a.id], message, now)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|x| x.id).collect::<Vec<_>>(),
        [b.id, a.id]
    );
    assert!(claimed.iter().all(|x| x.message_id == Some(message)));
    assert!(claim(visitor, tenant, conversation, vec![a.id])
        .await
        .is_empty());
    // A message not stored gives them back.
    store.release_attachments(message).await.unwrap();
    let again = claim(visitor, tenant, conversation, vec![a.id]).await;
    assert_eq!(again.len(), 1);
    // ... and a claim whose message never came is cleaned a while later,
    // but not before.
    let orphaned = again[0].message_id.unwrap();
    assert!(!store
        .unsent_attachments(now, 10)
        .await
        .unwrap()
        .contains(&a.id));
    assert!(!store.delete_unsent_attachment(a.id, now).await.unwrap());
    let later = now + 1;
    assert!(store
        .unsent_attachments(later, 10)
        .await
        .unwrap()
        .contains(&a.id));
    assert!(store.delete_unsent_attachment(a.id, later).await.unwrap());
    assert_eq!(store.attachment_by_id(a.id).await.unwrap(), None);
    store.release_attachments(orphaned).await.unwrap();

    // A stored message carries its files; deleting it removes their
    // records (another tenant cannot).
    let mut new = visitor_message(&first, conversation, "see file", None);
    new.attachments = store
        .claim_attachments(tenant, conversation, visitor, &[b.id], new.id, now)
        .await
        .unwrap();
    let id = new.id;
    let stored = store.append_message(new).await.unwrap().message;
    assert_eq!(stored.attachments.len(), 1);
    assert_eq!(stored.attachments[0].name, "b.txt");
    let read = store
        .message(tenant, conversation, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.attachments, stored.attachments);
    // Stored with a message: never cleaned as unsent.
    assert!(!store
        .unsent_attachments(later + 1, 10)
        .await
        .unwrap()
        .contains(&b.id));
    assert!(!store
        .delete_unsent_attachment(b.id, later + 1)
        .await
        .unwrap());
    assert!(store
        .delete_message_attachments(TenantId::new(), id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.delete_message_attachments(tenant, id).await.unwrap(),
        [b.id]
    );
    assert_eq!(store.attachment_by_id(b.id).await.unwrap(), None);
    // A deleted message shows no files.
    let deleted = store
        .edit_message(tenant, conversation, id, None, now_ms(), None)
        .await
        .unwrap()
        .unwrap();
    assert!(deleted.deleted && deleted.attachments.is_empty());
}

async fn canned_responses_are_saved_searched_and_deleted_per_tenant(db: Db) {
    use chatgate::domain::{search, CannedResponse, CannedResponseId};
    use chatgate::store::CannedSaved;
    let (store, first) = bootstrapped(&db).await;
    let other = other_tenant(&db).await;
    let canned = |tenant: TenantId, shortcut: &str, title: &str| CannedResponse {
        id: CannedResponseId::new(),
        tenant_id: tenant,
        shortcut: shortcut.into(),
        title: title.into(),
        content: format!("Hi {{{{visitor.name}}}}, about {title}\nsecond line ü"),
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    };
    let returns = canned(first.tenant_id, "returns", "Délai de RETOUR");
    let hours = canned(first.tenant_id, "hours", "Opening hours (retour à 9h)");
    let wild = canned(first.tenant_id, "100%", "A_b");
    for c in [&returns, &hours, &wild] {
        assert_eq!(
            store.insert_canned_response(c).await.unwrap(),
            CannedSaved::Saved
        );
    }
    // The same shortcut in the same tenant is refused and stores nothing;
    // in another tenant it is its own.
    let twin = canned(first.tenant_id, "returns", "Twin");
    assert_eq!(
        store.insert_canned_response(&twin).await.unwrap(),
        CannedSaved::ShortcutTaken
    );
    assert_eq!(
        store
            .canned_response(first.tenant_id, twin.id)
            .await
            .unwrap(),
        None
    );
    let theirs = canned(other, "returns", "Theirs");
    assert_eq!(
        store.insert_canned_response(&theirs).await.unwrap(),
        CannedSaved::Saved
    );

    // Read back whole, in its tenant only.
    assert_eq!(
        store
            .canned_response(first.tenant_id, returns.id)
            .await
            .unwrap(),
        Some(returns.clone())
    );
    assert_eq!(
        store.canned_response(other, returns.id).await.unwrap(),
        None
    );

    let list = |q: &str| {
        let store = store.clone();
        let tenant = first.tenant_id;
        let q = q.to_string();
        async move {
            let page = store
                .canned_responses(
                    tenant,
                    search::like_pattern(&q).as_deref(),
                    search::prefix_pattern(&q).as_deref(),
                    10,
                    0,
                )
                .await
                .unwrap();
            let names: Vec<String> = page.items.iter().map(|c| c.shortcut.clone()).collect();
            (names, page.filtered, page.total)
        }
    };
    // All, by shortcut; counts of the tenant only.
    assert_eq!(
        list("").await,
        (vec!["100%".into(), "hours".into(), "returns".into()], 3, 3)
    );
    // Title, case and accents aside; a shortcut's prefix first.
    assert_eq!(
        list("retour").await,
        (vec!["hours".into(), "returns".into()], 2, 3)
    );
    assert_eq!(
        list("RET").await,
        (vec!["returns".into(), "hours".into()], 2, 3)
    );
    assert_eq!(list("délai").await.0, vec!["returns".to_string()]);
    // Wildcards match literally.
    assert_eq!(list("%").await.0, vec!["100%".to_string()]);
    assert_eq!(list("a_b").await.0, vec!["100%".to_string()]);
    assert_eq!(list("nothing").await, (vec![], 0, 3));
    // Paging.
    let second = store
        .canned_responses(first.tenant_id, None, None, 1, 1)
        .await
        .unwrap();
    assert_eq!(second.items, vec![hours.clone()]);

    // Updates: fields and search text change; a taken shortcut changes
    // nothing; another tenant's is not found.
    let mut changed = returns.clone();
    changed.shortcut = "refund".into();
    changed.title = "Remboursement".into();
    changed.content = "Money back".into();
    changed.updated_at_ms = 2_000;
    assert_eq!(
        store.update_canned_response(&changed).await.unwrap(),
        CannedSaved::Saved
    );
    assert_eq!(
        store
            .canned_response(first.tenant_id, returns.id)
            .await
            .unwrap(),
        Some(changed.clone())
    );
    assert_eq!(list("rembour").await.0, vec!["refund".to_string()]);
    assert_eq!(list("délai").await.0, Vec::<String>::new());
    let mut clash = changed.clone();
    clash.shortcut = "hours".into();
    assert_eq!(
        store.update_canned_response(&clash).await.unwrap(),
        CannedSaved::ShortcutTaken
    );
    assert_eq!(
        store
            .canned_response(first.tenant_id, returns.id)
            .await
            .unwrap(),
        Some(changed.clone())
    );
    let mut foreign = theirs.clone();
    foreign.tenant_id = first.tenant_id;
    foreign.shortcut = "stolen".into();
    assert_eq!(
        store.update_canned_response(&foreign).await.unwrap(),
        CannedSaved::NotFound
    );
    let mut hijack = changed.clone();
    hijack.tenant_id = other;
    assert_eq!(
        store.update_canned_response(&hijack).await.unwrap(),
        CannedSaved::NotFound
    );
    assert_eq!(
        store.canned_response(other, theirs.id).await.unwrap(),
        Some(theirs.clone())
    );

    // Deletes: only in its tenant, once.
    assert!(!store
        .delete_canned_response(other, returns.id)
        .await
        .unwrap());
    assert!(store
        .delete_canned_response(first.tenant_id, returns.id)
        .await
        .unwrap());
    assert!(!store
        .delete_canned_response(first.tenant_id, returns.id)
        .await
        .unwrap());
    assert_eq!(list("").await.2, 2);
    // Its shortcut is free again.
    let again = canned(first.tenant_id, "refund", "Again");
    assert_eq!(
        store.insert_canned_response(&again).await.unwrap(),
        CannedSaved::Saved
    );
    assert!(store
        .canned_response(other, theirs.id)
        .await
        .unwrap()
        .is_some());
}

// --- data rights ------------------------------------------------------------------

fn erasure(
    tenant: TenantId,
    conversations: Vec<ConversationId>,
    at_ms: i64,
    retention_only: bool,
) -> chatgate::domain::rights::Erasure {
    use chatgate::domain::rights::{AuditAction, AuditActor, AuditEntry};
    chatgate::domain::rights::Erasure {
        tenant,
        conversations,
        at_ms,
        retention_only,
        audit: AuditEntry {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant,
            at_ms,
            actor: AuditActor::Retention,
            action: AuditAction::VisitorErased,
            conversations: Vec::new(),
            detail: String::new(),
        },
    }
}

async fn erasures_make_shells_once_per_tenant_and_are_audited(db: Db) {
    use chatgate::domain::identity::VisitorKey;
    use chatgate::domain::rights::{token_erasure_keys, AuditAction, AuditActor, RetentionDays};
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let channel = first.channel.id;
    let key = VisitorKey::identified("customer-7");
    let (a, b, c) = (
        ConversationId::new(),
        ConversationId::new(),
        ConversationId::new(),
    );
    append_all(store.as_ref(), &first, a, &["order 4711 lost"]).await;
    append_all(store.as_ref(), &first, b, &["second chat"]).await;
    append_all(store.as_ref(), &first, c, &["someone else"]).await;
    store
        .set_conversation_visitor(tenant, a, &key, true)
        .await
        .unwrap();
    store
        .set_conversation_visitor(tenant, b, &key, true)
        .await
        .unwrap();
    let anonymous = VisitorKey::anonymous(c);
    store
        .set_conversation_visitor(tenant, c, &anonymous, false)
        .await
        .unwrap();
    // Another tenant's conversation of a visitor with the same identity.
    let other = other_tenant(&db).await;
    let mut foreign_channel = first.channel.clone();
    foreign_channel.id = ChannelId::new();
    foreign_channel.tenant_id = other;
    store.insert_channel(&foreign_channel).await.unwrap();
    let d = ConversationId::new();
    let mut foreign = visitor_message(&first, d, "foreign", None);
    foreign.tenant_id = other;
    foreign.channel_id = Some(foreign_channel.id);
    store.append_message(foreign).await.unwrap();
    store
        .set_conversation_visitor(other, d, &key, true)
        .await
        .unwrap();

    let mut found = store
        .identified_conversations(tenant, &key, 10)
        .await
        .unwrap();
    found.sort();
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(found, both);
    assert_eq!(
        store
            .identified_conversations(other, &key, 10)
            .await
            .unwrap(),
        vec![d]
    );
    assert_eq!(
        store
            .identified_conversations(tenant, &key, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .identified_conversations(tenant, &anonymous, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .add_note(
            store::NewNote {
                id: MessageId::new(),
                tenant_id: tenant,
                room: a,
                author_id: first.admin.id.0,
                author_name: Some("Admin".into()),
                author_avatar: None,
                content: "VIP".into(),
                at_ms: now_ms(),
            },
            None,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .save_visitor_context(
            tenant,
            a,
            &VisitorContext {
                email: Some("c7@example.com".into()),
                ..Default::default()
            },
            now_ms(),
        )
        .await
        .unwrap();
    let hashes = token_erasure_keys(a, &key);
    assert_eq!(
        store.visitor_erased_at(channel, &hashes).await.unwrap(),
        None
    );
    assert_eq!(store.visitor_erased_at(channel, &[]).await.unwrap(), None);

    // Webhook events of a (one sent, one not) and of c.
    let hook = uuid::Uuid::new_v4();
    let event = |conversation: ConversationId| store::NewOutbox {
        kind: "webhook".into(),
        payload: r#"{"data":"order 4711 lost"}"#.into(),
        order_key: Some(format!("{hook}:{conversation}")),
        target: Some(hook),
        ..outbox_row(tenant, None, 0)
    };
    let (sent_a, unsent_a, unsent_c) = (event(a), event(a), event(c));
    for row in [&sent_a, &unsent_a, &unsent_c] {
        store.enqueue_outbox(row, 0).await.unwrap();
    }
    let claim = uuid::Uuid::new_v4();
    let claimed = store.claim_outbox(claim, 1, 60_000, 100).await.unwrap();
    assert!(claimed.iter().any(|r| r.id == sent_a.id));
    let sent = store::OutboxOutcome::Sent {
        again_at_ms: 2,
        emailed: None,
    };
    assert!(finish(&store, sent_a.id, claim, &sent, 2).await);

    // The other tenant's conversation named too: skipped.
    let at = now_ms();
    let erased = store
        .erase_conversations(&erasure(tenant, vec![b, a, d, a], at, false), None)
        .await
        .unwrap();
    let mut erased_ids = erased.conversations.clone();
    erased_ids.sort();
    // a's events lose their bodies; the unsent one is dropped; c's stay.
    let row = |id| {
        let store = store.clone();
        async move { store.outbox_row(id).await.unwrap().unwrap() }
    };
    let (was_sent, was_unsent, other_row) = (
        row(sent_a.id).await,
        row(unsent_a.id).await,
        row(unsent_c.id).await,
    );
    assert_eq!(
        (was_sent.payload.as_str(), was_sent.dropped_at_ms),
        ("{}", None)
    );
    assert!(was_sent.sent_at_ms.is_some());
    assert_eq!(was_unsent.payload, "{}");
    assert_eq!(was_unsent.dropped_at_ms, Some(at));
    assert_eq!(
        was_unsent.last_error.as_deref(),
        Some("the visitor was erased")
    );
    assert_eq!(other_row.payload, unsent_c.payload);
    assert_eq!(other_row.dropped_at_ms, None);
    assert_eq!(erased_ids, both);
    assert_eq!(erased.messages, 2);
    assert_eq!(erased.notes, 1);
    for id in [a, b] {
        let page = store
            .room_messages(tenant, id, &page_query(50, true))
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{:?}", page.items);
        assert_eq!(store.visitor_context(tenant, id).await.unwrap(), None);
        let room = store
            .room(tenant, id)
            .await
            .unwrap()
            .expect("the shell stays");
        assert_eq!(room.state, RoomState::Closed);
        assert!(!room.verified);
        assert_eq!(room.rating, None);
    }
    let found = store
        .search_messages(
            tenant,
            first.admin.id.0,
            &store::MessageQuery {
                limit: 10,
                search: Some("%4711%".into()),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
    assert!(found.items.is_empty());
    assert_eq!(
        store
            .history(first.channel.scope(), c, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .history(foreign_channel.scope(), d, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .identified_conversations(tenant, &key, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.visitor_erased_at(channel, &hashes).await.unwrap(),
        Some(at)
    );
    // Any token of the identity on the channel, whatever its conversation.
    let later = token_erasure_keys(ConversationId::new(), &key);
    assert_eq!(
        store.visitor_erased_at(channel, &later).await.unwrap(),
        Some(at)
    );
    assert_eq!(
        store
            .visitor_erased_at(foreign_channel.id, &later)
            .await
            .unwrap(),
        None
    );
    // A shell takes no more messages.
    let refused = store
        .append_message(visitor_message(&first, a, "back", None))
        .await;
    assert!(
        matches!(refused, Err(store::StoreError::WrongRoom)),
        "{refused:?}"
    );
    // Erasing again changes nothing and records nothing.
    let again = store
        .erase_conversations(&erasure(tenant, vec![a, b], now_ms(), false), None)
        .await
        .unwrap();
    assert!(again.conversations.is_empty());
    let log = store.audit_entries(tenant, 10, 0).await.unwrap();
    assert_eq!(log.total, 1);
    assert_eq!(log.items[0].action, AuditAction::VisitorErased);
    assert_eq!(log.items[0].actor, AuditActor::Retention);
    let mut logged = log.items[0].conversations.clone();
    logged.sort();
    assert_eq!(logged, both);
    assert!(
        log.items[0].detail.contains("\"notes\":1"),
        "{}",
        log.items[0].detail
    );
    assert_eq!(store.audit_entries(other, 10, 0).await.unwrap().total, 0);
    let mut export = log.items[0].clone();
    export.id = uuid::Uuid::now_v7();
    export.at_ms = at + 1;
    export.action = AuditAction::VisitorExported;
    export.actor = AuditActor::Agent {
        id: first.admin.id,
        name: "Admin".into(),
    };
    store.insert_audit_entry(&export).await.unwrap();
    let log = store.audit_entries(tenant, 10, 0).await.unwrap();
    assert_eq!(log.total, 2);
    assert_eq!(log.items[0], export, "newest first");
    assert_eq!(
        store.audit_entries(tenant, 1, 1).await.unwrap().items.len(),
        1
    );

    // Retention: only closed conversations past the tenant's setting.
    let settings = store.tenant_settings(tenant).await.unwrap().unwrap();
    assert_eq!(settings.retention, None);
    assert_eq!(store.tenant_settings(TenantId::new()).await.unwrap(), None);
    let day = 86_400_000;
    let now = now_ms();
    store
        .set_room_state(tenant, c, None, RoomState::Closed, now - 31 * day, None)
        .await
        .unwrap()
        .unwrap();
    let recent = queued_room(store.as_ref(), &first, channel, now).await;
    store
        .set_room_state(
            tenant,
            recent,
            None,
            RoomState::Closed,
            now - 29 * day,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let open = queued_room(store.as_ref(), &first, channel, now - 60 * day).await;
    assert!(store
        .expired_conversations(now, 10)
        .await
        .unwrap()
        .is_empty());
    // Retention named without a setting: nothing erased.
    let none = store
        .erase_conversations(&erasure(tenant, vec![c], now, true), None)
        .await
        .unwrap();
    assert!(none.conversations.is_empty());
    let days = RetentionDays::parse(30).unwrap();
    assert!(store.set_retention(tenant, Some(days)).await.unwrap());
    assert!(!store
        .set_retention(TenantId::new(), Some(days))
        .await
        .unwrap());
    assert_eq!(
        store
            .tenant_settings(tenant)
            .await
            .unwrap()
            .unwrap()
            .retention,
        Some(days)
    );
    assert_eq!(
        store.expired_conversations(now, 10).await.unwrap(),
        vec![(tenant, c)]
    );
    let kept = store
        .erase_conversations(&erasure(tenant, vec![recent, open, c], now, true), None)
        .await
        .unwrap();
    assert_eq!(kept.conversations, vec![c]);
    assert!(store
        .expired_conversations(now, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .history(first.channel.scope(), recent, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .history(first.channel.scope(), open, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.set_retention(tenant, None).await.unwrap());
    assert_eq!(
        store
            .tenant_settings(tenant)
            .await
            .unwrap()
            .unwrap()
            .retention,
        None
    );
}

/// Several instances' retention passes (or an admin's click beside one)
/// erasing the same conversations at once: each is erased by exactly one,
/// and one audit entry names it.
async fn concurrent_erasures_erase_each_conversation_once(db: Db) {
    let (first_store, first) = bootstrapped(&db).await;
    let second_store = db.open().await;
    let tenant = first.tenant_id;
    let mut rooms = Vec::new();
    for i in 0..6 {
        let room = ConversationId::new();
        append_all(
            first_store.as_ref(),
            &first,
            room,
            &[&format!("message {i}")],
        )
        .await;
        rooms.push(room);
    }
    let at = now_ms();
    let mut reversed = rooms.clone();
    reversed.reverse();
    let (one, other) = (
        erasure(tenant, rooms.clone(), at, false),
        erasure(tenant, reversed, at, false),
    );
    let (a, b) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(
            first_store.erase_conversations(&one, None),
            second_store.erase_conversations(&other, None),
        )
    })
    .await
    .expect("no deadlock");
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut erased: Vec<ConversationId> = a
        .conversations
        .iter()
        .chain(&b.conversations)
        .copied()
        .collect();
    erased.sort();
    let mut expected = rooms.clone();
    expected.sort();
    assert_eq!(erased, expected, "each erased once");
    assert_eq!(a.messages + b.messages, 6);
    let log = first_store.audit_entries(tenant, 10, 0).await.unwrap();
    let mut logged: Vec<ConversationId> = log
        .items
        .iter()
        .flat_map(|e| e.conversations.iter().copied())
        .collect();
    logged.sort();
    assert_eq!(logged, expected);
}

// --- applications --------------------------------------------------------------

/// An application of `tenant` and its row among the agents.
fn an_application(
    tenant: TenantId,
    name: &str,
) -> (chatgate::domain::application::Application, Agent) {
    use chatgate::domain::application::{Application, Scopes};
    let id = AgentId::new();
    let application = Application {
        id,
        tenant_id: tenant,
        name: name.into(),
        scopes: Scopes::parse(["conversations:read", "messages:write"]).unwrap(),
        created_by: None,
        created_at_ms: now_ms(),
        revoked_at_ms: None,
    };
    let agent = Agent {
        email: Application::agent_email(id),
        display_name: name.into(),
        role: Role::Application,
        password_hash: "!application".into(),
        id,
        ..agent_in(tenant, "unused@example.com", Role::Application)
    };
    (application, agent)
}

async fn applications_stay_in_their_tenant_are_found_by_token_hash_and_revoked_once(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let other = other_tenant(&db).await;
    let (bot, bot_agent) = an_application(tenant, "FAQ bot");
    let (theirs, their_agent) = an_application(other, "Theirs");
    store
        .insert_application(&bot, &bot_agent, "hash-of-bot")
        .await
        .unwrap();
    store
        .insert_application(&theirs, &their_agent, "hash-of-theirs")
        .await
        .unwrap();

    assert_eq!(store.applications(tenant).await.unwrap(), vec![bot.clone()]);
    assert_eq!(
        store.application(tenant, bot.id).await.unwrap(),
        Some(bot.clone())
    );
    assert_eq!(store.application(other, bot.id).await.unwrap(), None);
    let (found, agent) = store
        .application_by_token("hash-of-bot")
        .await
        .unwrap()
        .expect("found by its token's hash");
    assert_eq!(found, bot);
    assert_eq!(agent.role, Role::Application);
    assert_eq!(agent.display_name, "FAQ bot");
    assert!(store
        .application_by_token("hash-of-nothing")
        .await
        .unwrap()
        .is_none());
    // Not an agent of the tenant's lists, nor a candidate for round robin.
    assert!(store
        .agents(tenant)
        .await
        .unwrap()
        .iter()
        .all(|a| a.id != bot.id));
    assert!(store
        .agent_loads(tenant)
        .await
        .unwrap()
        .iter()
        .all(|l| l.agent != bot.id));

    // A channel naming it as its bot.
    let mut channel = first.channel.clone();
    channel.routing.bot = Some(bot.id);
    store.update_channel(&channel).await.unwrap();
    assert_eq!(
        store
            .channel(tenant, channel.id)
            .await
            .unwrap()
            .unwrap()
            .routing
            .bot,
        Some(bot.id)
    );

    // Another tenant cannot revoke it.
    assert_eq!(
        store.revoke_application(other, bot.id, 10).await.unwrap(),
        None
    );
    assert!(store
        .application_by_token("hash-of-bot")
        .await
        .unwrap()
        .is_some());
    let revoked = store
        .revoke_application(tenant, bot.id, 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(20));
    assert!(store
        .application_by_token("hash-of-bot")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .channel(tenant, channel.id)
            .await
            .unwrap()
            .unwrap()
            .routing
            .bot,
        None,
        "the channel no longer names it"
    );
    // Once: a second revocation keeps the first time.
    let again = store
        .revoke_application(tenant, bot.id, 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at_ms, Some(20));
    // The other tenant's application is untouched.
    assert!(store
        .application_by_token("hash-of-theirs")
        .await
        .unwrap()
        .is_some());
}

async fn requeue_returns_a_members_open_room_to_the_queue_once(db: Db) {
    let (store, first) = bootstrapped(&db).await;
    let tenant = first.tenant_id;
    let other = other_tenant(&db).await;
    let (bot, bot_agent) = an_application(tenant, "FAQ bot");
    store
        .insert_application(&bot, &bot_agent, "hash")
        .await
        .unwrap();
    let room = queued_room(store.as_ref(), &first, first.channel.id, now_ms()).await;
    // Not a member yet: nothing moves.
    assert_eq!(
        store.requeue(tenant, room, bot.id, 5, None).await.unwrap(),
        None
    );
    assert!(matches!(
        store.answer(tenant, room, bot.id, 6, None).await.unwrap(),
        store::Answered::Won(_)
    ));
    let held = store.room(tenant, room).await.unwrap().unwrap();
    let kinds: Vec<_> = held.members.iter().map(|m| (m.id, m.kind)).collect();
    assert!(
        kinds.contains(&(bot.id.0, chatgate::domain::RoomKind::Application)),
        "{kinds:?}"
    );
    assert_eq!(
        store.open_rooms_of(tenant, bot.id).await.unwrap(),
        vec![room]
    );
    assert_eq!(store.open_rooms_of(other, bot.id).await.unwrap(), vec![]);
    // Another tenant's call changes nothing.
    assert_eq!(
        store.requeue(other, room, bot.id, 7, None).await.unwrap(),
        None
    );

    let queued = store
        .requeue(tenant, room, bot.id, 8, None)
        .await
        .unwrap()
        .expect("back in the queue");
    assert_eq!(queued.state, RoomState::Queued);
    assert_eq!(queued.assignee, None);
    assert_eq!(queued.queued_at_ms, Some(8));
    assert!(!queued.has_member(bot.id.0));
    let queue: Vec<_> = store
        .queued_rooms(tenant, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(queue, vec![room]);
    // Once: it is no member any more.
    assert_eq!(
        store.requeue(tenant, room, bot.id, 9, None).await.unwrap(),
        None
    );
    assert!(store
        .open_rooms_of(tenant, bot.id)
        .await
        .unwrap()
        .is_empty());
}
