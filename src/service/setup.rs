//! First-start setup and the operator's commands: what the server creates
//! the first time it opens an empty database (the first tenant, its admin
//! with a random password, a demo channel), the secrets it keeps in the
//! store (the token signing key unless configured, this deployment's server
//! id), and `chatgate admin reset-password` / `chatgate tenant add`.
//! The wiring (`app`) and `main` call these and print what they return.

use anyhow::Context;

use crate::auth;
use crate::config::Config;
use crate::domain::{time::now_ms, Agent, AgentId, Channel, ChannelId, Role, TenantId};
use crate::store::{self, Bootstrap, Store};
use crate::wire::wazo::ServerId;

/// The first admin's login.
pub const ADMIN_EMAIL: &str = "admin@chatgate.local";

/// What the first start created, to be shown once to the operator.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub admin_email: String,
    pub admin_password: String,
    pub channel_id: ChannelId,
}

/// What the server needs from its store before it serves.
pub struct Prepared {
    /// `Some` only on the start that created the first tenant.
    pub first_start: Option<FirstStart>,
    /// The token signing key: configured, or minted once and stored.
    pub jwt_secret: String,
    /// This deployment's id (every instance on one database shares it).
    pub server: ServerId,
}

/// Creates the first tenant when the database is empty, and reads (minting
/// on first start) the token signing key and the server id.
pub async fn prepare(config: &Config, store: &dyn Store) -> anyhow::Result<Prepared> {
    let first_start = create_first_tenant(store).await?;
    let jwt_secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => store.jwt_secret(&auth::random_secret(64)).await?,
    };
    let server_uuid = store
        .setting("server_uuid", &uuid::Uuid::new_v4().to_string())
        .await?;
    let server = ServerId(
        server_uuid
            .parse()
            .with_context(|| format!("stored server_uuid `{server_uuid}` is not a UUID"))?,
    );
    Ok(Prepared {
        first_start,
        jwt_secret,
        server,
    })
}

/// The first tenant, its admin and a demo channel, unless the database
/// already has a tenant (then `None`).
async fn create_first_tenant(store: &dyn Store) -> anyhow::Result<Option<FirstStart>> {
    let tenant_id = TenantId::new();
    let password = auth::random_secret(20);
    let first = Bootstrap {
        tenant_id,
        tenant_name: "Default".into(),
        admin: Agent {
            id: AgentId::new(),
            tenant_id,
            email: ADMIN_EMAIL.into(),
            display_name: "Admin".into(),
            avatar_url: None,
            role: Role::Admin,
            password_hash: auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?,
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
    };
    Ok(store.bootstrap(&first).await?.then(|| FirstStart {
        admin_email: first.admin.email.clone(),
        admin_password: password,
        channel_id: first.channel.id,
    }))
}

/// What `reset_password` did.
pub struct PasswordReset {
    /// The new password, to be shown once.
    pub password: String,
    /// Why the running instances could not be told at once (their sockets
    /// of this agent then close at their next check), if so.
    pub not_announced: Option<String>,
}

/// `chatgate admin reset-password`: a new random password for `email`.
/// Every old token and console session of the agent is revoked in the
/// store; running instances on Redis also close the agent's live sockets
/// now, and an embedded server (no bus reaches it from here) at its
/// sockets' next check.
pub async fn reset_password(config: &Config, email: &str) -> anyhow::Result<PasswordReset> {
    config.validate()?;
    let store = store::open(&config.database_url).await?;
    let password = auth::random_secret(20);
    let hash =
        auth::hash_password(&password).map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    let Some(agent) = store.set_password(email, &hash).await? else {
        anyhow::bail!("no agent with email {email}");
    };
    let not_announced = match &config.redis_url {
        Some(url) => super::agents::announce_revoked(url, &config.redis_prefix, &agent)
            .await
            .err()
            .map(|err| err.to_string()),
        None => None,
    };
    Ok(PasswordReset {
        password,
        not_announced,
    })
}

/// `chatgate tenant add`: a new tenant and its admin; the admin's login and
/// password, to be shown once.
pub async fn add_tenant(config: &Config, name: &str) -> anyhow::Result<(String, String)> {
    config.validate()?;
    let store = store::open(&config.database_url).await?;
    super::agents::add_tenant(store.as_ref(), name)
        .await
        .map_err(|e| anyhow::anyhow!("{}", crate::error::ApiError::from(e).message))
}
