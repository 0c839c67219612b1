//! Channels (website installations of the widget) and the origin patterns
//! that say which pages may use one.

use serde::{Deserialize, Serialize};

use super::ids::{ChannelId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub tenant_id: TenantId,
    pub name: String,
    pub image_url: Option<String>,
    /// Empty means any origin.
    pub allowed_origins: Vec<OriginPattern>,
    pub connected: bool,
    pub created_at_ms: i64,
    /// What the widget shows besides the name and image.
    pub look: ChannelLook,
    /// How new visitors reach agents.
    pub routing: Routing,
    /// Business hours, away message, pre-chat form, auto-close.
    #[serde(default)]
    pub desk: ChannelDesk,
}

/// A channel's support-desk settings (desk-api.md, "Support desk").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDesk {
    /// `None`: always open.
    pub business_hours: Option<super::BusinessHours>,
    /// Sent once per conversation to a visitor who writes while the
    /// channel is unavailable (at most 1000 characters).
    pub away_message: Option<String>,
    pub prechat: super::PrechatForm,
    /// Conversations idle this long (1..=720 hours) are closed.
    pub auto_close_hours: Option<u32>,
}

impl ChannelDesk {
    pub const MAX_AWAY_CHARS: usize = 1000;
    pub const MAX_AUTO_CLOSE_HOURS: u32 = 720;

    /// Whether the schedule has the channel open at `at_ms`.
    pub fn open_at(&self, at_ms: i64) -> bool {
        self.business_hours
            .as_ref()
            .is_none_or(|h| h.is_open(at_ms))
    }

    /// When a closed channel opens next (`None` while open, or never).
    pub fn back_at(&self, at_ms: i64) -> Option<i64> {
        self.business_hours.as_ref()?.next_opening(at_ms)
    }
}

/// Where a visitor may reach: the conversations of one channel of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitorScope {
    pub tenant: TenantId,
    pub channel: ChannelId,
}

/// The widget's public settings of a channel beyond its name and image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelLook {
    /// At most 500 characters, shown when the panel opens.
    pub welcome_message: Option<String>,
    /// `#rrggbb`, lowercase.
    pub color: Option<String>,
    /// Whether replies to offline visitors are emailed (when the server
    /// has SMTP) and the widget asks for an email when no agent is there.
    #[serde(default)]
    pub email_fallback: bool,
}

impl ChannelLook {
    pub const MAX_WELCOME_CHARS: usize = 500;

    /// `#rrggbb` (any case), returned in lowercase.
    pub fn parse_color(raw: &str) -> Result<String, String> {
        let ok = raw.len() == 7
            && raw.starts_with('#')
            && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(raw.to_ascii_lowercase())
        } else {
            Err(format!("`{raw}` is not a colour like #1f6feb"))
        }
    }
}

/// Who answers a channel's new visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub assignment: Assignment,
    /// Round robin gives an agent no more open visitor rooms than this (1..=100).
    pub max_open_per_agent: u32,
    /// The application (a bot) that takes every new conversation first,
    /// before the queue; `assignment` applies once it hands over.
    #[serde(default)]
    pub bot: Option<super::AgentId>,
}

impl Default for Routing {
    fn default() -> Routing {
        Routing {
            assignment: Assignment::Manual,
            max_open_per_agent: 5,
            bot: None,
        }
    }
}

impl Routing {
    pub const MAX_OPEN_LIMIT: u32 = 100;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// New visitors wait in the queue until an agent answers.
    Manual,
    /// New visitors go to the available agent with the fewest open rooms.
    RoundRobin,
}

impl Assignment {
    pub fn as_str(self) -> &'static str {
        match self {
            Assignment::Manual => "manual",
            Assignment::RoundRobin => "round_robin",
        }
    }

    pub fn parse(raw: &str) -> Option<Assignment> {
        match raw {
            "manual" => Some(Assignment::Manual),
            "round_robin" => Some(Assignment::RoundRobin),
            _ => None,
        }
    }
}

impl Channel {
    /// The conversations a visitor of this channel may reach.
    pub fn scope(&self) -> VisitorScope {
        VisitorScope {
            tenant: self.tenant_id,
            channel: self.id,
        }
    }

    /// Whether a browser page of `origin` may use this channel. Requests
    /// without an `Origin` header (servers, tests) are not browsers and pass.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(_) if self.allowed_origins.is_empty() => true,
            Some(origin) => self.allowed_origins.iter().any(|p| p.matches(origin)),
        }
    }
}

/// `scheme://host[:port]`, where host may start with `*.` to match any subdomain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OriginPattern {
    raw: String,
    scheme: String,
    /// Lowercase; without the `*.` of a wildcard.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl OriginPattern {
    pub fn parse(raw: &str) -> Result<OriginPattern, String> {
        let bad = || {
            format!(
                "`{raw}` is not an origin like https://shop.example.com or https://*.example.com"
            )
        };
        let lower = raw.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https")
            || rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
        {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(h) => (true, h),
            None => (false, host),
        };
        let label_ok =
            |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(OriginPattern {
            raw: raw.trim().to_string(),
            scheme: scheme.to_string(),
            host: host.to_string(),
            wildcard,
            port,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Matches a browser's `Origin` header value.
    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) => (h, Some(p)),
                Err(_) => return false,
            },
            None => (rest, None),
        };
        if scheme != self.scheme || port != self.port {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

impl TryFrom<String> for OriginPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        OriginPattern::parse(&s)
    }
}

impl From<OriginPattern> for String {
    fn from(p: OriginPattern) -> String {
        p.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OriginPattern {
        OriginPattern::parse(s).unwrap()
    }

    #[test]
    fn exact_origin_matches_only_itself() {
        let pat = p("https://shop.example.com");
        assert!(pat.matches("https://shop.example.com"));
        assert!(pat.matches("HTTPS://Shop.Example.com"));
        assert!(!pat.matches("http://shop.example.com"));
        assert!(!pat.matches("https://shop.example.com:8443"));
        assert!(!pat.matches("https://evil.com"));
        assert!(!pat.matches("https://shop.example.com.evil.com"));
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_the_apex_or_lookalikes() {
        let pat = p("https://*.example.com");
        assert!(pat.matches("https://a.example.com"));
        assert!(pat.matches("https://a.b.example.com"));
        assert!(!pat.matches("https://example.com"));
        assert!(!pat.matches("https://badexample.com"));
    }

    #[test]
    fn ports_must_match() {
        let pat = p("http://localhost:3000");
        assert!(pat.matches("http://localhost:3000"));
        assert!(!pat.matches("http://localhost"));
    }

    #[test]
    fn colours_are_six_hex_digits() {
        assert_eq!(ChannelLook::parse_color("#1F6feb").unwrap(), "#1f6feb");
        for bad in [
            "", "1f6feb", "#1f6fe", "#1f6febb", "#gggggg", "red", "#1f6fé",
        ] {
            assert!(ChannelLook::parse_color(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "example.com",
            "ftp://x.com",
            "https://",
            "https://x.com/path",
            "https://*.",
            "https://x.com:99999",
            "https://a b.com",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
