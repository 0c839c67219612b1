//! What the console's templates show: rows built from the services' domain
//! values (rooms, messages, presences), never from API JSON.
//! Every string reaches HTML through askama, which escapes it.

use std::collections::HashMap;

use askama::Template;
use uuid::Uuid;

use crate::domain::time::{format_ms, now_ms};
use crate::domain::{
    Attachment, DeliveryState, LiveRoom, Message, PresenceState, RoomId, RoomKind, RoomState,
    SenderKind,
};

/// The frame around every logged-in page.
pub struct Chrome {
    pub title: String,
    /// Which tab is current: `inbox`, `colleagues`, `channels`, `agents`.
    pub nav: &'static str,
    pub me_id: String,
    pub me_name: String,
    pub is_admin: bool,
    /// The agent token, for the event socket (see README "Console").
    pub token: String,
    /// The agent's own presence state.
    pub presence: PresenceState,
    /// Where the presence form returns to.
    pub back: String,
    pub version: &'static str,
}

/// The presence states, in the order the switch offers them.
pub const PRESENCE_STATES: [(&str, &str); 4] = [
    ("available", "Available"),
    ("away", "Away"),
    ("unavailable", "Unavailable"),
    ("invisible", "Invisible"),
];

/// The reactions offered under each message.
pub const QUICK_REACTIONS: [&str; 6] = ["👍", "❤️", "😂", "🎉", "😮", "🙏"];

/// One line of a list in the inbox.
pub struct RoomRow {
    pub room_id: RoomId,
    pub id: String,
    pub name: String,
    pub kind: RoomKind,
    pub state: RoomState,
    pub unread: i64,
    /// Unread messages that mention this agent (the row's "@").
    pub mentions: i64,
    pub preview: String,
    pub time_iso: String,
    pub time: String,
    pub visitor_connected: bool,
    /// "4 min" in the queue.
    pub wait: String,
    pub current: bool,
    pub initials: String,
    /// The room's labels, as chips.
    pub labels: Vec<Chip>,
    /// Its page: a queued room's is read before answering.
    pub href: String,
    /// The visitor's rating, once given.
    pub rating: Option<RatingRow>,
    /// The visitor's identity was signed by the site.
    pub verified: bool,
}

/// A label as a chip: its colours come from `/console/labels.css` (the
/// console's CSP allows no inline style), by the class `lbl-<id>`.
pub struct Chip {
    pub id: String,
    pub class: String,
    pub name: String,
}

impl Chip {
    pub fn new(l: &crate::domain::RoomLabel) -> Chip {
        Chip {
            id: l.id.0.to_string(),
            class: chip_class(l.id),
            name: l.name.clone(),
        }
    }
}

/// The CSS class of a label's chips.
pub fn chip_class(id: crate::domain::LabelId) -> String {
    format!("lbl-{}", id.0.simple())
}

/// A label offered in a conversation's label menu.
pub struct LabelChoice {
    pub chip: Chip,
    pub on: bool,
}

/// The inbox's filter bar and search box, as the request gave them.
#[derive(Default)]
pub struct InboxFilters {
    pub label: String,
    pub channel: String,
    pub assignee: String,
    pub state: String,
    pub q: String,
    pub labels: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub agents: Vec<Choice>,
    /// Whether any filter is set (the lists are then one filtered list).
    pub active: bool,
    /// The query string of the filters (kept by the lists' refresh).
    pub query: String,
}

/// A visitor's rating as the console shows it: stars, and the comment.
#[derive(Clone)]
pub struct RatingRow {
    pub rating: u8,
    /// "★★★★☆".
    pub stars: String,
    pub comment: Option<String>,
}

impl RatingRow {
    fn new(rating: &crate::domain::Rating) -> RatingRow {
        let n = usize::from(rating.rating.min(5));
        RatingRow {
            rating: rating.rating,
            stars: format!("{}{}", "★".repeat(n), "☆".repeat(5 - n)),
            comment: rating.comment.clone(),
        }
    }
}

