//! Data rights (desk-api.md, "Integrations"; issue 19): what an erasure
//! removes and records, the audit log admins read, a tenant's retention.
//! No I/O: the store performs an [`Erasure`], the rights service decides
//! which conversations it names.

use uuid::Uuid;

use super::identity::VisitorKey;
use super::ids::{AgentId, AttachmentId, ConversationId, TenantId};

/// Longest retention a tenant may set, in days (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// A tenant's retention: conversations closed more than this many days ago
/// are erased on a schedule. 1..=[`MAX_RETENTION_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetentionDays(u32);

impl RetentionDays {
    pub fn parse(days: i64) -> Option<RetentionDays> {
        u32::try_from(days)
            .ok()
            .filter(|d| (1..=MAX_RETENTION_DAYS).contains(d))
            .map(RetentionDays)
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The retention in milliseconds.
    pub fn as_ms(self) -> i64 {
        i64::from(self.0) * 24 * 3600 * 1000
    }
}

/// A tenant's own settings (beside its channels').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSettings {
    pub id: TenantId,
    pub name: String,
    /// `None`: nothing is erased on a schedule (the default).
    pub retention: Option<RetentionDays>,
}

/// Who acted on a visitor's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditActor {
    /// An admin, with its name as it was then.
    Agent { id: AgentId, name: String },
    /// The tenant's retention schedule.
    Retention,
}

impl AuditActor {
    pub fn kind(&self) -> &'static str {
        match self {
            AuditActor::Agent { .. } => "agent",
            AuditActor::Retention => "retention",
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    VisitorErased,
    VisitorExported,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::VisitorErased => "visitor.erased",
            AuditAction::VisitorExported => "visitor.exported",
        }
    }

    pub fn parse(raw: &str) -> Option<AuditAction> {
        match raw {
            "visitor.erased" => Some(AuditAction::VisitorErased),
            "visitor.exported" => Some(AuditAction::VisitorExported),
            _ => None,
        }
    }
}

/// One entry of a tenant's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub at_ms: i64,
    pub actor: AuditActor,
    pub action: AuditAction,
    /// The conversations concerned.
    pub conversations: Vec<ConversationId>,
    /// Counts (`{"messages": 12, "files": 2, ...}`), as JSON text.
    pub detail: String,
}

/// An erasure to perform, in one transaction: each named conversation of
/// `tenant` not erased yet (and, for retention, still closed for longer
/// than the tenant's retention at `at_ms`) loses its messages (with their
/// reactions, quick replies, postbacks and search text), private notes,
/// files' records, visitor context (name, email, page, pre-chat answers),
/// rating and identity; it is closed if it was not, and kept as a shell.
/// The audit entry is added when at least one conversation was erased,
/// naming those that were.
#[derive(Debug, Clone)]
pub struct Erasure {
    pub tenant: TenantId,
    pub conversations: Vec<ConversationId>,
    pub at_ms: i64,
    /// Only those whose tenant's retention has passed since they closed.
    pub retention_only: bool,
    /// Its `conversations` and `detail` are filled in by the store.
    pub audit: AuditEntry,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// The conversations erased now (not those erased before).
    pub conversations: Vec<ConversationId>,
    /// The files whose records were deleted: their bytes are the caller's
    /// to remove, after the commit.
    pub files: Vec<AttachmentId>,
    pub messages: u64,
    pub notes: u64,
    /// Of `conversations`, those the erasure closed (queued or open
    /// before), with the state each was in.
    pub closed: Vec<(ConversationId, super::RoomState)>,
}

/// The hash under which an erasure records a token key (SHA-256 hex): the
/// erasure table never holds an identity in clear.
pub fn erasure_key_hash(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys a visitor token of `conversation` (of the visitor `key`) is
/// refused by once erased: its conversation's, and an identified visitor's
/// identity (every conversation of an identified visitor is erased with it).
pub fn token_erasure_keys(conversation: ConversationId, key: &VisitorKey) -> Vec<String> {
    let mut keys = vec![erasure_key_hash(&format!("c:{conversation}"))];
    if key.is_identified() {
        keys.push(erasure_key_hash(key.as_str()));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_days_are_one_to_ten_years() {
        assert_eq!(RetentionDays::parse(0), None);
        assert_eq!(RetentionDays::parse(-3), None);
        assert_eq!(RetentionDays::parse(1).map(RetentionDays::get), Some(1));
        assert_eq!(
            RetentionDays::parse(3650).map(RetentionDays::get),
            Some(3650)
        );
        assert_eq!(RetentionDays::parse(3651), None);
        assert_eq!(RetentionDays::parse(2).unwrap().as_ms(), 172_800_000);
    }

    #[test]
    fn identified_tokens_are_refused_by_their_identity_anonymous_ones_by_conversation() {
        let c = ConversationId::new();
        let anonymous = token_erasure_keys(c, &VisitorKey::anonymous(c));
        assert_eq!(anonymous, vec![erasure_key_hash(&format!("c:{c}"))]);
        let identified = token_erasure_keys(c, &VisitorKey::identified("u-1"));
        assert_eq!(identified.len(), 2);
        assert_eq!(identified[1], erasure_key_hash("i:u-1"));
        assert_eq!(identified[1].len(), 64);
        assert!(!identified[1].contains("u-1"));
    }
}
