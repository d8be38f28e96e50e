//! One knowledge document as `switchboard train` reads it: `knowledge/<lang>/<name>.md` (or
//! `.txt`), TOML front matter optional, sections at `#`–`###` headings.
//!
//! What comes out is plain text a passage can quote and a model can read: emphasis markers
//! are dropped and a link keeps its address in brackets (`[text](url)` → `text (url)`), so
//! an address in a document can still be cited from the passage that holds it.

use serde::Deserialize;

/// A document, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The front matter's `title`, else the first `# ` heading, else the file's stem.
    pub title: String,
    /// The front matter's `url`: where the source line points the customer.
    pub url: Option<String>,
    pub sections: Vec<Section>,
}

/// The text under one heading, up to the next heading of any level.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The headings above and of this section, outermost first. The first is the document's
    /// `# ` heading, or its title when it has none, so every passage says what it is from.
    pub path: Vec<String>,
    /// Paragraphs (a list item is one), each on one line.
    pub paragraphs: Vec<String>,
}

impl Section {
    /// "Returns › Return shipping": the heading path as a passage shows it.
    pub fn heading(&self) -> String {
        self.path.join(" › ")
    }
}

/// The front matter's keys; any other is a mistake worth reporting (a typo of `title`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<String>,
    url: Option<String>,
}

/// `text` without its HTML comments (`<!-- … -->`, on one line or across several): notes to
/// the document's writers are never indexed, so never quoted to a customer. A comment's line
/// breaks are kept, so the lines around it stay lines; one left open hides the rest, as it
/// does in a browser.
fn without_comments(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("<!--") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let (hidden, next) = match after.find("-->") {
            Some(end) => (&after[..end], &after[end + 3..]),
            None => (after, ""),
        };
        out.extend(hidden.chars().filter(|&c| c == '\n'));
        rest = next;
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Parses a document's text; `stem` (the file name without extension) is the title of last
/// resort. The error says what is wrong with the front matter, the only part that can be.
pub fn parse(stem: &str, text: &str) -> Result<Document, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (front, body) = split_front_matter(text)?;
    let front = match front {
        Some(toml_text) => toml::from_str::<FrontMatter>(toml_text)
            .map_err(|e| format!("front matter: {}", e.message()))?,
        None => FrontMatter {
            title: None,
            url: None,
        },
    };

    // Sections as read, each with whether its path begins at a `# ` heading (else the title,
    // known only at the end, is put in front).
    let mut sections: Vec<(Section, bool)> = Vec::new();
    let mut path: [Option<String>; 3] = [None, None, None];
    let mut current = Section {
        path: Vec::new(),
        paragraphs: Vec::new(),
    };
    let mut paragraph: Vec<String> = Vec::new();
    let mut first_h1: Option<String> = None;
    let mut in_fence = false;
    let mut current_h1 = false;

    let flush = |paragraph: &mut Vec<String>, section: &mut Section| {
        if !paragraph.is_empty() {
            let line = inline(&paragraph.join(" "));
            if !line.trim().is_empty() {
                section.paragraphs.push(line.trim().to_string());
            }
            paragraph.clear();
        }
    };

    let body = without_comments(body);
    for raw in body.lines() {
        let line = raw.trim_end();
        let fence = line.trim_start();
        if fence.starts_with("```") || fence.starts_with("~~~") {
            // A fenced block's lines are kept as text; the fences are not.
            flush(&mut paragraph, &mut current);
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            if let Some((level, heading)) = heading(line) {
                flush(&mut paragraph, &mut current);
                let heading = inline(heading).trim().to_string();
                if level == 1 && first_h1.is_none() {
                    first_h1 = Some(heading.clone());
                }
                path[level - 1] = Some(heading);
                for deeper in path.iter_mut().skip(level) {
                    *deeper = None;
                }
                let next = Section {
                    path: path.iter().flatten().cloned().collect(),
                    paragraphs: Vec::new(),
                };
                let done = std::mem::replace(&mut current, next);
                sections.push((done, current_h1));
                current_h1 = path[0].is_some();
                continue;
            }
            if line.trim().is_empty() {
                flush(&mut paragraph, &mut current);
                continue;
            }
            if let Some(item) = list_item(line) {
                flush(&mut paragraph, &mut current);
                paragraph.push(item.to_string());
                continue;
            }
        }
        paragraph.push(line.trim().to_string());
    }
    flush(&mut paragraph, &mut current);
    sections.push((current, current_h1));

    let title = front
        .title
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or(first_h1)
        .unwrap_or_else(|| stem.to_string());

    let sections = sections
        .into_iter()
        .filter(|(s, _)| !s.paragraphs.is_empty())
        .map(|(mut s, at_h1)| {
            // A path that does not begin at a `# ` heading begins with the title.
            if !at_h1 {
                s.path.insert(0, title.clone());
            }
            s
        })
        .collect();

    Ok(Document {
        title,
        url: front
            .url
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty()),
        sections,
    })
}