impl RoomRow {
    /// `names`: agent display names by id (agent rooms without a name are
    /// named after the other members).
    pub fn new(live: &LiveRoom, me: Uuid, names: &HashMap<Uuid, String>, current: &str) -> RoomRow {
        let room = live.room();
        let name = match room.display_name() {
            name if !name.is_empty() => name,
            _ => {
                let others: Vec<&str> = room
                    .members
                    .iter()
                    .filter(|m| m.id != me)
                    .filter_map(|m| names.get(&m.id).map(String::as_str))
                    .collect();
                if others.is_empty() {
                    "Team room".to_string()
                } else {
                    others.join(", ")
                }
            }
        };
        let (preview, at_ms) = match &live.summary.last_message {
            Some(m) => {
                let text = if m.deleted {
                    "Message deleted".to_string()
                } else {
                    let text = super::markdown::plain(&m.content);
                    match m.attachments.as_slice() {
                        [one] if text.is_empty() => format!("File: {}", one.name),
                        files if text.is_empty() && !files.is_empty() => {
                            format!("{} files", files.len())
                        }
                        _ => text,
                    }
                };
                let who = match (m.sender_kind, &m.sender_name) {
                    (SenderKind::Agent, Some(alias)) => format!("{alias}: "),
                    _ => String::new(),
                };
                (clip(&format!("{who}{text}"), 90), m.sent_at_ms)
            }
            None => (String::new(), room.created_at_ms),
        };
        let queued_at = room
            .queued_at_ms
            .filter(|_| room.state == RoomState::Queued);
        let at_ms = queued_at.unwrap_or(at_ms);
        let time_iso = format_ms(at_ms);
        let id = room.id.0.to_string();
        let href = if room.state == RoomState::Queued {
            format!("/console/queue/{id}")
        } else {
            format!("/console/rooms/{id}")
        };
        RoomRow {
            current: id == current,
            initials: initials(&name),
            room_id: room.id,
            id,
            kind: room.kind,
            state: room.state,
            unread: live.summary.unread_count,
            mentions: live.summary.unread_mentions,
            preview,
            time: when_label(at_ms, now_ms()),
            time_iso,
            visitor_connected: room.members.iter().any(|m| m.kind == RoomKind::Visitor)
                && live.visitor_connected == Some(true),
            wait: queued_at
                .map(|q| wait_label((now_ms() - q).max(0) / 1000))
                .unwrap_or_default(),
            labels: room.labels.iter().map(Chip::new).collect(),
            href,
            rating: room.rating.as_ref().map(RatingRow::new),
            verified: room.verified,
            name,
        }
    }
}

/// The inbox's lists.
pub struct Lists {
    pub queue: Vec<RoomRow>,
    pub mine: Vec<RoomRow>,
    pub team: Vec<RoomRow>,
    pub closed: Vec<RoomRow>,
    pub closed_prev: Option<u32>,
    pub closed_next: Option<u32>,
    pub filters: InboxFilters,
    /// With filters or a search: the matching conversations (the other
    /// lists are then empty).
    pub found: Vec<RoomRow>,
}

/// One message of a conversation.
pub struct MessageRow {
    pub id: String,
    pub room: String,
    pub seq: i64,
    /// `mine`, `theirs` or `system`.
    pub side: &'static str,
    pub sender: String,
    /// The raw text (the edit box shows it).
    pub content: String,
    /// The text as sanitized HTML (`markdown::render`): the only value a
    /// template marks `|safe`.
    pub html: String,
    /// The files it carries, with fresh signed URLs.
    pub attachments: Vec<AttachmentRow>,
    pub time_iso: String,
    /// When it was sent, as the agent reads it: "14:02", "Yesterday 14:02",
    /// "3 Dec 14:02" (UTC; the page's script relabels in local time).
    pub time: String,
    /// Milliseconds since the epoch (the script groups and separates by it).
    pub at_ms: i64,
    /// Who sent it (kind and id): consecutive messages of one sender group.
    pub sender_key: String,
    /// The day separator shown before it: the first message of a day.
    pub day: Option<DaySeparator>,
    /// Follows a message of the same sender within [`GROUP_MS`] on the same
    /// day: its sender's name is not repeated.
    pub grouped: bool,
    /// `sent`, `delivered`, `read`, `failed`, or empty (not a reply to a visitor).
    pub tick: &'static str,
    pub tick_label: &'static str,
    pub edited: bool,
    pub deleted: bool,
    pub reactions: Vec<ReactionRow>,
    /// Shown to someone reading only (a queued room, a supervisor): no
    /// reactions, edits or deletes.
    pub readonly: bool,
    /// The titles of the quick replies an agent's message offers (shown
    /// as chips, not buttons: only the visitor chooses).
    pub quick_replies: Vec<String>,
    /// The payload of the quick reply a visitor's message chose.
    pub postback: Option<String>,
    /// It mentions the reader (a badge, and a mark on the bubble).
    pub mentions_me: bool,
    /// A private note: agents only (no tick, no reactions, edits or deletes).
    pub private: bool,
    /// An application (a bot) wrote it: a "Bot" badge beside its name.
    pub bot: bool,
}

