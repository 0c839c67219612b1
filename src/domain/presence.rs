//! Agent presence: the state an agent chose (Wazo's four), its status text.

use serde::{Deserialize, Serialize};

use super::ids::{AgentId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PresenceState {
    Available,
    Away,
    Unavailable,
    /// Connected but shown to visitors (and to round robin) as unavailable.
    Invisible,
}

impl PresenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Available => "available",
            PresenceState::Away => "away",
            PresenceState::Unavailable => "unavailable",
            PresenceState::Invisible => "invisible",
        }
    }

    pub fn parse(s: &str) -> Option<PresenceState> {
        match s {
            "available" => Some(PresenceState::Available),
            "away" => Some(PresenceState::Away),
            "unavailable" => Some(PresenceState::Unavailable),
            "invisible" => Some(PresenceState::Invisible),
            _ => None,
        }
    }
}

impl std::fmt::Display for PresenceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an agent chose, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPresence {
    pub agent_id: AgentId,
    pub tenant_id: TenantId,
    pub state: PresenceState,
    pub status: Option<String>,
    pub last_activity_ms: Option<i64>,
}

/// An agent's presence as the tenant sees it: what it chose, and whether
/// it has a live event socket on any instance now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePresence {
    pub presence: AgentPresence,
    pub connected: bool,
}

/// A status text: at most 200 characters.
pub fn parse_status(raw: &str) -> Result<String, &'static str> {
    if raw.chars().nth(200).is_some() {
        return Err("status is longer than 200 characters");
    }
    Ok(raw.to_string())
}
