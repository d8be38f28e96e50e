//! A document's sections cut into passages: what retrieval ranks and what a grounded answer
//! quotes. A passage is short enough to hand a model a few of (at most `max_words` words) and
//! cut where a person would cut — between paragraphs, else between sentences, never inside a
//! word — so each reads on its own. Short paragraphs of one section are joined, so a
//! section of one-line answers is one passage rather than many too small to rank.

use super::source::Document;

/// One passage of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// `<doc id>#<ordinal>`, counted from 1 through the document: the same while the
    /// document is unchanged, so a citation or a test can name it.
    pub id: String,
    /// The section's heading path ("Returns › Return shipping").
    pub heading: String,
    pub text: String,
}

/// A piece no longer than the limit, and whether it begins a paragraph (joined to the one
/// before with a blank line) or goes on one (joined with a space).
struct Piece {
    text: String,
    words: usize,
    opens_paragraph: bool,
}

/// The passages of `doc`, whose id is `doc_id`. A limit of 0 is read as 1.
pub fn chunk(doc_id: &str, doc: &Document, max_words: usize) -> Vec<Chunk> {
    let max = max_words.max(1);
    let mut out = Vec::new();
    for section in &doc.sections {
        let heading = section.heading();
        let mut pieces = Vec::new();
        for paragraph in &section.paragraphs {
            let mut first = true;
            for text in split_paragraph(paragraph, max) {
                pieces.push(Piece {
                    words: text.split_whitespace().count(),
                    text,
                    opens_paragraph: first,
                });
                first = false;
            }
        }
        let mut text = String::new();
        let mut words = 0;
        for piece in pieces {
            if words > 0 && words + piece.words > max {
                out.push(passage(doc_id, out.len(), &heading, &mut text));
                words = 0;
            }
            if words > 0 {
                text.push_str(if piece.opens_paragraph { "\n\n" } else { " " });
            }
            text.push_str(&piece.text);
            words += piece.words;
        }
        if words > 0 {
            out.push(passage(doc_id, out.len(), &heading, &mut text));
        }
    }
    out
}

fn passage(doc_id: &str, count: usize, heading: &str, text: &mut String) -> Chunk {
    Chunk {
        id: format!("{doc_id}#{}", count + 1),
        heading: heading.to_string(),
        text: std::mem::take(text),
    }
}

/// A paragraph as pieces of at most `max` words: itself when it fits, else its sentences
/// packed up to the limit, and a sentence longer than the limit cut between words.
fn split_paragraph(paragraph: &str, max: usize) -> Vec<String> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    if words.len() <= max {
        return vec![words.join(" ")];
    }
    let mut pieces = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for sentence in sentences(&words) {
        if sentence.len() > max {
            if !current.is_empty() {
                pieces.push(current.join(" "));
                current.clear();
            }
            pieces.extend(sentence.chunks(max).map(|c| c.join(" ")));
            continue;
        }
        if current.len() + sentence.len() > max {
            pieces.push(current.join(" "));
            current.clear();
        }
        current.extend_from_slice(sentence);
    }
    if !current.is_empty() {
        pieces.push(current.join(" "));
    }
    pieces
}

/// The sentences of a paragraph's words: one ends at a word ending in `.`, `!` or `?`
/// (closing quotes and brackets after it allowed) that another word follows.
fn sentences<'a, 'w>(words: &'a [&'w str]) -> Vec<&'a [&'w str]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, w) in words.iter().enumerate() {
        let end = w.trim_end_matches(['"', '\'', ')', ']', '\u{201d}', '\u{2019}']);
        if end.ends_with(['.', '!', '?']) {
            out.push(&words[start..=i]);
            start = i + 1;
        }
    }
    if start < words.len() {
        out.push(&words[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::source::parse;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn short_paragraphs_of_a_section_are_joined_up_to_the_limit() {
        let doc = parse(
            "hours",
            "# Hours\n\nOpen at nine.\n\nClosed on Sundays.\n\nLate on Thursdays.\n",
        )
        .unwrap();
        let chunks = chunk("hours", &doc, 7);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Open at nine.\n\nClosed on Sundays.", "Late on Thursdays."]
        );
        assert_eq!(chunks[0].id, "hours#1");
        assert_eq!(chunks[1].id, "hours#2");
        assert!(chunks.iter().all(|c| c.heading == "Hours"));
    }

    #[test]
    fn sections_are_never_joined() {
        let doc = parse("s", "# A\nOne.\n## B\nTwo.\n").unwrap();
        let chunks = chunk("s", &doc, 100);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].heading, "A › B");
        assert_eq!(chunks[1].id, "s#2");
    }

    #[test]
    fn a_long_paragraph_is_cut_at_sentence_ends() {
        let text = "# Care\nDust the shade weekly. Never use water on brass parts! \
                    Is the bulb warm? Let it cool first.\n";
        let doc = parse("care", text).unwrap();
        let chunks = chunk("care", &doc, 8);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Dust the shade weekly.",
                "Never use water on brass parts!",
                "Is the bulb warm? Let it cool first."
            ]
        );
    }

    #[test]
    fn no_passage_is_over_the_limit_and_no_word_is_split() {
        let sentence = "Lanterns ship in padded boxes from our workshop near the harbour";
        let long = format!("# Shipping\n{sentence} {sentence}. {sentence}.\n\nShort one.\n");
        let doc = parse("ship", &long).unwrap();
        for max in [1, 3, 5, 11, 12, 40] {
            let chunks = chunk("ship", &doc, max);
            let mut all = Vec::new();
            for c in &chunks {
                assert!(words(&c.text) <= max, "{max}: {:?}", c.text);
                all.extend(c.text.split_whitespace().map(str::to_string));
            }
            // Every word kept whole, in order.
            let expected: Vec<String> = doc.sections[0]
                .paragraphs
                .iter()
                .flat_map(|p| p.split_whitespace().map(str::to_string))
                .collect();
            assert_eq!(all, expected, "{max}");
        }
        assert_eq!(chunk("ship", &doc, 0), chunk("ship", &doc, 1));
    }

    #[test]
    fn ids_are_stable() {
        let text = "# Q\nA one.\n\nA two.\n## R\nB one.\n";
        let doc = parse("faq/general", text).unwrap();
        let a = chunk("faq/general", &doc, 3);
        let b = chunk("faq/general", &parse("faq/general", text).unwrap(), 3);
        assert_eq!(a, b);
        let ids: Vec<&str> = a.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["faq/general#1", "faq/general#2", "faq/general#3"]);
    }
}