/// A file of a message: an image's thumbnail, or a download row.
pub struct AttachmentRow {
    pub name: String,
    /// "2.4 MB".
    pub size: String,
    /// The signed URL of the file (it expires: see `CHATGATE_FILE_URL_TTL`).
    pub url: String,
    /// Images only: the signed URL of the thumbnail.
    pub thumbnail_url: Option<String>,
    /// The thumbnail's box on the page, from the image's size (so the
    /// conversation does not jump while it loads).
    pub box_width: u32,
    pub box_height: u32,
    /// A short label of its type for the file row's icon: "PDF", "DOC"…
    pub kind: &'static str,
}

/// The largest box a thumbnail is shown in, in CSS pixels.
const THUMB_BOX: (u32, u32) = (240, 180);

impl AttachmentRow {
    pub fn new(a: &Attachment, url: String, thumbnail_url: Option<String>) -> AttachmentRow {
        let (box_width, box_height) = match (a.width, a.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => fit(w, h, THUMB_BOX),
            _ => THUMB_BOX,
        };
        AttachmentRow {
            name: a.name.clone(),
            size: human_size(a.size),
            url,
            thumbnail_url,
            box_width,
            box_height,
            kind: kind_label(&a.content_type, &a.name),
        }
    }
}

/// `w`×`h` scaled down (never up) to fit `max`, keeping its shape (at
/// least a pixel a side).
fn fit(w: u32, h: u32, max: (u32, u32)) -> (u32, u32) {
    let scale = f64::min(
        1.0,
        f64::min(
            f64::from(max.0) / f64::from(w),
            f64::from(max.1) / f64::from(h),
        ),
    );
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
    (side(w), side(h))
}

/// A size as people read it: "512 bytes", "48 KB", "2.4 MB".
pub fn human_size(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let b = bytes as f64;
    match bytes {
        0..=1023 => format!("{bytes} bytes"),
        1024..=1_048_575 => format!("{} KB", (b / KB).round().max(1.0)),
        _ if b / KB / KB < 10.0 => format!("{:.1} MB", b / KB / KB),
        _ if b / KB / KB / KB < 1.0 => format!("{} MB", (b / KB / KB).round()),
        _ => format!("{:.1} GB", b / KB / KB / KB),
    }
}

/// The label of a file's icon, by its type (judged from its content), or
/// its name's extension for the office formats that share one container.
fn kind_label(content_type: &str, name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match content_type {
        "application/pdf" => "PDF",
        t if t.starts_with("video/") => "VIDEO",
        t if t.starts_with("image/") => "IMG",
        t if t.starts_with("text/") => "TXT",
        _ => match ext.as_str() {
            "doc" | "docx" | "odt" | "rtf" => "DOC",
            "xls" | "xlsx" | "ods" | "csv" => "XLS",
            "ppt" | "pptx" | "odp" => "PPT",
            "zip" => "ZIP",
            _ => "FILE",
        },
    }
}

pub struct ReactionRow {
    pub emoji: String,
    pub count: usize,
    pub mine: bool,
}

