//! Messages as the console shows them: a small Markdown subset rendered to
//! HTML on the server (issue 17). Stored content stays the raw text; this
//! only decides how a bubble looks.
//!
//! The subset: bold, italic, strikethrough, inline code, code blocks,
//! links, lists and quotes; a line break is a line break (chat, not
//! documents). What it never produces:
//!
//! - raw HTML: an HTML block or inline tag in the text is shown as the text
//!   it is (escaped), not parsed;
//! - images by URL: `![alt](url)` becomes a link to `url` named `alt` (the
//!   agent's browser never fetches a URL a visitor chose);
//! - headings, tables, rules: shown as plain paragraphs.
//!
//! Two layers, so one mistake is not enough: the parser's events are
//! mapped to the subset first, then the HTML it writes goes through an
//! allow-list sanitizer (`ammonia`): only the tags above, `href` on links
//! with `http`, `https` or `mailto` (nothing relative, no `javascript:`),
//! and every link opens in a new tab with `rel="noopener noreferrer
//! nofollow"`. Only this module's output is ever marked `|safe` in a
//! template.

use std::collections::HashSet;
use std::sync::OnceLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// `content` as sanitized HTML (blocks: `<p>`, `<ul>`, `<pre>`…).
pub fn render(content: &str) -> String {
    let mut html = String::with_capacity(content.len() + content.len() / 4 + 16);
    pulldown_cmark::html::push_html(&mut html, subset(content));
    sanitizer().clean(&html).to_string()
}

/// `content` as the words a reader sees, without the markup: for previews
/// (the inbox's rows), where a bubble's formatting has no room.
pub fn plain(content: &str) -> String {
    let mut text = String::with_capacity(content.len());
    for event in subset(content) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock) => text.push(' '),
            _ => {}
        }
    }
    text.trim_end().to_string()
}

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH
}

/// Whether a link may point there: `http`, `https` or `mailto` (the
/// sanitizer checks again; this keeps a refused link plain text instead of
/// an `<a>` without a target).
fn linkable(url: &str) -> bool {
    let url = url.trim_start().as_bytes();
    ["http://", "https://", "mailto:"].iter().any(|scheme| {
        url.len() > scheme.len() && url[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
    })
}

/// The parser's events, narrowed to the subset.
fn subset(content: &str) -> impl Iterator<Item = Event<'_>> {
    // For each open link (or image), whether it is shown as one.
    let mut links: Vec<bool> = Vec::new();
    Parser::new_ext(content, options()).map(move |event| match event {
        Event::Start(Tag::Link { ref dest_url, .. } | Tag::Image { ref dest_url, .. })
            if !linkable(dest_url) =>
        {
            links.push(false);
            Event::Text("".into())
        }
        Event::End(TagEnd::Link | TagEnd::Image) if links.last() == Some(&false) => {
            links.pop();
            Event::Text("".into())
        }
        Event::Start(Tag::Link { .. } | Tag::Image { .. }) => {
            links.push(true);
            match event {
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }),
                other => other,
            }
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            links.pop();
            Event::End(TagEnd::Link)
        }
        other => narrow(other),
    })
}

