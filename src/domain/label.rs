//! Labels: a tenant's tags for conversations (desk-api.md, "Support
//! desk"), each with a name (1..=50 characters, unique per tenant whatever
//! its case) and a colour (`#rrggbb`). A room carries the labels put on it.

use serde::{Deserialize, Serialize};

use super::ids::{LabelId, TenantId};

/// A label as its tenant keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: LabelId,
    pub tenant_id: TenantId,
    pub name: LabelName,
    pub color: LabelColor,
}

impl Label {
    /// The label as a room carries it.
    pub fn on_room(&self) -> RoomLabel {
        RoomLabel {
            id: self.id,
            name: self.name.as_str().to_string(),
            color: self.color.as_str().to_string(),
        }
    }
}

/// A label as a room carries it (`{"uuid", "name", "color"}` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomLabel {
    pub id: LabelId,
    pub name: String,
    pub color: String,
}

/// A label's name: 1..=50 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelName(String);

impl LabelName {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<LabelName, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("name must not be empty");
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err("name is longer than 50 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("name must not contain control characters");
        }
        Ok(LabelName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What uniqueness compares: the name folded to lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// A name read back from the store (validated when it was stored).
    pub fn from_stored(name: String) -> LabelName {
        LabelName(name)
    }
}

/// A label's colour: `#rrggbb`, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelColor(String);

impl LabelColor {
    pub fn parse(raw: &str) -> Result<LabelColor, &'static str> {
        let raw = raw.trim();
        let hex = raw.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("color must be #rrggbb");
        }
        Ok(LabelColor(raw.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A colour read back from the store (validated when it was stored).
    pub fn from_stored(color: String) -> LabelColor {
        LabelColor(color)
    }

    /// Black or white, whichever reads better on this colour (WCAG
    /// relative luminance), for a chip's text.
    pub fn text_color(&self) -> &'static str {
        text_on(&self.0)
    }
}

/// `#000000` or `#ffffff`, whichever has the higher contrast on `color`
/// (`#rrggbb`; anything else: black).
pub fn text_on(color: &str) -> &'static str {
    let channel = |i: usize| {
        color
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(|v| {
                let c = f64::from(v) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            })
            .unwrap_or(1.0)
    };
    let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with black (l + 0.05) / 0.05 against white 1.05 / (l + 0.05).
    if (l + 0.05) * (l + 0.05) > 0.0525 {
        "#000000"
    } else {
        "#ffffff"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(LabelName::parse("  Billing ").unwrap().as_str(), "Billing");
        assert!(LabelName::parse("   ").is_err());
        assert!(LabelName::parse(&"x".repeat(50)).is_ok());
        assert!(LabelName::parse(&"x".repeat(51)).is_err());
        assert!(LabelName::parse("a\nb").is_err());
        assert_eq!(LabelName::parse("VIP").unwrap().key(), "vip");
    }

    #[test]
    fn colors_are_six_hex_digits_after_a_hash() {
        assert_eq!(LabelColor::parse("#A1B2C3").unwrap().as_str(), "#a1b2c3");
        for bad in ["a1b2c3", "#abc", "#12345g", "#1234567", "", "red"] {
            assert!(LabelColor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chip_text_is_black_on_light_and_white_on_dark() {
        assert_eq!(text_on("#ffff00"), "#000000");
        assert_eq!(text_on("#1d4ed8"), "#ffffff");
        assert_eq!(text_on("#000000"), "#ffffff");
    }
}
