//! Message search that behaves the same on every backend: the text is
//! folded in Rust (lowercase, accents removed) into a search column when
//! stored, the query is folded the same way, and SQL only runs a `LIKE`
//! with `%` and `_` escaped, so no collation or database extension matters.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Lowercase, without accents: "Café CRÈME" → "cafe creme".
pub fn fold(text: &str) -> String {
    // Runs once per stored message: plain ASCII needs no decomposition.
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The `LIKE` pattern (with `\` as escape) for a search query: its words in
/// order, anything between them. `None` when the query has no word.
pub fn like_pattern(query: &str) -> Option<String> {
    let folded = fold(query);
    let words: Vec<String> = folded
        .split_whitespace()
        .map(|w| {
            w.chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect()
        })
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("%{}%", words.join("%")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Café"), "cafe");
        assert_eq!(fold("CAFÉ"), "cafe");
        assert_eq!(fold("Ñandú Straße"), "nandu straße");
    }

    #[test]
    fn wildcards_in_a_query_match_literally() {
        assert_eq!(like_pattern("100%").unwrap(), "%100\\%%");
        assert_eq!(like_pattern("a_b").unwrap(), "%a\\_b%");
        assert_eq!(like_pattern("  Hello   Wörld ").unwrap(), "%hello%world%");
        assert_eq!(like_pattern("   "), None);
    }
}