/// The front matter's text and the rest, when the document opens with a `+++` line.
fn split_front_matter(text: &str) -> Result<(Option<&str>, &str), String> {
    let mut lines = text.split_inclusive('\n');
    let Some(first) = lines.next() else {
        return Ok((None, text));
    };
    if first.trim_end() != "+++" {
        return Ok((None, text));
    }
    let start = first.len();
    let mut at = start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Ok((Some(&text[start..at]), &text[at + line.len()..]));
        }
        at += line.len();
    }
    Err("front matter: no closing `+++` line".to_string())
}

/// `## Return shipping` → (2, "Return shipping"), for levels 1 to 3. Deeper headings are
/// text of the section they are in.
fn heading(line: &str) -> Option<(usize, &str)> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=3).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then_some((hashes, title))
}

/// A list item's text without its marker ("- ", "* ", "+ ", "1. ", "2) ").
fn list_item(line: &str) -> Option<&str> {
    let t = line.trim_start();
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = t.strip_prefix(marker) {
            return Some(rest.trim());
        }
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 4 {
        let rest = &t[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(rest.trim());
        }
    }
    None
}

/// A line's Markdown as plain text: links as `text (url)`, autolinks as their address,
/// emphasis and code markers dropped.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut plain = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some((label, url, used)) = link(rest) {
            out.push_str(&without_emphasis(&plain));
            plain.clear();
            out.push_str(&without_emphasis(label));
            out.push_str(" (");
            out.push_str(url);
            out.push(')');
            rest = &rest[used..];
            continue;
        }
        if let Some((url, used)) = autolink(rest) {
            out.push_str(&without_emphasis(&plain));
            plain.clear();
            out.push_str(url);
            rest = &rest[used..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        plain.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&without_emphasis(&plain));
    out
}

/// `[label](url)` (or an image's `![alt](url)`) at the start of `text`: label, url and the
/// bytes it takes. Anything else, a bracket without an address among them, is text.
fn link(text: &str) -> Option<(&str, &str, usize)> {
    let skip = usize::from(text.starts_with("!["));
    let t = &text[skip..];
    if !t.starts_with('[') {
        return None;
    }
    let close = t.find(']')?;
    let label = &t[1..close];
    let after = &t[close + 1..];
    if !after.starts_with('(') {
        return None;
    }
    let end = after.find(')')?;
    let url = after[1..end].trim();
    // `[text](url "title")`: the title is not part of the address.
    let url = url.split_whitespace().next().unwrap_or("");
    if url.is_empty() {
        return None;
    }
    Some((label, url, skip + close + 1 + end + 1))
}

/// `<https://…>` at the start of `text`: the address and the bytes it takes.
fn autolink(text: &str) -> Option<(&str, usize)> {
    let t = text.strip_prefix('<')?;
    let end = t.find('>')?;
    let url = &t[..end];
    let is_url = (url.starts_with("http://") || url.starts_with("https://") || url.contains('@'))
        && !url.contains(char::is_whitespace);
    is_url.then_some((url, end + 2))
}

