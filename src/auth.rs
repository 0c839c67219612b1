//! Tokens and passwords.
//!
//! Visitor, resume and agent tokens are HS256 JWTs signed with one secret
//! (from config, or generated once and kept in the store so every instance
//! and every restart agrees). Each token names its kind (`typ`), so a resume
//! token cannot be used as a visitor token or the other way round. Agent
//! tokens also name a session, which logout revokes in the store.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use crate::domain::{AgentId, ChannelId, ConversationId, Role, SessionId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Visitor,
    Resume,
    Agent,
}

/// The claims of a visitor or resume token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorClaims {
    pub typ: TokenKind,
    /// Channel id.
    pub ch: ChannelId,
    /// Conversation id.
    pub cv: ConversationId,
    pub iat: i64,
    pub exp: i64,
    /// What the visitor's page said at `/chatplugin.authenticate`, for a
    /// conversation that has no message yet: stored with its first message,
    /// so authenticating alone writes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<crate::domain::VisitorContext>,
    /// Whose conversation this is (see `VisitorKey`); absent in tokens
    /// made before visitors had keys, read as the conversation's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vk: Option<crate::domain::identity::VisitorKey>,
    /// Whether the visitor's identity was verified by its site's signature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vf: bool,
}

impl VisitorClaims {
    /// The visitor this token is for.
    pub fn visitor_key(&self) -> crate::domain::identity::VisitorKey {
        self.vk
            .clone()
            .unwrap_or_else(|| crate::domain::identity::VisitorKey::anonymous(self.cv))
    }
}

/// Who a visitor token is for, beyond its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorOwner {
    pub key: crate::domain::identity::VisitorKey,
    pub verified: bool,
}

/// The claims of an agent token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    pub typ: TokenKind,
    pub sub: AgentId,
    pub tenant: TenantId,
    pub sid: SessionId,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and verifies every token of this server.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is exact: a configured lifetime of 1 s means 1 s.
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.required_spec_claims = ["exp"].into_iter().map(String::from).collect();
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    fn sign<T: Serialize>(&self, claims: &T) -> String {
        // HS256 over serde-serialisable claims cannot fail.
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).unwrap_or_default()
    }

    pub fn visitor(
        &self,
        kind: TokenKind,
        channel: ChannelId,
        conversation: ConversationId,
        ttl_secs: u64,
    ) -> String {
        self.visitor_with_context(kind, channel, conversation, ttl_secs, None, None)
    }

    /// A visitor token that carries the page's context until the first message.
    pub fn visitor_with_context(
        &self,
        kind: TokenKind,
        channel: ChannelId,
        conversation: ConversationId,
        ttl_secs: u64,
        ctx: Option<crate::domain::VisitorContext>,
        owner: Option<VisitorOwner>,
    ) -> String {
        let iat = now_secs();
        let (vk, vf) = match owner {
            Some(owner) => (Some(owner.key), owner.verified),
            None => (None, false),
        };
        self.sign(&VisitorClaims {
            typ: kind,
            ch: channel,
            cv: conversation,
            iat,
            exp: iat.saturating_add(ttl_secs as i64),
            ctx,
            vk,
            vf,
        })
    }

    /// Verifies a visitor or resume token of the expected kind.
    pub fn verify_visitor(&self, token: &str, kind: TokenKind) -> Option<VisitorClaims> {
        let claims = decode::<VisitorClaims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        (claims.typ == kind).then_some(claims)
    }

    pub fn agent(&self, claims: &AgentClaims) -> String {
        self.sign(claims)
    }

    /// Verifies the signature and expiry; the caller checks the session is not revoked.
    pub fn verify_agent(&self, token: &str) -> Option<AgentClaims> {
        let claims = decode::<AgentClaims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        (claims.typ == TokenKind::Agent).then_some(claims)
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A random secret or password of `len` alphanumeric characters.
pub fn random_secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Threads that hash and verify passwords.
const HASH_THREADS: usize = 2;

type HashJob = Box<dyn FnOnce() + Send>;

/// Runs `f` (an Argon2 hash or verification) on one of a few dedicated
/// threads and returns its result; `None` if the threads are gone. Each
/// Argon2 call takes 19 MiB: on tokio's blocking pool, hundreds of threads
/// would each keep that much in their allocator arenas after a burst of
/// logins; here memory stays bounded, and so does the CPU a login flood takes.
pub async fn on_hash_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static JOBS: std::sync::OnceLock<tokio::sync::mpsc::Sender<HashJob>> =
        std::sync::OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::channel::<HashJob>(256);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..HASH_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("chatgate-hash-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                    match job {
                        Some(job) => job(),
                        None => break,
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(%err, "cannot start a password hashing thread");
            }
        }
        tx
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    jobs.send(Box::new(move || {
        let _ = tx.send(f());
    }))
    .await
    .ok()?;
    rx.await.ok()
}

/// The token of an `Authorization: Bearer <t>` (or bare `<t>`) header value.
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let token = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None => header,
    };
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_token_is_not_a_visitor_token() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let t = tokens.visitor(
            TokenKind::Resume,
            ChannelId::new(),
            ConversationId::new(),
            60,
        );
        assert!(tokens.verify_visitor(&t, TokenKind::Visitor).is_none());
        assert!(tokens.verify_visitor(&t, TokenKind::Resume).is_some());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let a = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let b = Tokens::new(b"fedcba9876543210fedcba9876543210");
        let t = a.visitor(
            TokenKind::Visitor,
            ChannelId::new(),
            ConversationId::new(),
            60,
        );
        assert!(b.verify_visitor(&t, TokenKind::Visitor).is_none());
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn bearer_accepts_scheme_or_bare_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer(""), None);
    }
}
