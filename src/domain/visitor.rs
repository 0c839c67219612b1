//! What a visitor's page tells agents about the visitor (an extension of the
//! visitor API): who they say they are (`setVisitor` on the widget) and the
//! page they are on. Every field is optional and bounded; a bad one is
//! refused whole, naming the field.

use serde_json::{Map, Value};

/// The visitor's context as the agents' console shows it. `None` fields are
/// unknown (or, in an update, unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VisitorContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The page the visitor is on (http or https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// A BCP 47 tag such as `fr-FR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// An IANA name such as `Europe/Paris`, for display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Minutes to add to UTC for the visitor's local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i32>,
    /// The browser's `User-Agent` header, as sent to the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A field that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError {
    pub field: &'static str,
    pub message: String,
}

impl VisitorContext {
    pub const MAX_USER_AGENT: usize = 512;

    /// Parses `{"visitor": {"name","email"}, "context": {"url","title",
    /// "referrer","language","time_zone","utc_offset_minutes"}}` (both
    /// parts optional). `None` when the body carries neither.
    pub fn parse(body: &Map<String, Value>) -> Result<Option<VisitorContext>, ContextError> {
        let visitor = object(body, "visitor")?;
        let context = object(body, "context")?;
        if visitor.is_none() && context.is_none() {
            return Ok(None);
        }
        let empty = Map::new();
        let visitor = visitor.unwrap_or(&empty);
        let context = context.unwrap_or(&empty);
        let email = text(visitor, "email", "visitor.email", 320)?;
        if let Some(email) = &email {
            let ok = email
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
                && !email.chars().any(char::is_whitespace)
                // What SMTP can deliver to (RFC 5321), so an accepted
                // address never fails at sending time.
                && email.parse::<lettre::Address>().is_ok();
            if !ok {
                return Err(ContextError {
                    field: "visitor.email",
                    message: format!("`{email}` is not an email address"),
                });
            }
        }
        let offset = match context.get("utc_offset_minutes") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .filter(|m| (-14 * 60..=14 * 60).contains(m))
                    .and_then(|m| i32::try_from(m).ok())
                    .ok_or_else(|| ContextError {
                        field: "context.utc_offset_minutes",
                        message: "utc_offset_minutes must be a whole number from -840 to 840"
                            .into(),
                    })?,
            ),
        };
        Ok(Some(VisitorContext {
            name: text(visitor, "name", "visitor.name", 200)?,
            email,
            url: web_url(context, "url", "context.url")?,
            title: text(context, "title", "context.title", 500)?,
            referrer: web_url(context, "referrer", "context.referrer")?,
            language: text(context, "language", "context.language", 35)?,
            time_zone: text(context, "time_zone", "context.time_zone", 64)?,
            utc_offset_minutes: offset,
            user_agent: None,
        }))
    }

    /// `update` over `self`: the fields `update` knows replace these.
    pub fn merged(mut self, update: VisitorContext) -> VisitorContext {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if update.$field.is_some() {
                    self.$field = update.$field;
                }
            )*};
        }
        take!(
            name,
            email,
            url,
            title,
            referrer,
            language,
            time_zone,
            utc_offset_minutes,
            user_agent
        );
        self
    }

    /// A short description of the browser and system from the user agent,
    /// such as "Firefox on Windows".
    pub fn browser(&self) -> Option<String> {
        let ua = self.user_agent.as_deref()?;
        let browser = if ua.contains("Edg/") {
            "Edge"
        } else if ua.contains("OPR/") {
            "Opera"
        } else if ua.contains("Firefox/") {
            "Firefox"
        } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
            "Chrome"
        } else if ua.contains("Safari/") {
            "Safari"
        } else {
            "A browser"
        };
        let system = if ua.contains("Android") {
            Some("Android")
        } else if ua.contains("iPhone") || ua.contains("iPad") {
            Some("iOS")
        } else if ua.contains("Windows") {
            Some("Windows")
        } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
            Some("macOS")
        } else if ua.contains("Linux") {
            Some("Linux")
        } else {
            None
        };
        Some(match system {
            Some(system) => format!("{browser} on {system}"),
            None => browser.to_string(),
        })
    }
}

