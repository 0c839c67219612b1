//! URLs that clients render (a channel's image, an agent's avatar): only
//! absolute `http`/`https` ones, so no `javascript:`, `data:` or relative
//! URL ever reaches an `href` or `src` through chatgate.

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Whether `raw` is an absolute `http://` or `https://` URL (scheme in any
/// case) with a host, at most [`MAX_URL_LEN`] bytes, and without spaces or
/// control characters (which browsers strip or mangle, and which can
/// smuggle a second attribute or scheme past a naive check).
pub fn is_web_url(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_URL_LEN {
        return false;
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &raw[8..]
    } else if lower.starts_with("http://") {
        &raw[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::is_web_url;

    #[test]
    fn http_and_https_urls_with_a_host_are_web_urls() {
        for ok in [
            "https://cdn.example.com/logo.png",
            "http://example.com",
            "HTTPS://EXAMPLE.COM/A.PNG",
            "https://example.com:8443/a?b=c#d",
            "https://[::1]/x.png",
        ] {
            assert!(is_web_url(ok), "{ok}");
        }
    }

    #[test]
    fn other_schemes_relative_urls_and_smuggled_characters_are_not() {
        for bad in [
            "",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "vbscript:msgbox",
            "//evil.example/x.png",
            "/logo.png",
            "https://",
            "https:///path",
            "https://:443/x",
            "https://user@/x",
            "https://example.com/a b",
            "java\tscript:alert(1)",
            "https://example.com/\n",
            "ftp://example.com/x.png",
        ] {
            assert!(!is_web_url(bad), "{bad:?}");
        }
        assert!(!is_web_url(&format!(
            "https://example.com/{}",
            "a".repeat(2048)
        )));
    }
}
