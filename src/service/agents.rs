//! Who the caller is, login and logout, and the administration of agents.
//! The caller's role and state are read from the store on every call, so a
//! demoted, disabled or deleted agent is treated as such at once.

use std::net::IpAddr;
use std::sync::Arc;

use super::error::{Conflict, Missing, ServiceError};
use super::rooms::RoomRef;
use super::{Caller, Events, Parts};
use crate::auth::{
    hash_password, on_hash_thread, random_secret, verify_password, AgentClaims, TokenKind,
};
use crate::domain::{time::now_ms, Agent, AgentId, Role, RoomId, SessionId, TenantId};
use crate::store::{Added, AgentChanges, SettingsStore};

/// Longest agent token a login may ask for: 10 days.
pub const MAX_EXPIRATION_SECS: i64 = 10 * 86_400;

/// A successful login.
pub struct Login {
    pub agent: Agent,
    pub token: String,
    pub session: SessionId,
    pub issued_secs: i64,
    pub expires_secs: i64,
}

/// A new agent, as an admin asks for it.
pub struct NewAgent {
    pub email: String,
    pub display_name: String,
    pub password: String,
    pub role: Option<String>,
    pub avatar_url: Option<String>,
}

/// Changes to an agent, as an admin asks for them; `None` keeps the value.
#[derive(Default)]
pub struct AgentPatch {
    pub display_name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub role: Option<String>,
    pub password: Option<String>,
    pub disabled: Option<bool>,
}

/// A token's claim, before the store confirms it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An agent's login session (a signed JWT).
    Session(AgentClaims),
    /// An application token, by its hash.
    Application(String),
}

impl Credential {
    /// When the token expires (Unix seconds); application tokens do not.
    pub fn expires_secs(&self) -> Option<i64> {
        match self {
            Credential::Session(claims) => Some(claims.exp),
            Credential::Application(_) => None,
        }
    }
}

pub struct AgentService {
    agent_store: Arc<dyn crate::store::AgentStore>,
    application_store: Arc<dyn crate::store::ApplicationStore>,
    tokens: Arc<crate::auth::Tokens>,
    limits: Arc<crate::limits::Limits>,
    /// Lifetime of a token whose login names none (seconds).
    agent_token_ttl: u64,
    events: Events,
}

impl AgentService {
    pub fn new(parts: &Parts) -> AgentService {
        AgentService {
            agent_store: parts.store.clone(),
            application_store: parts.store.clone(),
            tokens: parts.tokens.clone(),
            limits: parts.limits.clone(),
            agent_token_ttl: parts.config.agent_token_ttl,
            events: parts.events(),
        }
    }

    /// The agent of a token whose session is active, whose agent exists and
    /// is not disabled, or the application of a live application token
    /// (401 otherwise).
    pub async fn authenticate(&self, token: Option<&str>) -> Result<Caller, ServiceError> {
        let credential = token
            .and_then(|t| self.credential(t))
            .ok_or(ServiceError::InvalidToken)?;
        self.caller_of(&credential).await
    }

    /// What a token claims to be, checked for form and signature only (the
    /// store decides with [`AgentService::caller_of`]).
    pub fn credential(&self, token: &str) -> Option<Credential> {
        if crate::domain::application::is_application_token(token) {
            return Some(Credential::Application(
                crate::domain::application::token_hash(token),
            ));
        }
        self.tokens.verify_agent(token).map(Credential::Session)
    }

    /// The caller a credential stands for now: read from the store on every
    /// call, so a logout, a disabled agent or a revoked application stops
    /// at once.
    pub async fn caller_of(&self, credential: &Credential) -> Result<Caller, ServiceError> {
        match credential {
            Credential::Session(claims) => self.caller(claims).await,
            Credential::Application(hash) => {
                let (application, agent) = self
                    .application_store
                    .application_by_token(hash)
                    .await?
                    .ok_or(ServiceError::InvalidToken)?;
                Ok(Caller::application(agent, application.scopes))
            }
        }
    }

    /// A person's session only (the console): an application token is
    /// refused like a bad one.
    pub async fn authenticate_person(&self, token: Option<&str>) -> Result<Caller, ServiceError> {
        let claims = token
            .and_then(|t| self.tokens.verify_agent(t))
            .ok_or(ServiceError::InvalidToken)?;
        self.caller(&claims).await
    }