fn object<'a>(
    body: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ContextError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(ContextError {
            field,
            message: format!("{field} must be an object"),
        }),
    }
}

/// A trimmed string of at most `max` characters; empty counts as absent.
fn text(
    map: &Map<String, Value>,
    key: &str,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, ContextError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max => Err(ContextError {
            field,
            message: format!("{field} is longer than {max} characters"),
        }),
        Some(Value::String(s)) if s.chars().any(char::is_control) => Err(ContextError {
            field,
            message: format!("{field} must not contain control characters"),
        }),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ContextError {
            field,
            message: format!("{field} must be a string"),
        }),
    }
}

/// An http or https URL of at most 2048 characters.
fn web_url(
    map: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, ContextError> {
    let Some(url) = text(map, key, field, 2048)? else {
        return Ok(None);
    };
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(Some(url))
    } else {
        Err(ContextError {
            field,
            message: format!("{field} must be an http or https URL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Option<VisitorContext>, ContextError> {
        VisitorContext::parse(body.as_object().unwrap())
    }

    #[test]
    fn a_full_context_parses_and_absent_parts_are_none() {
        let got = parse(json!({
            "visitor": {"name": " Ana ", "email": "ana@example.com"},
            "context": {"url": "https://shop.example.com/teas?x=1", "title": "Teas",
                        "referrer": "", "language": "fr-FR", "time_zone": "Europe/Paris",
                        "utc_offset_minutes": 60}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(got.name.as_deref(), Some("Ana"));
        assert_eq!(got.referrer, None, "empty is unknown");
        assert_eq!(got.utc_offset_minutes, Some(60));
        assert_eq!(parse(json!({"channel_id": "x"})).unwrap(), None);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (body, field) in [
            (json!({"visitor": "Ana"}), "visitor"),
            (json!({"visitor": {"email": "nope"}}), "visitor.email"),
            (json!({"visitor": {"name": 7}}), "visitor.name"),
            (
                json!({"visitor": {"name": "x".repeat(201)}}),
                "visitor.name",
            ),
            (
                json!({"context": {"url": "javascript:alert(1)"}}),
                "context.url",
            ),
            (
                json!({"context": {"referrer": "data:text/html,x"}}),
                "context.referrer",
            ),
            (json!({"context": {"title": "a\u{0}b"}}), "context.title"),
            (
                json!({"context": {"utc_offset_minutes": 5000}}),
                "context.utc_offset_minutes",
            ),
        ] {
            assert_eq!(parse(body.clone()).unwrap_err().field, field, "{body}");
        }
    }

    #[test]
    fn an_update_replaces_only_what_it_knows() {
        let old = VisitorContext {
            name: Some("Ana".into()),
            url: Some("https://a/1".into()),
            ..Default::default()
        };
        let new = VisitorContext {
            url: Some("https://a/2".into()),
            ..Default::default()
        };
        let merged = old.merged(new);
        assert_eq!(merged.name.as_deref(), Some("Ana"));
        assert_eq!(merged.url.as_deref(), Some("https://a/2"));
    }

    #[test]
    fn the_browser_is_named_from_the_user_agent() {
        let ctx = |ua: &str| VisitorContext {
            user_agent: Some(ua.into()),
            ..Default::default()
        };
        assert_eq!(
            ctx("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0")
                .browser()
                .as_deref(),
            Some("Firefox on Windows")
        );
        assert_eq!(
            ctx("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36")
                .browser()
                .as_deref(),
            Some("Chrome on Linux")
        );
        assert_eq!(VisitorContext::default().browser(), None);
    }
}
