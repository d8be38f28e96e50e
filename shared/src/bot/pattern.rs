//! A pattern built from a words file (and the date patterns read with them), compiled for a
//! cheap start: `regex_automata`'s meta engine, the one `regex` wraps, without the literal
//! prefilter.
//!
//! Every cold start compiles the bundle's patterns (the understanding's warm-up, beside the
//! first invocation), and for these — long case-insensitive alternations of phrases in four
//! languages — extracting the prefilter's literals is a third of what compiling costs, while
//! a message is a few hundred bytes the lazy DFA reads without one. Measured on the twelve
//! words patterns and the entity patterns of the shipped bundle (release, same machine):
//! compiling 9.5 → 6.3 ms, the whole warm-up (`Nlu::warm_up`, fastest of 15 processes, three
//! rounds) 13.7–14.2 → 11.0–11.2 ms; matching all of them against six messages 24.7 → 27.4 µs,
//! a fraction of a microsecond per message for its own language's patterns. Same syntax, same
//! matches and capture groups as `regex::Regex` (both are `regex-syntax` + the meta engine).

use std::ops::Range;

use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::PatternID;

pub struct Pattern {
    regex: meta::Regex,
    source: Box<str>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Self, Box<meta::BuildError>> {
        let regex = meta::Regex::builder()
            .configure(meta::Config::new().auto_prefilter(false))
            .build(pattern)
            .map_err(Box::new)?;
        Ok(Self {
            regex,
            source: pattern.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// Where each match is, left to right, none overlapping.
    pub fn find_iter<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Range<usize>> + 'a {
        self.regex.find_iter(text).map(|m| m.range())
    }

    /// Each match with its groups, left to right.
    pub fn captures_iter<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Found<'a>> + 'a {
        self.regex
            .captures_iter(text)
            .map(move |caps| Found { text, caps })
    }

    /// The text between matches.
    pub fn split<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.regex.split(text).map(move |span| &text[span])
    }

    /// The index of the group named `name`, for `Found::group`.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.regex.group_info().to_index(PatternID::ZERO, name)
    }
}

/// One match of a `Pattern` and its groups.
pub struct Found<'t> {
    text: &'t str,
    caps: Captures,
}

impl<'t> Found<'t> {
    /// The whole match's place in the text.
    pub fn range(&self) -> Range<usize> {
        // `captures_iter` yields matches only.
        self.caps.get_match().expect("a match").range()
    }

    /// Group `index`'s text, when it took part in the match.
    pub fn group(&self, index: usize) -> Option<&'t str> {
        self.caps.get_group(index).map(|span| &self.text[span])
    }

    /// The named group's text, when it took part in the match.
    pub fn name(&self, name: &str) -> Option<&'t str> {
        self.caps
            .get_group_by_name(name)
            .map(|span| &self.text[span])
    }
}

/// `found["m"]`: a group every match of the pattern has (as `regex::Captures` indexes).
impl std::ops::Index<&str> for Found<'_> {
    type Output = str;

    fn index(&self, name: &str) -> &str {
        self.name(name)
            .unwrap_or_else(|| panic!("no group {name:?} in this match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same matches and groups as `regex`, on patterns shaped like the words files' (named
    /// groups in alternatives, Unicode case folding, ASCII word boundaries).
    #[test]
    fn matches_and_groups_as_regex_does() {
        let source = r"(?i)(?:(?-u:\b)(?P<a0>in\s+(?P<n0>[0-9]{1,3}|zwei)\s+tagen)(?-u:\b)|(?-u:\b)(?P<a1>übermorgen)(?-u:\b))";
        let ours = Pattern::new(source).unwrap();
        let theirs = regex::Regex::new(source).unwrap();
        for text in [
            "Liefern Sie IN 3 TAGEN oder Übermorgen?",
            "in zwei tagen, in 12 tagen",
            "nichts hier",
            "",
        ] {
            let a: Vec<_> = ours.find_iter(text).collect();
            let b: Vec<_> = theirs.find_iter(text).map(|m| m.range()).collect();
            assert_eq!(a, b, "{text}");
            let a: Vec<_> = ours
                .captures_iter(text)
                .map(|f| (f.range(), f.name("n0"), f.name("a1")))
                .collect();
            let b: Vec<_> = theirs
                .captures_iter(text)
                .map(|c| {
                    (
                        c.get(0).unwrap().range(),
                        c.name("n0").map(|m| m.as_str()),
                        c.name("a1").map(|m| m.as_str()),
                    )
                })
                .collect();
            assert_eq!(a, b, "{text}");
            assert_eq!(ours.is_match(text), theirs.is_match(text));
        }
        let index = ours.group_index("n0").unwrap();
        let found = ours.captures_iter("in 3 tagen").next().unwrap();
        assert_eq!(found.group(index), Some("3"));
        assert_eq!(&found["a0"], "in 3 tagen");
        assert_eq!(ours.group_index("nope"), None);
        assert_eq!(ours.as_str(), source);
    }

    #[test]
    fn splits_as_regex_does() {
        let joins = Pattern::new(r"(?i),?\s+(?:and|und)\s+").unwrap();
        let parts: Vec<_> = joins.split("a AND b, und c").collect();
        assert_eq!(parts, ["a", "b", "c"]);
    }

    #[test]
    fn a_bad_pattern_is_an_error() {
        assert!(Pattern::new("(unclosed").is_err());
    }
}
