//! Message search that behaves the same on every backend: the text is
//! folded in Rust (lowercase, accents removed) into a search column when
//! stored, the query is folded the same way, and SQL only runs a `LIKE`
//! with `%` and `_` escaped, so no collation or database extension matters.

use std::borrow::Cow;

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

/// The search text of a message: its words as a reader sees them, folded.
pub fn message_text(content: &str) -> String {
    fold(&plain_text(content))
}

/// A message's text without its Markdown markup (emphasis markers, code
/// fences, a link's URL, list bullets), so that a search matches what is
/// shown, not how it was written. Raw HTML is shown as text, so it stays.
/// Text without any markup character is returned as it is, unparsed.
pub fn plain_text(content: &str) -> Cow<'_, str> {
    use pulldown_cmark::{Event, Options, Parser, TagEnd};
    const MARKUP: [char; 8] = ['*', '_', '`', '[', '#', '>', '~', '\\'];
    // A list item: `- x`, `+ x` or `1. x` at the start of a line.
    let item = |line: &str| {
        let line = line.trim_start();
        line.starts_with("- ")
            || line.starts_with("+ ")
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if !content.contains(MARKUP) && !content.lines().any(item) {
        return Cow::Borrowed(content);
    }
    let mut out = String::with_capacity(content.len());
    let gap = |out: &mut String| {
        let kept = out.trim_end().len();
        out.truncate(kept);
        if kept > 0 {
            out.push(' ');
        }
    };
    for event in Parser::new_ext(content, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak | Event::Rule => gap(&mut out),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::Heading(_)
                | TagEnd::BlockQuote(_),
            ) => gap(&mut out),
            _ => {}
        }
    }
    Cow::Owned(out.trim_end().to_string())
}

/// Checks a search query as a client typed it: at most `max_chars`
/// characters, and no control character (C0, DEL, C1: NUL cannot even be
/// stored in PostgreSQL text, so one backend would refuse what the other
/// matched). The reason, when it is refused.
pub fn check_query(query: &str, max_chars: usize) -> Result<(), String> {
    if query.chars().nth(max_chars).is_some() {
        return Err(format!("search is longer than {max_chars} characters"));
    }
    if let Some(c) = query.chars().find(|c| c.is_control()) {
        return Err(format!(
            "search must not contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(())
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

/// The `LIKE` pattern (with `\\` as escape) for text that starts with the
/// query as typed (folded): `None` when the query is blank.
pub fn prefix_pattern(query: &str) -> Option<String> {
    let folded = fold(query.trim());
    if folded.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(folded.len() + 1);
    for c in folded.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    Some(out)
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
    fn the_search_text_leaves_the_markup_out() {
        assert_eq!(
            plain_text("plain words, 3 of them"),
            "plain words, 3 of them"
        );
        assert!(matches!(plain_text("no markup here"), Cow::Borrowed(_)));
        assert_eq!(
            plain_text("**Bold** and _it_ and `code()` and [the docs](https://ex.com/x)"),
            "Bold and it and code() and the docs"
        );
        assert_eq!(plain_text("- one\n- two\n\n1. three"), "one two three");
        assert_eq!(
            plain_text("```\nlet x = 1;\n```\nafter"),
            "let x = 1; after"
        );
        assert_eq!(plain_text("<b>raw</b> stays"), "<b>raw</b> stays");
        assert_eq!(plain_text("a\\*b"), "a*b");
        assert_eq!(message_text("**Café** crème"), "cafe creme");
        // A search for the words finds them; one for the markup does not.
        let stored = message_text("see **the [docs](https://example.com/help)**");
        let pattern = like_pattern("the docs").unwrap();
        assert_eq!(pattern, "%the%docs%");
        assert!(stored.contains("the docs") && !stored.contains("example.com"));
    }

    #[test]
    fn queries_with_control_characters_or_too_long_are_refused() {
        assert_eq!(check_query("café au lait", 256), Ok(()));
        assert_eq!(check_query("", 256), Ok(()));
        for bad in [
            "\0",
            "a\u{1}b",
            "tab\there",
            "new\nline",
            "\u{1f}",
            "del\u{7f}",
            "\u{85}",
        ] {
            let err = check_query(bad, 256).unwrap_err();
            assert!(err.contains("control characters"), "{bad:?}: {err}");
        }
        assert_eq!(check_query(&"é".repeat(4), 4), Ok(()));
        assert!(check_query(&"é".repeat(5), 4)
            .unwrap_err()
            .contains("longer than 4"));
    }

    #[test]
    fn wildcards_in_a_query_match_literally() {
        assert_eq!(like_pattern("100%").unwrap(), "%100\\%%");
        assert_eq!(like_pattern("a_b").unwrap(), "%a\\_b%");
        assert_eq!(like_pattern("  Hello   Wörld ").unwrap(), "%hello%world%");
        assert_eq!(like_pattern("   "), None);
        assert_eq!(prefix_pattern(" Ré_t ").unwrap(), "re\\_t%");
        assert_eq!(prefix_pattern(" "), None);
    }
}
