//! Applications (desk-api.md, "Integrations"): a tenant's API clients, bots
//! for example, each with its own token and scopes. An application acts
//! through the agent API as a member of kind `application`: its id is also
//! its id among the agents (role `application`), so rooms, messages and the
//! audience of events treat it like an agent; it is never an admin, has no
//! presence, and never logs in with a password.
//!
//! Its token is `cga_` and 43 random alphanumeric characters (about 256
//! bits): only its SHA-256 is stored, so a stolen database yields no token,
//! and a plain hash is enough for a secret of that entropy (no password
//! hashing cost on every call).

use sha2::{Digest, Sha256};

use super::ids::{AgentId, TenantId};

/// What an application token starts with: how the bearer filter tells it
/// from an agent's JWT without trying both.
pub const TOKEN_PREFIX: &str = "cga_";

/// Longest application name (it is shown as the sender of its messages).
pub const MAX_NAME_CHARS: usize = 80;

/// What an application may do; admin calls are never among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read its rooms, their messages, the tenant's queue.
    ConversationsRead,
    /// Answer queued rooms, transfer, hand over, close, mark read.
    ConversationsWrite,
    /// Post messages (with quick replies and files), edit and delete its
    /// own, react, type.
    MessagesWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [
        Scope::ConversationsRead,
        Scope::ConversationsWrite,
        Scope::MessagesWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConversationsRead => "conversations:read",
            Scope::ConversationsWrite => "conversations:write",
            Scope::MessagesWrite => "messages:write",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A set of scopes, in their canonical order, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// The scopes of a request: 1 to 3 known names (repeats are kept once).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        let mut scopes = Vec::new();
        for name in names {
            let scope = Scope::parse(name).ok_or_else(|| {
                format!(
                    "unknown scope `{}`: scopes are conversations:read, conversations:write and messages:write",
                    name.chars().take(40).collect::<String>()
                )
            })?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("scopes must name at least one scope".into());
        }
        scopes.sort();
        scopes.dedup();
        Ok(Scopes(scopes))
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// As stored: a JSON list of names.
    pub fn encode(&self) -> String {
        serde_json::to_string(&self.names()).unwrap_or_else(|_| "[]".into())
    }

    pub fn decode(raw: &str) -> Option<Scopes> {
        let names: Vec<String> = serde_json::from_str(raw).ok()?;
        Scopes::parse(names.iter().map(String::as_str)).ok()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

/// An application's name: 1 to 80 characters, trimmed, no control characters.
pub fn parse_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("name must not be empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("name is longer than 80 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters");
    }
    Ok(name.to_string())
}

/// One of a tenant's applications. Its token is not here: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Also its id as a member of rooms and the sender of its messages.
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scopes: Scopes,
    /// The admin who created it, as recorded then.
    pub created_by: Option<AgentId>,
    pub created_at_ms: i64,
    /// When it was revoked: its token no longer works.
    pub revoked_at_ms: Option<i64>,
}

impl Application {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }

    /// The address of its row among the agents: unique, and one that no
    /// mail server accepts (`.invalid`, RFC 2606), so it can never log in
    /// or be mailed.
    pub fn agent_email(id: AgentId) -> String {
        format!("application-{}@applications.invalid", id.0.simple())
    }
}

/// A new token: `cga_` and 43 random alphanumeric characters.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crate::auth::random_secret(43))
}

/// Whether `token` has the shape of an application token (not a JWT).
pub fn is_application_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_known_names_once_in_order() {
        let scopes = Scopes::parse(["messages:write", "conversations:read", "messages:write"])
            .expect("valid");
        assert_eq!(scopes.names(), ["conversations:read", "messages:write"]);
        assert_eq!(Scopes::decode(&scopes.encode()), Some(scopes));
    }

    #[test]
    fn unknown_or_no_scopes_are_refused() {
        assert!(Scopes::parse(["admin"]).is_err());
        assert!(Scopes::parse(Vec::<&str>::new()).is_err());
    }

    #[test]
    fn tokens_are_recognised_and_hashed_not_kept() {
        let token = new_token();
        assert!(is_application_token(&token));
        assert_eq!(token.len(), 47);
        let hash = token_hash(&token);
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, token_hash(&new_token()));
        assert!(!is_application_token("eyJhbGciOiJIUzI1NiJ9.x.y"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  FAQ bot ").as_deref(), Ok("FAQ bot"));
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(81)).is_err());
        assert!(parse_name("a\u{0}b").is_err());
    }
}