/// Drops `*`, `` ` ``, `~~` and the `_` that open or close emphasis; a `_` inside a word
/// ("order_id") is part of it.
fn without_emphasis(text: &str) -> String {
    let text = text.replace("~~", "");
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '*' | '`' => {}
            '_' => {
                // The run of underscores this one is in, judged as a whole ("__").
                let start = chars[..i].iter().rposition(|&c| c != '_').map(|j| j + 1);
                let end = chars[i..].iter().position(|&c| c != '_').map(|j| i + j);
                let before = start.and_then(|s| s.checked_sub(1)).map(|j| chars[j]);
                let after = end.map(|e| chars[e]);
                let inside = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                if inside(before) && inside(after) {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETURNS: &str = "+++\n\
title = \"Sending things back\"\n\
url = \"https://lanterns.example/help/returns\"\n\
+++\n\
# Returns at Lantern & Loom\n\
\n\
Intro line before any subsection.\n\
\n\
## How long do I have?\n\
Unused lamps can come back within **45 days**\n\
of the delivery date.\n\
\n\
Rugs cut to size are _final sale_.\n\
\n\
### Gift returns\n\
- Ask the buyer for the order number.\n\
- We refund as store credit.\n\
\n\
## Postage\n\
See [our postage table](https://lanterns.example/postage) for the rates.\n";

    #[test]
    fn html_comments_are_never_read() {
        let doc = parse(
            "returns",
            "# Returns\n\
             Lamps go back within 45 days.<!-- staff: we allow 60 --> Unused only.\n\
             <!-- TODO ask Marta\n\
             about the secret discount code LAMP50 -->\n\
             ## Postage <!-- check -->\n\
             A label costs 6 euros.\n\
             <!-- left open: the rest is hidden\n\
             internal phone 555-0100\n",
        )
        .unwrap();
        let all: String = doc
            .sections
            .iter()
            .map(|s| format!("{} | {}\n", s.heading(), s.paragraphs.join(" / ")))
            .collect();
        for hidden in ["staff", "60", "Marta", "LAMP50", "check", "open", "555"] {
            assert!(!all.contains(hidden), "{hidden}: {all}");
        }
        assert!(all.contains("Lamps go back within 45 days."), "{all}");
        assert!(all.contains("Unused only."), "{all}");
        assert!(
            all.contains("Returns › Postage | A label costs 6 euros."),
            "{all}"
        );
        assert_eq!(without_comments("no comment"), "no comment");
        assert_eq!(without_comments("a<!--x\ny-->b"), "a\nb");
    }

    #[test]
    fn front_matter_gives_title_and_url() {
        let doc = parse("returns", RETURNS).unwrap();
        assert_eq!(doc.title, "Sending things back");
        assert_eq!(
            doc.url.as_deref(),
            Some("https://lanterns.example/help/returns")
        );
    }

    #[test]
    fn title_falls_back_to_the_first_h1_then_the_stem() {
        let doc = parse("care", "Intro.\n\n# Caring for brass\n\nPolish it.\n").unwrap();
        assert_eq!(doc.title, "Caring for brass");
        assert_eq!(doc.url, None);
        let doc = parse("care", "Just one line of text.\n").unwrap();
        assert_eq!(doc.title, "care");
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].path, vec!["care".to_string()]);
        // An empty front-matter title does not count.
        let doc = parse("care", "+++\ntitle = \" \"\n+++\n# Brass\nPolish.\n").unwrap();
        assert_eq!(doc.title, "Brass");
    }

    #[test]
    fn sections_keep_their_heading_path() {
        let doc = parse("returns", RETURNS).unwrap();
        let paths: Vec<String> = doc.sections.iter().map(Section::heading).collect();
        assert_eq!(
            paths,
            [
                "Returns at Lantern & Loom",
                "Returns at Lantern & Loom › How long do I have?",
                "Returns at Lantern & Loom › How long do I have? › Gift returns",
                "Returns at Lantern & Loom › Postage",
            ]
        );
        // Lines of a paragraph are joined; list items are paragraphs of their own.
        assert_eq!(
            doc.sections[1].paragraphs,
            [
                "Unused lamps can come back within 45 days of the delivery date.",
                "Rugs cut to size are final sale.",
            ]
        );
        assert_eq!(
            doc.sections[2].paragraphs,
            [
                "Ask the buyer for the order number.",
                "We refund as store credit."
            ]
        );
    }

    #[test]
    fn a_document_without_h1_puts_its_title_in_front() {
        let doc = parse(
            "faq",
            "+++\ntitle = \"FAQ\"\n+++\n## Hours\nNine to five.\n",
        )
        .unwrap();
        assert_eq!(doc.sections[0].heading(), "FAQ › Hours");
        // Deeper than ### is text, not a section.
        let doc = parse("faq", "# FAQ\n#### Small print\nNone.\n").unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].paragraphs, ["#### Small print None."]);
    }

    #[test]
    fn links_keep_their_address_and_emphasis_goes() {
        let doc = parse("returns", RETURNS).unwrap();
        assert_eq!(
            doc.sections[3].paragraphs,
            ["See our postage table (https://lanterns.example/postage) for the rates."]
        );
        assert_eq!(
            inline("**Bold**, *it*, __also__, `code`, ~~old~~ and order_id stay readable"),
            "Bold, it, also, code, old and order_id stay readable"
        );
        assert_eq!(
            inline(
                "Mail <https://lanterns.example/a_b> or ![map](https://x.example/m.png \"Map\")"
            ),
            "Mail https://lanterns.example/a_b or map (https://x.example/m.png)"
        );
        // Brackets that are not a link are text.
        assert_eq!(inline("[draft] (see below)"), "[draft] (see below)");
        assert_eq!(inline("[unclosed](http"), "[unclosed](http");
    }

    #[test]
    fn bad_front_matter_is_an_error_not_a_panic() {
        assert!(parse("x", "+++\ntitle = \"x\"\n# never closed\n")
            .unwrap_err()
            .contains("closing"));
        assert!(parse("x", "+++\ntitle = 3\n+++\nText.\n").is_err());
        assert!(parse("x", "+++\ntitel = \"typo\"\n+++\nText.\n").is_err());
        assert!(parse("x", "").unwrap().sections.is_empty());
        assert_eq!(
            parse("x", "+++").unwrap_err(),
            "front matter: no closing `+++` line"
        );
    }

    #[test]
    fn fenced_blocks_are_text() {
        let doc = parse("x", "# T\n```\n# not a heading\n```\n").unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].paragraphs, ["# not a heading"]);
    }
}
