//! A channel as admins see it (agent-api.md, "Channels"; Airy's shape).

use serde_json::{json, Value};

use crate::domain::{Channel, OriginPattern};

pub fn channel(c: &Channel) -> Value {
    json!({
        "id": c.id,
        "source": "chatplugin",
        "source_channel_id": c.name,
        "connected": c.connected,
        "metadata": {"name": c.name, "image_url": c.image_url},
        "allowed_origins": c.allowed_origins.iter().map(OriginPattern::as_str).collect::<Vec<_>>(),
        "tenant_uuid": c.tenant_id,
        "welcome_message": c.look.welcome_message,
        "color": c.look.color,
        "assignment": c.routing.assignment.as_str(),
        "max_open_per_agent": c.routing.max_open_per_agent,
        "business_hours": c.desk.business_hours.as_ref().map(crate::domain::BusinessHours::to_json),
        "away_message": c.desk.away_message,
        "prechat": c.desk.prechat.to_json(),
        "auto_close_hours": c.desk.auto_close_hours,
        "email_fallback": c.look.email_fallback,
        "bot": c.routing.bot.map(|b| b.0),
    })
}

/// The public settings the widget shows (`/chatplugin.authenticate`'s
/// `channel`); `email_fallback`: whether it asks for an email (the channel's
/// setting, on a server that sends email).
pub fn public(c: &Channel, email_fallback: bool) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        // Stored before http(s) was required, a URL of another scheme is not served.
        "image_url": c.image_url.as_deref().filter(|u| crate::domain::url::is_web_url(u)),
        "welcome_message": c.look.welcome_message,
        "color": c.look.color,
        // The pre-chat form the widget shows before the first message.
        "prechat": c.desk.prechat.to_json(),
        "email_fallback": email_fallback,
    })
}
