//! Reactions: one emoji per reaction, possibly several code points.

use uuid::Uuid;

/// One emoji: a single emoji grapheme cluster as Unicode lists them
/// (❤️, 👍🏽, 👨‍👩‍👧), checked against the emoji data of the `emojis` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Emoji, &'static str> {
        if raw.is_empty() {
            return Err("emoji must not be empty");
        }
        // An emoji presentation selector may be left out by clients ("❤").
        let known = emojis::get(raw).is_some()
            || (!raw.contains('\u{fe0f}') && emojis::get(&format!("{raw}\u{fe0f}")).is_some());
        if !known {
            return Err("emoji must be exactly one emoji");
        }
        Ok(Emoji(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reaction {
    pub emoji: String,
    pub user_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::Emoji;

    #[test]
    fn one_emoji_of_one_or_several_code_points_is_accepted() {
        for ok in ["❤️", "👍🏽", "👨‍👩‍👧", "🎉", "👍"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn text_empty_and_two_emojis_are_refused() {
        for bad in ["abc", "", "👍👍", "a", "👍 ", ":)"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