    /// `authenticate`, and in the same store read the room `room` of the
    /// caller's tenant (for a call on that room: see `RoomRef::Read`). An
    /// application's room is read by id afterwards.
    pub async fn authenticate_at(
        &self,
        token: Option<&str>,
        room: RoomId,
    ) -> Result<(Caller, RoomRef), ServiceError> {
        let claims = match token.and_then(|t| self.credential(t)) {
            Some(Credential::Session(claims)) => claims,
            Some(application @ Credential::Application(_)) => {
                return Ok((self.caller_of(&application).await?, RoomRef::Id(room)));
            }
            None => return Err(ServiceError::InvalidToken),
        };
        let (agent, read) = self
            .agent_store
            .session_agent_and_room(claims.sid, now_ms(), room)
            .await?
            .filter(|(a, _)| a.id == claims.sub && a.tenant_id == claims.tenant)
            .ok_or(ServiceError::InvalidToken)?;
        Ok((Caller::person(agent), RoomRef::Read(room, read)))
    }

    /// The current agent of verified claims.
    pub async fn caller(&self, claims: &AgentClaims) -> Result<Caller, ServiceError> {
        let agent = self
            .agent_store
            .session_agent(claims.sid, now_ms())
            .await?
            .filter(|a| a.id == claims.sub && a.tenant_id == claims.tenant)
            .ok_or(ServiceError::InvalidToken)?;
        Ok(Caller::person(agent))
    }

    /// Like `authenticate`, and the agent must be an admin now (403 otherwise).
    pub async fn admin(&self, token: Option<&str>) -> Result<Caller, ServiceError> {
        let caller = self.authenticate(token).await?;
        if !caller.is_admin() {
            return Err(ServiceError::Forbidden(super::ADMIN_ONLY));
        }
        Ok(caller)
    }

