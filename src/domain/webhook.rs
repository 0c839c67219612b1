//! Webhooks (desk-api.md, "Integrations"): a tenant's endpoints, the event
//! types they subscribe to, and the Standard Webhooks signature of what is
//! sent to them. No I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ids::{TenantId, WebhookId};

/// Every event type an endpoint may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ConversationCreated,
    ConversationQueued,
    ConversationAssigned,
    ConversationTransferred,
    ConversationClosed,
    ConversationReopened,
    ConversationRated,
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    PresenceUpdated,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::ConversationCreated,
        EventType::ConversationQueued,
        EventType::ConversationAssigned,
        EventType::ConversationTransferred,
        EventType::ConversationClosed,
        EventType::ConversationReopened,
        EventType::ConversationRated,
        EventType::MessageCreated,
        EventType::MessageUpdated,
        EventType::MessageDeleted,
        EventType::PresenceUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ConversationCreated => "conversation.created",
            EventType::ConversationQueued => "conversation.queued",
            EventType::ConversationAssigned => "conversation.assigned",
            EventType::ConversationTransferred => "conversation.transferred",
            EventType::ConversationClosed => "conversation.closed",
            EventType::ConversationReopened => "conversation.reopened",
            EventType::ConversationRated => "conversation.rated",
            EventType::MessageCreated => "message.created",
            EventType::MessageUpdated => "message.updated",
            EventType::MessageDeleted => "message.deleted",
            EventType::PresenceUpdated => "presence.updated",
        }
    }

    pub fn parse(raw: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// What an endpoint subscribes to: everything (`["*"]`), or a set of types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Only(Vec<EventType>),
}

/// Most event names in one endpoint's list.
pub const MAX_EVENTS: usize = 32;

impl EventFilter {
    /// `["*"]` or known event names (at least one; repeats count once);
    /// anything else is refused with the reason.
    pub fn parse(names: &[String]) -> Result<EventFilter, String> {
        if names.is_empty() {
            return Err("events must name at least one event type, or be [\"*\"]".into());
        }
        if names.len() > MAX_EVENTS {
            return Err(format!("events has more than {MAX_EVENTS} names"));
        }
        if names.iter().any(|n| n == "*") {
            return if names.len() == 1 {
                Ok(EventFilter::All)
            } else {
                Err("\"*\" stands alone in events".into())
            };
        }
        let mut types = Vec::with_capacity(names.len());
        for name in names {
            let t = EventType::parse(name).ok_or_else(|| format!("unknown event type `{name}`"))?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        types.sort();
        Ok(EventFilter::Only(types))
    }

    pub fn wants(&self, t: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(types) => types.contains(&t),
        }
    }

    /// The names as the API shows them (and the store keeps them).
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventFilter::All => vec!["*"],
            EventFilter::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }

    /// The stored JSON list.
    pub fn encode(&self) -> String {
        serde_json::to_string(&self.names()).unwrap_or_else(|_| "[]".into())
    }

    pub fn decode(raw: &str) -> Option<EventFilter> {
        let names: Vec<String> = serde_json::from_str(raw).ok()?;
        EventFilter::parse(&names).ok()
    }
}

/// A webhook endpoint's URL: an absolute `http` or `https` URL with a host,
/// no credentials and no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<WebhookUrl, &'static str> {
        if !super::url::is_web_url(raw) {
            return Err("url must be an absolute http or https URL");
        }
        let rest = raw.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.contains('@') {
            return Err("url must not carry credentials");
        }
        if raw.contains('#') {
            return Err("url must not have a fragment");
        }
        Ok(WebhookUrl(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    /// Why the URL names a host inside the operator's network, if it does:
    /// an IP literal that is not a public address (in any form the HTTP
    /// client reads as one: `http://2130706433/` is 127.0.0.1), or
    /// `localhost` and its subdomains (RFC 6761). DNS names are judged by
    /// what they resolve to, when a delivery connects.
    pub fn private_target(&self) -> Option<String> {
        let parsed = url::Url::parse(&self.0).ok()?;
        match parsed.host()? {
            url::Host::Ipv4(ip) => (!is_public_address(IpAddr::V4(ip)))
                .then(|| format!("{ip} is not a public address")),
            url::Host::Ipv6(ip) => (!is_public_address(IpAddr::V6(ip)))
                .then(|| format!("{ip} is not a public address")),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (name == "localhost" || name.ends_with(".localhost"))
                    .then(|| format!("{name} is this server itself"))
            }
        }
    }
}

