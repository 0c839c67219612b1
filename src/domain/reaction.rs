//! Reactions: one emoji per reaction, possibly several code points.

use uuid::Uuid;

/// One emoji: a single emoji grapheme cluster as Unicode lists them
/// (❤️, 👍🏽, 👨‍👩‍👧), checked against the emoji data of the `emojis` crate,
/// and held in its fully qualified spelling, so "❤" and "❤️" are one emoji
/// (one reaction per user, removable by either spelling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Emoji, &'static str> {
        if raw.is_empty() {
            return Err("emoji must not be empty");
        }
        // An emoji presentation selector may be left out by clients ("❤").
        let known = emojis::get(raw).or_else(|| {
            if raw.contains('\u{fe0f}') {
                None
            } else {
                emojis::get(&format!("{raw}\u{fe0f}"))
            }
        });
        match known {
            Some(emoji) => Ok(Emoji(emoji.as_str().to_string())),
            None => Err("emoji must be exactly one emoji"),
        }
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
    fn an_emoji_is_held_in_its_fully_qualified_spelling() {
        let heart = Emoji::parse("\u{2764}").unwrap();
        assert_eq!(heart.as_str(), "\u{2764}\u{fe0f}");
        assert_eq!(Emoji::parse("❤️").unwrap(), heart);
        for kept in ["👍🏽", "👨‍👩‍👧", "🎉"] {
            assert_eq!(Emoji::parse(kept).unwrap().as_str(), kept);
        }
    }

    #[test]
    fn text_empty_and_two_emojis_are_refused() {
        for bad in ["abc", "", "👍👍", "a", "👍 ", ":)"] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }
}
