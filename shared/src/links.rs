//! The web addresses a message's text holds, so clients can make exactly those clickable and
//! show everything else as text (a message is never markup).

use crate::conversation::Link;

/// Every `http://` or `https://` address in `text`, in order, each once. An address ends at
/// whitespace or a character that cannot be in one unescaped (`<>"` and the like); punctuation
/// that ends the sentence around it ("…here: https://x.example/pay.") is not part of it.
pub fn links_in(text: &str) -> Vec<Link> {
    let mut found: Vec<Link> = Vec::new();
    let mut rest = text;
    while let Some(start) = next_scheme(rest) {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '<' | '>' | '"' | '`' | '{' | '}' | '|' | '\\' | '^')
            })
            .unwrap_or(candidate.len());
        let url = trim_trailing(&candidate[..end]);
        let host = url.split_once("://").map_or("", |(_, h)| h);
        if !host.is_empty() && !host.starts_with('/') && !found.iter().any(|l| l.url == url) {
            found.push(Link {
                url: url.to_string(),
            });
        }
        rest = &candidate[end.max(1)..];
    }
    found
}

/// Where the next address starts: a scheme at the start of a word ("xhttps://" is none).
fn next_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("http") {
        let at = from + i;
        let after = &lower[at..];
        let word_start = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if word_start && (after.starts_with("https://") || after.starts_with("http://")) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// Drops sentence punctuation after an address; a closing bracket stays when the address
/// opened one (`https://en.example/wiki/Foo_(bar)`).
fn trim_trailing(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().next_back() else {
            return url;
        };
        let unbalanced = |open: char, close: char| {
            last == close && url.matches(open).count() < url.matches(close).count()
        };
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '*')
            || unbalanced('(', ')')
            || unbalanced('[', ']')
        {
            url = &url[..url.len() - last.len_utf8()];
        } else {
            return url;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<String> {
        links_in(text).into_iter().map(|l| l.url).collect()
    }

    #[test]
    fn addresses_are_found_without_the_sentence_around_them() {
        assert_eq!(
            urls("You can retry here: https://pay.example/r/abc?x=1.\nThanks!"),
            ["https://pay.example/r/abc?x=1"]
        );
        assert_eq!(
            urls("(see https://shop.example/track/9), or http://b.example:8080/x!"),
            ["https://shop.example/track/9", "http://b.example:8080/x"]
        );
        assert_eq!(
            urls("https://en.example/wiki/Foo_(bar) and HTTPS://A.example"),
            ["https://en.example/wiki/Foo_(bar)", "HTTPS://A.example"]
        );
    }

    #[test]
    fn only_web_addresses_at_a_word_start_count() {
        assert!(urls("javascript:alert(1) ftp://x.example mailto:a@b.example").is_empty());
        assert!(urls("xhttps://evil.example https:// http:///path").is_empty());
        assert_eq!(
            urls("<https://a.example/\"onmouseover=x> https://a.example/"),
            ["https://a.example/"]
        );
    }
}