    /// Checks an email and password; the same answer for an unknown email,
    /// a wrong password and a disabled agent, in the same time. The one
    /// login of the API and the console: failures are counted per account
    /// and client IP, and per client IP; a caller past either budget gets a
    /// 429 (with Retry-After) before its password is even checked, and a
    /// successful login gives back what it reserved, so it never counts.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        expiration_secs: Option<i64>,
        client: IpAddr,
    ) -> Result<Login, ServiceError> {
        let expiration = match expiration_secs {
            None => self.agent_token_ttl as i64,
            Some(n) if (1..=MAX_EXPIRATION_SECS).contains(&n) => n,
            Some(_) => {
                return Err(ServiceError::field(
                    "expiration",
                    format!("expiration must be an integer from 1 to {MAX_EXPIRATION_SECS}"),
                ))
            }
        };
        let limits = &self.limits;
        let account = (login_key(email), client);
        limits.login_ip_failures.reserve(&client)?;
        if let Err(limited) = limits.login_failures.reserve(&account) {
            limits.login_ip_failures.refund(&client);
            return Err(limited.into());
        }
        let result = self.check_password(email, password, expiration).await;
        // Only a wrong password (or unknown email, or disabled agent) is a
        // failure; a success or our own fault gives the reservation back.
        if !matches!(&result, Err(ServiceError::WrongCredentials)) {
            limits.login_failures.refund(&account);
            limits.login_ip_failures.refund(&client);
        }
        result
    }

    async fn check_password(
        &self,
        email: &str,
        password: String,
        expiration: i64,
    ) -> Result<Login, ServiceError> {
        let wrong = || ServiceError::WrongCredentials;
        let agent = self.agent_store.agent_by_email(email).await?;
        // Hashing runs whether or not the email exists, so timing does not
        // reveal which emails are agents.
        let hash = agent.as_ref().map(|a| a.password_hash.clone());
        let ok = on_hash_thread(move || match hash {
            Some(hash) => verify_password(&password, &hash),
            None => {
                let _ = verify_password(&password, dummy_hash());
                false
            }
        })
        .await
        .ok_or_else(|| ServiceError::internal("password threads stopped"))?;
        let agent = agent.filter(|a| ok && !a.disabled).ok_or_else(wrong)?;
        let issued = crate::auth::now_secs();
        let expires = issued + expiration;
        let session = SessionId::new();
        self.agent_store
            .create_session(session, agent.id, expires * 1000)
            .await?;
        let token = self.tokens.agent(&AgentClaims {
            typ: TokenKind::Agent,
            sub: agent.id,
            tenant: agent.tenant_id,
            sid: session,
            role: agent.role,
            iat: issued,
            exp: expires,
        });
        Ok(Login {
            agent,
            token,
            session,
            issued_secs: issued,
            expires_secs: expires,
        })
    }

    /// Revokes a token's session.
    pub async fn logout(&self, token: &str) -> Result<(), ServiceError> {
        let claims = self
            .tokens
            .verify_agent(token)
            .ok_or(ServiceError::InvalidToken)?;
        if !self.agent_store.revoke_session(claims.sid).await? {
            return Err(ServiceError::InvalidToken);
        }
        self.revoked(claims.tenant, claims.sub, Some(claims.sid))
            .await;
        Ok(())
    }

    /// Tells every instance that an agent's sessions (one, or all) are
    /// revoked, so the sockets opened with them close now rather than at
    /// their next check.
    async fn revoked(&self, tenant: TenantId, agent: AgentId, session: Option<SessionId>) {
        self.events
            .publish(crate::domain::Published {
                event: crate::domain::Event::SessionsRevoked { agent, session },
                tenant_id: tenant,
                visitor_room: None,
                agents: crate::domain::Agents::Only { ids: vec![agent] },
            })
            .await;
    }

    pub async fn create(&self, caller: &Caller, new: NewAgent) -> Result<Agent, ServiceError> {
        caller.require_admin()?;
        let agent = Agent {
            id: AgentId::new(),
            tenant_id: caller.tenant(),
            email: parse_email(&new.email)?,
            display_name: parse_display_name(&new.display_name)?,
            avatar_url: new.avatar_url.map(|u| parse_url(&u)).transpose()?,
            role: new
                .role
                .as_deref()
                .map(parse_role)
                .transpose()?
                .unwrap_or(Role::Agent),
            password_hash: hash(new.password).await?,
            disabled: false,
        };
        match self.agent_store.insert_agent(&agent).await? {
            Added::Added(()) => Ok(agent),
            Added::AlreadyExists(()) => Err(ServiceError::Conflict(Conflict::AgentAlreadyExists)),
        }
    }

    pub async fn list(&self, caller: &Caller) -> Result<Vec<Agent>, ServiceError> {
        caller.require_admin()?;
        Ok(self.agent_store.agents(caller.tenant()).await?)
    }

    pub async fn get(&self, caller: &Caller, id: AgentId) -> Result<Agent, ServiceError> {
        caller.require_admin()?;
        self.agent_store
            .agent(caller.tenant(), id)
            .await?
            .filter(|a| !a.is_application())
            .ok_or_else(unknown_agent)
    }

    pub async fn update(
        &self,
        caller: &Caller,
        id: AgentId,
        patch: AgentPatch,
    ) -> Result<Agent, ServiceError> {
        caller.require_admin()?;
        if id == caller.id()
            && (patch.role.as_deref().is_some_and(|r| r != "admin") || patch.disabled == Some(true))
        {
            // A tenant must keep an admin: another admin may do this, not oneself.
            return Err(ServiceError::invalid(
                "an admin cannot demote or disable itself",
            ));
        }
        // Applications are agents only inside: `/applications` manages them.
        self.get(caller, id).await?;
        let revoke = patch.password.is_some() || patch.disabled == Some(true);
        let changes = AgentChanges {
            display_name: patch
                .display_name
                .as_deref()
                .map(parse_display_name)
                .transpose()?,
            avatar_url: patch
                .avatar_url
                .map(|u| u.as_deref().map(parse_url).transpose())
                .transpose()?,
            role: patch.role.as_deref().map(parse_role).transpose()?,
            password_hash: match patch.password {
                Some(p) => Some(hash(p).await?),
                None => None,
            },
            disabled: patch.disabled,
        };
        let agent = self
            .agent_store
            .update_agent(caller.tenant(), id, &changes)
            .await?
            .ok_or_else(unknown_agent)?;
        if revoke {
            // A new password or a disabled account ends every session.
            self.agent_store
                .revoke_agent_sessions(caller.tenant(), id)
                .await?;
            self.revoked(caller.tenant(), id, None).await;
        }
        Ok(agent)
    }

    pub async fn delete(&self, caller: &Caller, id: AgentId) -> Result<(), ServiceError> {
        caller.require_admin()?;
        if id == caller.id() {
            return Err(ServiceError::invalid("an admin cannot delete itself"));
        }
        self.get(caller, id).await?;
        self.agent_store
            .revoke_agent_sessions(caller.tenant(), id)
            .await?;
        if !self.agent_store.delete_agent(caller.tenant(), id).await? {
            return Err(unknown_agent());
        }
        self.revoked(caller.tenant(), id, None).await;
        Ok(())
    }
}

// ---- For the console (issue 11): colleagues any agent may see. ----

/// An agent as colleagues see it: no email, no password hash.
#[derive(Debug, Clone)]
pub struct Colleague {
    pub id: AgentId,
    pub display_name: String,
    pub role: Role,
}