/// The rest of the subset, event by event.
fn narrow(event: Event<'_>) -> Event<'_> {
    match event {
        // Raw HTML is text, escaped by the writer.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        // Headings are paragraphs; a rule is nothing.
        Event::Start(Tag::Heading { .. }) => Event::Start(Tag::Paragraph),
        Event::End(TagEnd::Heading(_)) => Event::End(TagEnd::Paragraph),
        Event::Rule => Event::Text("".into()),
        // A newline in a chat message means one.
        Event::SoftBreak => Event::HardBreak,
        other => other,
    }
}

/// The allow-list, built once.
fn sanitizer() -> &'static ammonia::Builder<'static> {
    static SANITIZER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    SANITIZER.get_or_init(|| {
        let mut b = ammonia::Builder::empty();
        b.tags(HashSet::from([
            "p",
            "br",
            "strong",
            "em",
            "del",
            "code",
            "pre",
            "a",
            "ul",
            "ol",
            "li",
            "blockquote",
        ]))
        .tag_attributes(
            [
                ("a", HashSet::from(["href"])),
                ("ol", HashSet::from(["start"])),
            ]
            .into_iter()
            .collect(),
        )
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        // What is removed with its content, not unwrapped to text: nothing
        // the parser can produce from text, but the sanitizer does not
        // rely on that.
        .clean_content_tags(HashSet::from(["script", "style"]));
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bold_italic_code_and_strikethrough_become_their_tags() {
        assert_eq!(
            render("**bold**, *italic*, _also_, `x < y` and ~~gone~~"),
            "<p><strong>bold</strong>, <em>italic</em>, <em>also</em>, <code>x &lt; y</code> and <del>gone</del></p>\n"
        );
    }

    #[test]
    fn code_blocks_keep_their_text_and_lose_the_language_class() {
        let html = render("```rust\nfn main() { println!(\"<hi>\"); }\n```");
        assert_eq!(
            html,
            "<pre><code>fn main() { println!(\"&lt;hi&gt;\"); }\n</code></pre>\n"
        );
    }

    #[test]
    fn lists_and_quotes_are_kept() {
        assert_eq!(
            render("- one\n- two\n\n3. three\n4. four\n\n> quoted"),
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<ol start=\"3\">\n<li>three</li>\n<li>four</li>\n</ol>\n<blockquote>\n<p>quoted</p>\n</blockquote>\n"
        );
    }

    #[test]
    fn a_newline_is_a_line_break() {
        assert_eq!(
            render("first line\nsecond line"),
            "<p>first line<br>\nsecond line</p>\n"
        );
    }

    #[test]
    fn links_open_in_a_new_tab_without_referrer_or_opener() {
        assert_eq!(
            render("see [the docs](https://example.com/a?b=1&c=2)"),
            "<p>see <a href=\"https://example.com/a?b=1&amp;c=2\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">the docs</a></p>\n"
        );
        assert!(render("<https://example.com>").contains("<a href=\"https://example.com\""));
        assert!(render("[mail](mailto:a@example.com)").contains("href=\"mailto:a@example.com\""));
    }

    #[test]
    fn script_tags_are_shown_as_text_never_as_elements() {
        let html = render("**bold** and `code` and <script>alert(1)</script>");
        assert_eq!(
            html,
            "<p><strong>bold</strong> and <code>code</code> and &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
        );
        let block = render("<script>\nalert(1)\n</script>");
        assert!(!block.contains("<script"), "{block}");
        assert!(block.contains("&lt;script&gt;"), "{block}");
    }

    #[test]
    fn raw_html_is_text() {
        for hostile in [
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<div onclick=\"alert(1)\">hi</div>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<style>body{display:none}</style>",
            "<svg onload=alert(1)>",
            "text <b onmouseover=alert(1)>b</b>",
        ] {
            let html = render(hostile);
            assert!(!html.contains("<img"), "{hostile} → {html}");
            assert!(!html.contains("<a "), "{hostile} → {html}");
            assert!(!html.contains("<div"), "{hostile} → {html}");
            assert!(!html.contains("<iframe"), "{hostile} → {html}");
            assert!(!html.contains("<style"), "{hostile} → {html}");
            assert!(!html.contains("<svg"), "{hostile} → {html}");
            assert!(!html.contains("<b "), "{hostile} → {html}");
            assert!(html.contains("&lt;"), "shown as text: {hostile} → {html}");
        }
    }

    #[test]
    fn dangerous_link_targets_are_dropped_but_their_text_stays() {
        for hostile in [
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](java\tscript:alert(1))",
            "[click](data:text/html,<script>alert(1)</script>)",
            "[click](vbscript:msgbox)",
            "[click](/console/logout)",
            "[click](//evil.example/x)",
            "[click](file:///etc/passwd)",
        ] {
            let html = render(hostile);
            assert!(!html.contains("<a"), "{hostile} → {html}");
            assert!(html.contains("click"), "{hostile} → {html}");
        }
    }

    #[test]
    fn an_image_is_a_link_to_its_url_never_fetched() {
        assert_eq!(
            render("![a cat](https://example.com/cat.png)"),
            "<p><a href=\"https://example.com/cat.png\" target=\"_blank\" rel=\"noopener noreferrer nofollow\">a cat</a></p>\n"
        );
        let html = render("![x](javascript:alert(1))");
        assert_eq!(html, "<p>x</p>\n");
        let html = render("[![inner](https://example.com/i.png)](https://example.com)");
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn headings_and_rules_are_plain_paragraphs() {
        assert_eq!(
            render("# Big\n\n---\n\nafter"),
            "<p>Big</p>\n\n<p>after</p>\n"
        );
    }

    #[test]
    fn nested_and_unbalanced_emphasis_stays_well_formed() {
        assert_eq!(
            render("***both*** and **bold *and italic***"),
            "<p><em><strong>both</strong></em> and <strong>bold <em>and italic</em></strong></p>\n"
        );
        assert_eq!(render("**not closed"), "<p>**not closed</p>\n");
        assert_eq!(render("2 * 3 * 4"), "<p>2 * 3 * 4</p>\n");
    }

    #[test]
    fn pathological_input_renders_to_bounded_safe_html() {
        // Speed is the benchmarks' business; here: each renders, stays
        // safe, and the output stays within a small multiple of the input.
        for hostile in [
            "*".repeat(20_000),
            "*a".repeat(10_000),
            "[".repeat(20_000),
            "> ".repeat(5_000),
            "- ".repeat(5_000),
            "`".repeat(20_000),
            "<".repeat(20_000),
        ] {
            let html = render(&hostile);
            assert!(!html.contains("<script"));
            assert!(html.len() < 20 * hostile.len() + 100, "{}", html.len());
        }
    }

    #[test]
    fn plain_text_drops_the_markup_for_previews() {
        assert_eq!(
            plain("**bold** and `code`\n- one\n- two\n\n[link](https://x.example)"),
            "bold and code one two link"
        );
        assert_eq!(plain("<b>raw</b>"), "<b>raw</b>");
        assert_eq!(plain(""), "");
    }
}
