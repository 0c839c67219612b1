//! Canned responses: a tenant's prepared answers, found by their shortcut
//! or title and inserted into an agent's reply (desk-api.md, "Support
//! desk"). Their content may name fields (`{{visitor.name}}`,
//! `{{agent.name}}`, `{{channel.name}}`) that the console fills for the
//! conversation at hand when the answer is inserted (static/console.js;
//! the server stores and returns the content as written).

use std::fmt;

use super::ids::TenantId;
use uuid::Uuid;

/// Which canned response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CannedResponseId(pub Uuid);

#[allow(clippy::new_without_default)]
impl CannedResponseId {
    pub fn new() -> Self {
        CannedResponseId(Uuid::now_v7())
    }
}

impl fmt::Display for CannedResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for CannedResponseId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(CannedResponseId)
    }
}

/// The longest shortcut, in characters.
pub const MAX_SHORTCUT_CHARS: usize = 32;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub id: CannedResponseId,
    pub tenant_id: TenantId,
    pub shortcut: String,
    pub title: String,
    pub content: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl CannedResponse {
    /// What a search matches: the shortcut and the title, folded.
    pub fn search_text(&self) -> String {
        super::search::fold(&format!("{} {}", self.shortcut, self.title))
    }
}

/// Why a field of a canned response is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedFieldError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> CannedFieldError {
    CannedFieldError {
        field,
        message: message.into(),
    }
}

/// A shortcut: 1..=32 characters, none of them white space (a leading `/`,
/// as typed in the reply box, is dropped).
pub fn parse_shortcut(raw: &str) -> Result<String, CannedFieldError> {
    let s = raw.trim();
    let s = s.strip_prefix('/').unwrap_or(s);
    let chars = s.chars().count();
    if chars == 0 {
        return Err(refuse("shortcut", "shortcut must not be empty"));
    }
    if chars > MAX_SHORTCUT_CHARS {
        return Err(refuse(
            "shortcut",
            format!("shortcut must be at most {MAX_SHORTCUT_CHARS} characters"),
        ));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(refuse(
            "shortcut",
            "shortcut must have no spaces (nor a `/` but the first)",
        ));
    }
    Ok(s.to_string())
}

/// A title: 1..=100 characters once trimmed.
pub fn parse_title(raw: &str) -> Result<String, CannedFieldError> {
    let t = raw.trim();
    let chars = t.chars().count();
    if chars == 0 {
        return Err(refuse("title", "title must not be empty"));
    }
    if chars > MAX_TITLE_CHARS {
        return Err(refuse(
            "title",
            format!("title must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(refuse("title", "title must be one line of text"));
    }
    Ok(t.to_string())
}

/// A content: 1..=`max_chars` characters (the longest message), not only
/// white space; kept as written (its line breaks are the answer's).
pub fn parse_content(raw: &str, max_chars: usize) -> Result<String, CannedFieldError> {
    if raw.trim().is_empty() {
        return Err(refuse("content", "content must not be empty"));
    }
    if raw.chars().count() > max_chars {
        return Err(refuse(
            "content",
            format!("content must be at most {max_chars} characters"),
        ));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_are_one_word_of_at_most_32_characters() {
        assert_eq!(parse_shortcut("returns").unwrap(), "returns");
        assert_eq!(parse_shortcut("/returns").unwrap(), "returns");
        assert_eq!(parse_shortcut(" délai ").unwrap(), "délai");
        assert!(parse_shortcut("").is_err());
        assert!(parse_shortcut("/").is_err());
        assert!(parse_shortcut("two words").is_err());
        assert!(parse_shortcut("a/b").is_err());
        assert!(parse_shortcut(&"x".repeat(32)).is_ok());
        assert!(parse_shortcut(&"x".repeat(33)).is_err());
    }

    #[test]
    fn titles_and_contents_have_bounds() {
        assert_eq!(parse_title("  Returns  ").unwrap(), "Returns");
        assert!(parse_title(" ").is_err());
        assert!(parse_title(&"é".repeat(101)).is_err());
        assert!(parse_content("  \n ", 10).is_err());
        assert!(parse_content(&"a".repeat(11), 10).is_err());
        assert_eq!(parse_content("Hi\nthere", 10).unwrap(), "Hi\nthere");
    }

    #[test]
    fn searches_see_shortcut_and_title_folded() {
        let c = CannedResponse {
            id: CannedResponseId::new(),
            tenant_id: TenantId(Uuid::nil()),
            shortcut: "Retour".into(),
            title: "Délai de livraison".into(),
            content: "x".into(),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        assert_eq!(c.search_text(), "retour delai de livraison");
    }
}