impl MessageRow {
    pub fn new(m: &Message, me: Uuid, visitor_room: bool) -> MessageRow {
        let side = match m.sender_kind {
            SenderKind::System => "system",
            _ if m.sender_id == me => "mine",
            _ => "theirs",
        };
        let (tick, tick_label) = match (visitor_room, m.sender_kind, m.state) {
            _ if m.private => ("", ""),
            (true, SenderKind::Agent, _) if m.read_at_ms.is_some() => ("read", "Read"),
            (true, SenderKind::Agent, DeliveryState::Delivered) => ("delivered", "Delivered"),
            (true, SenderKind::Agent, DeliveryState::Pending) => ("sent", "Sent"),
            (true, SenderKind::Agent, DeliveryState::Failed) => ("failed", "Not delivered"),
            _ => ("", ""),
        };
        let sender = match m.sender_kind {
            SenderKind::Visitor => "Visitor".to_string(),
            SenderKind::System => String::new(),
            _ => m.sender_name.clone().unwrap_or_else(|| "Agent".into()),
        };
        let mut reactions: Vec<ReactionRow> = Vec::new();
        for r in &m.reactions {
            match reactions.iter_mut().find(|x| x.emoji == r.emoji) {
                Some(row) => {
                    row.count += 1;
                    row.mine |= r.user_id == me;
                }
                None => reactions.push(ReactionRow {
                    emoji: r.emoji.clone(),
                    count: 1,
                    mine: r.user_id == me,
                }),
            }
        }
        let time_iso = format_ms(m.sent_at_ms);
        MessageRow {
            id: m.id.to_string(),
            room: m.conversation_id.to_string(),
            seq: m.seq,
            side,
            sender,
            html: if m.deleted || m.sender_kind == SenderKind::System {
                String::new()
            } else {
                super::markdown::render(&m.content)
            },
            attachments: Vec::new(),
            content: m.content.clone(),
            time: when_label(m.sent_at_ms, now_ms()),
            time_iso,
            at_ms: m.sent_at_ms,
            sender_key: format!("{:?}:{}", m.sender_kind, m.sender_id),
            day: None,
            grouped: false,
            tick,
            tick_label,
            edited: m.edited_at_ms.is_some(),
            deleted: m.deleted,
            reactions,
            readonly: false,
            quick_replies: if m.deleted {
                Vec::new()
            } else {
                m.quick_replies.iter().map(|q| q.title.clone()).collect()
            },
            postback: m.postback.clone(),
            mentions_me: m.mentions.contains(&me),
            private: m.private,
            bot: m.bot,
        }
    }
}

/// A day's heading between messages: "Today", "Yesterday", "Thursday 3 December".
pub struct DaySeparator {
    /// `2026-12-03`.
    pub date: String,
    pub label: String,
}

/// Consecutive messages of one sender closer than this are grouped.
pub const GROUP_MS: i64 = 5 * 60 * 1000;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Sets the day separators and the grouping of messages shown oldest first
/// (days in UTC: the page's script redoes it in the agent's time zone).
/// A system notice breaks a group.
pub fn arrange(rows: &mut [MessageRow], now_ms: i64) {
    let mut previous: Option<(i64, &str, String)> = None;
    for row in rows.iter_mut() {
        let day = row.at_ms.div_euclid(DAY_MS);
        let same_day = previous
            .as_ref()
            .is_some_and(|(at, _, _)| at.div_euclid(DAY_MS) == day);
        row.day = (!same_day).then(|| DaySeparator {
            date: format_ms(row.at_ms)
                .get(..10)
                .unwrap_or_default()
                .to_string(),
            label: day_label(row.at_ms, now_ms),
        });
        row.grouped = same_day
            && row.side != "system"
            && previous.as_ref().is_some_and(|(at, side, key)| {
                *side != "system" && *key == row.sender_key && row.at_ms - at < GROUP_MS
            });
        previous = Some((row.at_ms, row.side, row.sender_key.clone()));
    }
}

fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Days from the day of `ms` to the day of `now_ms` (0: today, 1: yesterday).
fn days_ago(ms: i64, now_ms: i64) -> i64 {
    now_ms.div_euclid(DAY_MS) - ms.div_euclid(DAY_MS)
}

/// The heading of a day: "Today", "Yesterday", "Thursday 3 December", with
/// the year when it is not this year's.
pub fn day_label(ms: i64, now_ms: i64) -> String {
    let t = utc(ms);
    match days_ago(ms, now_ms) {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ if t.format("%Y").to_string() == utc(now_ms).format("%Y").to_string() => {
            t.format("%A %-d %B").to_string()
        }
        _ => t.format("%A %-d %B %Y").to_string(),
    }
}

/// A time with as much date as it needs: "14:02" today, "Yesterday 14:02",
/// "3 Dec 14:02" this year, "3 Dec 2025 14:02" before.
pub fn when_label(ms: i64, now_ms: i64) -> String {
    let t = utc(ms);
    let clock = t.format("%H:%M");
    match days_ago(ms, now_ms) {
        0 => clock.to_string(),
        1 => format!("Yesterday {clock}"),
        _ if t.format("%Y").to_string() == utc(now_ms).format("%Y").to_string() => {
            t.format("%-d %b %H:%M").to_string()
        }
        _ => t.format("%-d %b %Y %H:%M").to_string(),
    }
}