/// Whether `ip` is a public (globally reachable) unicast address: not
/// loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16,
/// cloud metadata included; fe80::/10), unspecified, shared (100.64.0.0/10),
/// documentation, benchmarking, reserved, multicast or broadcast. An IPv6
/// address that embeds an IPv4 one (mapped, NAT64, 6to4) is judged by it.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", unspecified
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared (carrier-grade NAT)
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 they embed.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments, Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8)) // documentation
}

/// A webhook's signing key (24 to 32 random bytes), shown as `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The Standard Webhooks prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";

impl WebhookSecret {
    /// A fresh random 32-byte key.
    pub fn generate() -> WebhookSecret {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        WebhookSecret(key)
    }

    /// The key as stored: plain base64.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    pub fn decode(stored: &str) -> Option<WebhookSecret> {
        let stored = stored.strip_prefix(SECRET_PREFIX).unwrap_or(stored);
        base64::engine::general_purpose::STANDARD
            .decode(stored)
            .ok()
            .filter(|k| !k.is_empty())
            .map(WebhookSecret)
    }

    /// `whsec_<base64 key>`: what the receiver configures.
    pub fn shown(&self) -> String {
        format!("{SECRET_PREFIX}{}", self.encode())
    }

    /// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag)
        )
    }
}

/// One of a tenant's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub url: WebhookUrl,
    pub events: EventFilter,
    pub secret: WebhookSecret,
    pub enabled: bool,
    /// Why it was paused (failing for 24 hours), while it is.
    pub paused_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One delivery of an event to an endpoint, as its log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The outbox row's id.
    pub id: uuid::Uuid,
    pub webhook_id: WebhookId,
    /// The event's id (`webhook-id`) and type.
    pub event_id: String,
    pub event_type: String,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The last answer's HTTP status (none: no answer).
    pub last_status: Option<i64>,
    /// How long the last attempt took.
    pub last_duration_ms: Option<i64>,
    pub sent_at_ms: Option<i64>,
    pub dropped_at_ms: Option<i64>,
    /// When it is tried next, while it is pending.
    pub due_at_ms: i64,
}

impl WebhookDelivery {
    /// `delivered`, `failed` (given up), `retrying` or `pending`.
    pub fn status(&self) -> &'static str {
        if self.sent_at_ms.is_some() {
            "delivered"
        } else if self.dropped_at_ms.is_some() {
            "failed"
        } else if self.attempts > 0 {
            "retrying"
        } else {
            "pending"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_are_star_alone_or_known_names() {
        assert_eq!(EventFilter::parse(&["*".into()]), Ok(EventFilter::All));
        assert!(EventFilter::parse(&[]).is_err());
        assert!(EventFilter::parse(&["*".into(), "message.created".into()]).is_err());
        assert!(EventFilter::parse(&["message.sent".into()]).is_err());
        let f = EventFilter::parse(&["message.created".into(), "message.created".into()]).unwrap();
        assert_eq!(f.names(), vec!["message.created"]);
        assert!(f.wants(EventType::MessageCreated));
        assert!(!f.wants(EventType::ConversationClosed));
        assert_eq!(EventFilter::decode(&f.encode()), Some(f));
    }

    #[test]
    fn webhook_urls_are_http_or_https_without_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/in?x=1").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:8080/").is_ok());
        for bad in [
            "ftp://x",
            "javascript:alert(1)",
            "https://u:p@example.com/",
            "https://example.com/#a",
            "/relative",
            "",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn internal_addresses_and_localhost_are_private_targets_and_names_are_judged_later() {
        for private in [
            "http://127.0.0.1:8080/",
            "http://127.9.9.9/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:101::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://localhost:9000/",
            "http://LOCALHOST./",
            "http://api.localhost/",
        ] {
            let url = WebhookUrl::parse(private).unwrap();
            assert!(url.private_target().is_some(), "{private}");
        }
        for public in [
            "https://hooks.example.com/in",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "http://localhost.example.com/",
        ] {
            let url = WebhookUrl::parse(public).unwrap();
            assert_eq!(url.private_target(), None, "{public}");
        }
        assert_eq!(
            WebhookUrl::parse("http://169.254.169.254/")
                .unwrap()
                .private_target()
                .unwrap(),
            "169.254.169.254 is not a public address"
        );
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = WebhookSecret::decode("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let fresh = WebhookSecret::generate();
        assert!(fresh.shown().starts_with("whsec_"));
        assert_eq!(WebhookSecret::decode(&fresh.shown()), Some(fresh));
    }
}
