//! Rooms: a conversation with members. A visitor conversation is a room
//! (its visitor member is the conversation itself; agents join it); agents
//! also talk to each other in agent rooms.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{AgentId, ChannelId, ConversationId, TenantId};
use super::message::Message;

/// A room's id. A visitor room's id is its conversation's id, so the
/// visitor side (`since-seq`, topics, tokens) needs no mapping.
pub type RoomId = ConversationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomKind {
    Visitor,
    Agent,
    /// A member only, never a room: an application (a bot) in a visitor room.
    Application,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Visitor => "visitor",
            RoomKind::Agent => "agent",
            RoomKind::Application => "application",
        }
    }

    /// A room's kind as stored (`visitor` or `agent`; no room is an application).
    pub fn parse(s: &str) -> Option<RoomKind> {
        match s {
            "visitor" => Some(RoomKind::Visitor),
            "agent" => Some(RoomKind::Agent),
            _ => None,
        }
    }
}

/// Where a room is in its life: a visitor room waits in its channel's queue
/// until an agent answers, is open while being served, and closed after.
/// Agent rooms are always open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoomState {
    Queued,
    Open,
    Closed,
}

impl RoomState {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Queued => "queued",
            RoomState::Open => "open",
            RoomState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<RoomState> {
        match s {
            "queued" => Some(RoomState::Queued),
            "open" => Some(RoomState::Open),
            "closed" => Some(RoomState::Closed),
            _ => None,
        }
    }
}

impl std::fmt::Display for RoomKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RoomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member of a room: an agent, or the visitor of a visitor room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    pub id: Uuid,
    pub kind: RoomKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub tenant_id: TenantId,
    pub kind: RoomKind,
    pub channel_id: Option<ChannelId>,
    pub name: Option<String>,
    pub state: RoomState,
    pub assignee: Option<AgentId>,
    pub created_at_ms: i64,
    pub queued_at_ms: Option<i64>,
    pub last_seq: i64,
    /// The visitor first (in a visitor room), then agents in joining order.
    pub members: Vec<Member>,
    /// The tenant's labels on the room, by name (case-insensitively).
    #[serde(default)]
    pub labels: Vec<super::label::RoomLabel>,
    /// The visitor's rating, once given (visitor rooms, after a close).
    pub rating: Option<Rating>,
    /// The visitor's answers to the channel's pre-chat form.
    #[serde(default)]
    pub prechat: Option<super::PrechatAnswers>,
    /// The visitor's identity was signed by its site (visitor rooms).
    #[serde(default)]
    pub verified: bool,
    /// An agent blocked the visitor (visitor rooms).
    #[serde(default)]
    pub blocked: bool,
}

/// A visitor's satisfaction with a closed conversation (desk-api.md,
/// "Rating"): given once per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// 1 (bad) ..= 5 (very good).
    pub rating: u8,
    pub comment: Option<String>,
    pub created_at_ms: i64,
}

/// Longest rating comment, in characters.
pub const MAX_RATING_COMMENT_CHARS: usize = 1000;

impl Rating {
    /// A rating as the visitor gave it: 1..=5, and a comment of at most
    /// 1000 characters (white space alone counts as none).
    pub fn parse(
        rating: i64,
        comment: Option<&str>,
        created_at_ms: i64,
    ) -> Result<Rating, (&'static str, &'static str)> {
        let rating = u8::try_from(rating)
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or(("rating", "rating must be an integer from 1 to 5"))?;
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().nth(MAX_RATING_COMMENT_CHARS).is_some()) {
            return Err(("comment", "comment is longer than 1000 characters"));
        }
        Ok(Rating {
            rating,
            comment: comment.map(str::to_string),
            created_at_ms,
        })
    }
}

impl Room {
    /// The agents among the members (applications included: they act as
    /// agents): who receives the room's events.
    pub fn agents(&self) -> Vec<AgentId> {
        self.members
            .iter()
            .filter(|m| matches!(m.kind, RoomKind::Agent | RoomKind::Application))
            .map(|m| AgentId(m.id))
            .collect()
    }

    pub fn has_member(&self, id: Uuid) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// The name shown for a room: its own, or "Visitor 4ecb3" for a visitor room.
    pub fn display_name(&self) -> String {
        match (&self.name, self.kind) {
            (Some(name), _) => name.clone(),
            (None, RoomKind::Visitor) => {
                format!("Visitor {}", &self.id.0.simple().to_string()[27..])
            }
            (None, RoomKind::Agent | RoomKind::Application) => String::new(),
        }
    }
}

/// A room as one agent sees it in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub room: Room,
    pub unread_count: i64,
    /// Of those, the messages that mention this agent (group rooms; the
    /// console's "@" on the room). Not in the API's room shape.
    #[serde(default)]
    pub unread_mentions: i64,
    pub last_message: Option<Message>,
}

impl RoomSummary {
    /// A room without what only one agent sees (no unread count, no last
    /// message): as several agents are told of it.
    pub fn bare(room: Room) -> RoomSummary {
        RoomSummary {
            room,
            unread_count: 0,
            unread_mentions: 0,
            last_message: None,
        }
    }
}

/// A room as it is shown to agents now: its summary, and for a visitor
/// room whether its visitor has a live socket (`None`: not asked, or not
/// a visitor room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRoom {
    pub summary: RoomSummary,
    pub visitor_connected: Option<bool>,
}

impl LiveRoom {
    pub fn room(&self) -> &Room {
        &self.summary.room
    }
}

/// A room name: 1..=200 characters, not only white space.
pub fn parse_room_name(name: &str) -> Result<String, &'static str> {
    if name.trim().is_empty() {
        return Err("name must not be empty");
    }
    if name.chars().nth(200).is_some() {
        return Err("name is longer than 200 characters");
    }
    Ok(name.to_string())
}

impl FromStr for RoomState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        RoomState::parse(s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::Rating;

    #[test]
    fn a_rating_is_one_to_five_with_a_comment_of_at_most_1000_characters() {
        assert_eq!(
            Rating::parse(4, Some("  good "), 7)
                .unwrap()
                .comment
                .as_deref(),
            Some("good")
        );
        assert_eq!(Rating::parse(1, Some("   "), 7).unwrap().comment, None);
        assert_eq!(Rating::parse(0, None, 7).unwrap_err().0, "rating");
        assert_eq!(Rating::parse(6, None, 7).unwrap_err().0, "rating");
        assert_eq!(Rating::parse(300, None, 7).unwrap_err().0, "rating");
        assert!(Rating::parse(5, Some(&"é".repeat(1000)), 7).is_ok());
        assert_eq!(
            Rating::parse(5, Some(&"é".repeat(1001)), 7).unwrap_err().0,
            "comment"
        );
    }
}