/// A choice in a picker.
pub struct Choice {
    pub id: String,
    pub name: String,
}

/// The open conversation.
pub struct Conversation {
    /// `member`, `queued` (read before answering) or `supervised` (an admin reading).
    pub mode: &'static str,
    /// Queued or supervised: nothing is written, marked read or told.
    pub readonly: bool,
    /// Its page (`/console/rooms/<id>`, `/console/queue/<id>`, `/console/all/<id>`).
    pub url: String,
    /// The agent is in it (a supervisor may open it as a member too).
    pub is_member: bool,
    /// Who answers it, by name.
    pub assignee: Option<String>,
    /// Whom a supervisor may assign it to.
    pub assign_to: Vec<Choice>,
    pub id: String,
    pub name: String,
    pub is_visitor: bool,
    pub state: RoomState,
    pub is_closed: bool,
    /// The visitor's rating (visitor rooms, once rated).
    pub rating: Option<RatingRow>,
    /// The visitor's identity was signed by the site.
    pub verified: bool,
    /// The visitor is blocked: its messages are refused.
    pub blocked: bool,
    pub visitor_connected: bool,
    pub messages: Vec<MessageRow>,
    /// `before_seq` of the next older page, when there is one.
    pub older: Option<i64>,
    pub last_seq: i64,
    /// Available agents it may be transferred to.
    pub transfer_to: Vec<Choice>,
    pub members: String,
    /// An agent room the agent is in: its members panel (add, remove, leave).
    pub is_team: bool,
    /// The agent's own id (its leave form).
    pub me: String,
    /// The agent room's members, by name (the agent first is not implied).
    pub member_list: Vec<Choice>,
    /// Colleagues who may be added (enabled agents not in the room).
    pub add_choices: Vec<Choice>,
    /// What the visitor's page said (visitor rooms only).
    pub visitor: Option<VisitorPanel>,
    /// The visitor's answers to the channel's pre-chat form.
    pub prechat: Option<crate::domain::PrechatAnswers>,
    /// The largest file an upload may be (the reply box refuses bigger
    /// ones before sending a byte).
    pub max_upload_bytes: u64,
    /// The room's labels, as chips.
    pub labels: Vec<Chip>,
    /// A member's visitor room: every label of the tenant, on or off.
    pub label_choices: Vec<LabelChoice>,
    /// What canned responses' fields become in this conversation (the
    /// reply box's picker fills them): the visitor's given name (empty when
    /// none), the agent's name, the channel's name (empty in agent rooms).
    pub fill_visitor: String,
    pub fill_agent: String,
    pub fill_channel: String,
}