impl AgentService {
    /// The tenant's enabled agents, for pickers any agent uses (transfer to,
    /// start a room with) and for showing who is who; the caller included.
    pub async fn colleagues(&self, caller: &Caller) -> Result<Vec<Colleague>, ServiceError> {
        let agents = self.agent_store.agents(caller.tenant()).await?;
        Ok(agents
            .into_iter()
            .filter(|a| !a.disabled)
            .map(|a| Colleague {
                id: a.id,
                display_name: a.display_name,
                role: a.role,
            })
            .collect())
    }
}

/// `chatgate tenant add NAME`: a new tenant with its first admin; returns
/// the admin's login and password.
pub async fn add_tenant(
    store: &dyn SettingsStore,
    name: &str,
) -> Result<(String, String), ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ServiceError::field(
            "name",
            "name must have 1 to 200 characters",
        ));
    }
    let tenant = TenantId::new();
    let password = random_secret(20);
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let email = format!("admin@{}.chatgate.local", slug.trim_matches('-'));
    let admin = Agent {
        id: AgentId::new(),
        tenant_id: tenant,
        email: email.clone(),
        display_name: "Admin".into(),
        avatar_url: None,
        role: Role::Admin,
        password_hash: hash(password.clone()).await?,
        disabled: false,
    };
    store.insert_tenant(tenant, name, &admin).await?;
    Ok((email, password))
}

fn unknown_agent() -> ServiceError {
    ServiceError::NotFound(Missing::Agent)
}

async fn hash(password: String) -> Result<String, ServiceError> {
    if password.chars().count() < 8 || password.chars().count() > 200 {
        return Err(ServiceError::field(
            "password",
            "password must have 8 to 200 characters",
        ));
    }
    on_hash_thread(move || hash_password(&password))
        .await
        .ok_or_else(|| ServiceError::internal("password threads stopped"))?
        .map_err(ServiceError::internal)
}

fn parse_email(raw: &str) -> Result<String, ServiceError> {
    let email = raw.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.contains(char::is_whitespace);
    if !valid {
        return Err(ServiceError::field(
            "email",
            "email must be an address like ana@example.com",
        ));
    }
    Ok(email.to_string())
}

fn parse_display_name(raw: &str) -> Result<String, ServiceError> {
    if raw.trim().is_empty() || raw.chars().count() > 200 {
        return Err(ServiceError::field(
            "display_name",
            "display_name must have 1 to 200 characters",
        ));
    }
    Ok(raw.to_string())
}

/// The account a login names, as its failures are counted: the email as
/// the store compares it, at most as long as an email can be (a longer one
/// names no agent, and must not make the key as long as the header).
fn login_key(email: &str) -> String {
    email.trim().to_lowercase().chars().take(320).collect()
}

fn parse_role(raw: &str) -> Result<Role, ServiceError> {
    Role::parse(raw).ok_or_else(|| ServiceError::field("role", "role must be admin or agent"))
}

fn parse_url(raw: &str) -> Result<String, ServiceError> {
    if !crate::domain::url::is_web_url(raw) {
        return Err(ServiceError::field(
            "avatar_url",
            "avatar_url must be an http(s) URL of at most 2048 characters",
        ));
    }
    Ok(raw.to_string())
}

/// A hash of a random password, verified against when the email is unknown
/// so both failures cost the same.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret(20)).unwrap_or_default())
}

/// Tells running instances, through Redis, that every session of `agent`
/// is revoked (the `admin reset-password` command, which runs outside the
/// server).
pub async fn announce_revoked(
    redis_url: &str,
    prefix: &str,
    agent: &Agent,
) -> Result<(), crate::bus::BusError> {
    use crate::bus::{Bus, BusSink, RedisBus, Topic};
    /// This process receives nothing.
    struct Deaf;
    impl BusSink for Deaf {
        fn deliver(&self, _: &Topic, _: Arc<crate::domain::Published>) {}
        fn resync(&self) {}
    }
    let sink: Arc<dyn BusSink> = Arc::new(Deaf);
    let bus = RedisBus::connect(redis_url, prefix, Arc::downgrade(&sink)).await?;
    let event = crate::domain::Published {
        event: crate::domain::Event::SessionsRevoked {
            agent: agent.id,
            session: None,
        },
        tenant_id: agent.tenant_id,
        visitor_room: None,
        agents: crate::domain::Agents::Only {
            ids: vec![agent.id],
        },
    };
    bus.publish(&Topic::tenant(agent.tenant_id), Arc::new(event))
        .await
}