/// GET /console/admin/labels: the tenant's labels.
#[derive(Template)]
#[template(path = "console/labels.html")]
pub struct LabelsPage {
    pub chrome: Chrome,
    pub labels: Vec<LabelAdminRow>,
    pub error: Option<String>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

pub struct LabelAdminRow {
    pub chip: Chip,
    pub color: String,
}

/// The visitor's context beside a conversation.
pub struct VisitorPanel {
    pub name: Option<String>,
    pub email: Option<String>,
    /// http or https only (checked when stored).
    pub url: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub language: Option<String>,
    pub browser: Option<String>,
    /// "14:05 (Europe/Paris)".
    pub local_time: Option<String>,
    pub is_empty: bool,
}

impl VisitorPanel {
    pub fn new(c: crate::domain::VisitorContext, now_ms: i64) -> VisitorPanel {
        let local_time = c.utc_offset_minutes.map(|offset| {
            let minutes = (now_ms / 60_000 + i64::from(offset)).rem_euclid(24 * 60);
            let clock = format!("{:02}:{:02}", minutes / 60, minutes % 60);
            match &c.time_zone {
                Some(zone) => format!("{clock} ({zone})"),
                None => clock,
            }
        });
        let browser = c.browser();
        VisitorPanel {
            is_empty: c == crate::domain::VisitorContext::default(),
            name: c.name,
            email: c.email,
            url: c.url,
            title: c.title,
            referrer: c.referrer,
            language: c.language,
            browser,
            local_time,
        }
    }
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub login_token: String,
    pub error: Option<String>,
    pub email: String,
    pub version: &'static str,
}

#[derive(Template)]
#[template(path = "console/inbox.html")]
pub struct InboxPage {
    pub chrome: Chrome,
    pub lists: Lists,
    pub conversation: Option<Conversation>,
    pub notice: Option<&'static str>,
    pub csrf: String,
    pub reactions: [&'static str; 6],
    pub states: [(&'static str, &'static str); 4],
}

#[derive(Template)]
#[template(path = "console/lists_fragment.html")]
pub struct ListsFragment {
    pub lists: Lists,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "console/messages_fragment.html")]
pub struct MessagesFragment {
    pub messages: Vec<MessageRow>,
    pub csrf: String,
    pub older: Option<i64>,
    /// The conversation's page, for the "older" link.
    pub url: String,
    pub reactions: [&'static str; 6],
}

/// A room of the All list: its row, channel and assignee.
pub struct AllRow {
    pub row: RoomRow,
    pub channel: String,
    pub assignee: Option<String>,
}

/// GET /console/all: every visitor room of the tenant (admins).
#[derive(Template)]
#[template(path = "console/all.html")]
pub struct AllPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
    pub room_states: [(&'static str, &'static str); 3],
    pub rows: Vec<AllRow>,
    /// Rooms matching the filters.
    pub total: u64,
    /// The filters as chosen (empty: any).
    pub state: String,
    pub channel: String,
    pub assignee: String,
    pub channels: Vec<Choice>,
    pub agents: Vec<Choice>,
    pub label: String,
    pub labels: Vec<Choice>,
    pub filtered: bool,
    /// Query strings of the previous and next pages.
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// GET /console/all/<room>: one conversation, read by a supervisor.
#[derive(Template)]
#[template(path = "console/supervise.html")]
pub struct SupervisePage {
    pub chrome: Chrome,
    pub conversation: Conversation,
    pub notice: Option<&'static str>,
    pub csrf: String,
    pub reactions: [&'static str; 6],
    pub states: [(&'static str, &'static str); 4],
}

/// The room states the All list filters by.
pub const ROOM_STATES: [(&str, &str); 3] =
    [("queued", "Queued"), ("open", "Open"), ("closed", "Closed")];

pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub state: PresenceState,
    pub connected: bool,
    pub me: bool,
    pub initials: String,
}

#[derive(Template)]
#[template(path = "console/colleagues.html")]
pub struct ColleaguesPage {
    pub chrome: Chrome,
    pub agents: Vec<AgentRow>,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

/// What a notice code in `?notice=` says (a fixed set: nothing a link could inject).
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "taken" => "Another agent answered this visitor first.",
        "transferred" => "The conversation was transferred.",
        "empty" => "A reply cannot be empty.",
        "invalid" => "That did not work: check what you entered.",
        "unqueued" => "This visitor is no longer waiting in the queue.",
        "assigned" => "The conversation was assigned.",
        "left" => "You left the room.",
        "labelled" => "Labels saved.",
        "blocked" => "The visitor is blocked: their messages are refused.",
        "unblocked" => "The visitor is unblocked.",
        "erased" => "The visitor's data was erased: this conversation is an anonymous shell now.",
        "retention" => "Retention saved.",
        _ => return None,
    })
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

pub fn wait_label(seconds: i64) -> String {
    match seconds {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next().filter(|c| c.is_alphabetic()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-05T14:02:00Z
    const NOW: i64 = 1_796_479_320_000;
    const MIN: i64 = 60 * 1000;

    fn row(side: &'static str, sender: &str, at_ms: i64) -> MessageRow {
        MessageRow {
            id: String::new(),
            room: String::new(),
            seq: 0,
            side,
            sender: sender.into(),
            content: String::new(),
            html: String::new(),
            attachments: Vec::new(),
            time_iso: format_ms(at_ms),
            time: String::new(),
            at_ms,
            sender_key: sender.into(),
            day: None,
            grouped: false,
            tick: "",
            tick_label: "",
            edited: false,
            deleted: false,
            reactions: Vec::new(),
            readonly: false,
            quick_replies: Vec::new(),
            postback: None,
            mentions_me: false,
            private: false,
            bot: false,
        }
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(48_213), "47 KB");
        assert_eq!(human_size(2_516_582), "2.4 MB");
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
        assert_eq!(human_size(734_003_200), "700 MB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GB");
    }

    #[test]
    fn a_thumbnail_box_keeps_the_image_shape_and_never_grows_it() {
        assert_eq!(fit(800, 600, THUMB_BOX), (240, 180));
        assert_eq!(fit(600, 1200, THUMB_BOX), (90, 180));
        assert_eq!(fit(4000, 100, THUMB_BOX), (240, 6));
        assert_eq!(fit(100, 80, THUMB_BOX), (100, 80));
        assert_eq!(fit(100_000, 1, THUMB_BOX), (240, 1));
    }

    #[test]
    fn file_icons_name_the_kind_of_file() {
        assert_eq!(kind_label("application/pdf", "a.pdf"), "PDF");
        assert_eq!(kind_label("application/zip", "Report.DOCX"), "DOC");
        assert_eq!(kind_label("application/zip", "sheet.xlsx"), "XLS");
        assert_eq!(kind_label("video/mp4", "clip.mp4"), "VIDEO");
        assert_eq!(kind_label("text/plain", "notes"), "TXT");
        assert_eq!(kind_label("application/octet-stream", "x"), "FILE");
    }

    #[test]
    fn times_carry_as_much_date_as_they_need() {
        assert_eq!(format_ms(NOW), "2026-12-05T14:02:00.000Z");
        assert_eq!(when_label(NOW - 60 * MIN, NOW), "13:02");
        assert_eq!(when_label(NOW - 24 * 60 * MIN, NOW), "Yesterday 14:02");
        assert_eq!(when_label(NOW - 3 * 24 * 60 * MIN, NOW), "2 Dec 14:02");
        assert_eq!(
            when_label(NOW - 400 * 24 * 60 * MIN, NOW),
            "31 Oct 2025 14:02"
        );
        assert_eq!(day_label(NOW, NOW), "Today");
        assert_eq!(day_label(NOW - 24 * 60 * MIN, NOW), "Yesterday");
        assert_eq!(
            day_label(NOW - 2 * 24 * 60 * MIN, NOW),
            "Thursday 3 December"
        );
        assert_eq!(
            day_label(NOW - 400 * 24 * 60 * MIN, NOW),
            "Friday 31 October 2025"
        );
    }

    #[test]
    fn a_conversation_over_days_is_separated_and_one_senders_run_grouped() {
        let yesterday = NOW - 24 * 60 * MIN;
        let mut rows = vec![
            row("theirs", "visitor", yesterday),
            row("theirs", "visitor", yesterday + MIN),
            row("mine", "agent", yesterday + 2 * MIN),
            row("mine", "agent", yesterday + 20 * MIN),
            row("system", "system", yesterday + 21 * MIN),
            row("system", "system", yesterday + 21 * MIN),
            row("theirs", "visitor", NOW - MIN),
            row("theirs", "visitor", NOW),
        ];
        arrange(&mut rows, NOW);
        let days: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.day.as_ref().map(|d| d.label.as_str()))
            .collect();
        assert_eq!(
            days,
            [
                Some("Yesterday"),
                None,
                None,
                None,
                None,
                None,
                Some("Today"),
                None
            ]
        );
        assert_eq!(rows[0].day.as_ref().unwrap().date, "2026-12-04");
        let grouped: Vec<bool> = rows.iter().map(|r| r.grouped).collect();
        // A new sender, a gap of 18 minutes, a notice and a new day each
        // start a group.
        assert_eq!(
            grouped,
            [false, true, false, false, false, false, false, true]
        );
    }
}

/// GET /console/admin/data: the tenant's retention and its audit log.
#[derive(Template)]
#[template(path = "console/data.html")]
pub struct DataPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
    /// The retention in days, empty when off.
    pub retention_days: String,
    pub max_days: u32,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    pub entries: Vec<AuditRow>,
    pub total: i64,
}

/// One entry of the audit log, as the data page shows it.
pub struct AuditRow {
    pub at: String,
    pub action: &'static str,
    pub actor: String,
    /// The conversations concerned (their ids).
    pub conversations: Vec<String>,
    pub detail: String,
}

/// GET /console/all/<room>/erase: what erasing the visitor does, and the
/// form that does it.
#[derive(Template)]
#[template(path = "console/erase.html")]
pub struct ErasePage {
    pub chrome: Chrome,
    pub csrf: String,
    pub states: [(&'static str, &'static str); 4],
    pub id: String,
    pub name: String,
    pub verified: bool,
}
