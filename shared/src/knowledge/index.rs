//! The search index: Okapi BM25 over a language's passages, and `knowledge.bin`, the file
//! `switchboard train` will write it to (docs/design/ai-layer-plan.md §2.5).
//!
//! BM25 because it needs nothing a bundle does not have (no model, no vectors), is
//! deterministic, and says how well a passage matches in a number two thresholds can judge
//! (`supported`): a grounded answer needs a passage that is about the question, and "I don't
//! know" is the answer when none is.
//!
//! The file is `SBKB1\0`, the body's length (u32, little-endian), then the body as JSON. JSON
//! so it can be read with `jq`; maps are `BTreeMap`s and the build sorts its input, so the
//! same sources give the same bytes on every machine (`train --check` compares them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chunk::Chunk;
pub use super::tokens::TOKENIZER_VERSION;
use crate::bot::words::Words;

/// Okapi BM25's term-frequency saturation.
pub const K1: f32 = 1.2;
/// Okapi BM25's length normalisation.
pub const B: f32 = 0.75;
/// How many times a heading's tokens count: a passage under "Return shipping" is about
/// return shipping more than one that mentions it once.
pub const HEADING_WEIGHT: u16 = 2;

/// The file's first bytes.
pub const MAGIC: &[u8; 6] = b"SBKB1\0";
const HEADER: usize = MAGIC.len() + 4;

/// What `knowledge.bin` holds: every language's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexFile {
    /// The `TOKENIZER_VERSION` it was built with.
    pub tokenizer: u32,
    /// Over the sources it was built from, so `switchboard check` can tell it is stale.
    pub sources_sha256: String,
    pub languages: BTreeMap<String, Index>,
}

/// A document passages come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    /// The path under `knowledge/<lang>/` without extension ("returns", "help/shipping").
    pub id: String,
    pub title: String,
    pub url: Option<String>,
}

/// A passage as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    /// `<doc id>#<ordinal>`.
    pub id: String,
    /// Index into `Index::docs`.
    pub doc: u32,
    pub heading: String,
    pub text: String,
    /// Its length in tokens, heading tokens counted `HEADING_WEIGHT` times.
    pub len: u32,
}

/// One language's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub docs: Vec<Doc>,
    pub passages: Vec<Passage>,
    /// The passages' mean `len`.
    pub avg_len: f32,
    /// Token → (passage index, term frequency), passages in ascending order.
    pub terms: BTreeMap<String, Vec<(u32, u16)>>,
}

/// A passage with its heading's and its text's tokens (`tokens::tokenize` of each), as
/// `Index::build` takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenized {
    pub chunk: Chunk,
    pub heading: Vec<String>,
    pub text: Vec<String>,
}

/// A passage that matched a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    pub passage: &'a Passage,
    /// BM25 score.
    pub score: f32,
    /// `score` over the best a passage could score for this query (Σ idf·(k1 + 1) over its
    /// distinct tokens): comparable across queries, in [0, 1).
    pub relevance: f32,
    /// The share of the query's distinct tokens the passage holds.
    pub coverage: f32,
    /// How many distinct tokens the query had.
    pub terms: usize,
}

/// Whether a hit is good enough to answer from: relevant enough, and holding enough of what
/// was asked. A query of one or two tokens needs all of them (half of two is one word, and
/// "return" alone matches "return a gift card" to "return shipping").
pub fn supported(hit: &Hit<'_>, min_relevance: f32, min_coverage: f32) -> bool {
    let min_coverage = if hit.terms <= 2 { 1.0 } else { min_coverage };
    hit.relevance >= min_relevance && hit.coverage >= min_coverage
}

impl Index {
    /// The index of a language's documents, each with its passages and their tokens.
    /// Documents are taken in the
    /// order given; the caller sorts them (by id) for bytes that do not depend on a
    /// directory listing's order.
    pub fn build(docs: Vec<(Doc, Vec<Tokenized>)>) -> Index {
        let mut index = Index {
            docs: Vec::with_capacity(docs.len()),
            passages: Vec::new(),
            avg_len: 0.0,
            terms: BTreeMap::new(),
        };
        for (doc, chunks) in docs {
            let d = index.docs.len() as u32;
            index.docs.push(doc);
            for Tokenized {
                chunk,
                heading: heading_tokens,
                text: text_tokens,
            } in chunks
            {
                let p = index.passages.len() as u32;
                let mut tf: BTreeMap<&str, u16> = BTreeMap::new();
                for t in &heading_tokens {
                    let n = tf.entry(t).or_insert(0);
                    *n = n.saturating_add(HEADING_WEIGHT);
                }
                for t in &text_tokens {
                    let n = tf.entry(t).or_insert(0);
                    *n = n.saturating_add(1);
                }
                let len = heading_tokens.len() * usize::from(HEADING_WEIGHT) + text_tokens.len();
                let len = u32::try_from(len).unwrap_or(u32::MAX);
                for (t, n) in tf {
                    index.terms.entry(t.to_string()).or_default().push((p, n));
                }
                index.passages.push(Passage {
                    id: chunk.id,
                    doc: d,
                    heading: chunk.heading,
                    text: chunk.text,
                    len,
                });
            }
        }
        index.avg_len = mean_len(&index.passages);
        index
    }

    /// The document a passage is from.
    pub fn doc(&self, passage: &Passage) -> Option<&Doc> {
        self.docs.get(passage.doc as usize)
    }

    /// idf = ln(1 + (N − df + 0.5) / (df + 0.5)): positive even for a token in every
    /// passage, largest for one in none (which counts against a query's relevance).
    fn idf(&self, df: usize) -> f32 {
        let n = self.passages.len() as f32;
        let df = df as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The best `top_k` passages for a query's tokens (`tokens::tokenize`), best first; a
    /// passage that holds none of them is not a hit. Repeated tokens count once.
    pub fn search(&self, query_tokens: &[String], top_k: usize) -> Vec<Hit<'_>> {
        let distinct: BTreeSet<&str> = query_tokens.iter().map(String::as_str).collect();
        if distinct.is_empty() || self.passages.is_empty() || top_k == 0 {
            return Vec::new();
        }
        let avg_len = if self.avg_len > 0.0 {
            self.avg_len
        } else {
            1.0
        };
        let mut best_possible = 0.0f32;
        // Passage index → (score, tokens matched).
        let mut scores: BTreeMap<u32, (f32, usize)> = BTreeMap::new();
        for t in &distinct {
            let postings = self.terms.get(*t).map(Vec::as_slice).unwrap_or(&[]);
            let idf = self.idf(postings.len());
            best_possible += idf * (K1 + 1.0);
            for &(p, tf) in postings {
                let Some(passage) = self.passages.get(p as usize) else {
                    continue;
                };
                let tf = f32::from(tf);
                let norm = 1.0 - B + B * passage.len as f32 / avg_len;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                let e = scores.entry(p).or_insert((0.0, 0));
                e.0 += s;
                e.1 += 1;
            }
        }
        let mut hits: Vec<(u32, f32, usize)> =
            scores.into_iter().map(|(p, (s, m))| (p, s, m)).collect();
        // Best first; equal scores in passage order, so results never depend on a hash.
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(top_k);
        hits.into_iter()
            .filter_map(|(p, score, matched)| {
                Some(Hit {
                    passage: self.passages.get(p as usize)?,
                    score,
                    relevance: if best_possible > 0.0 {
                        score / best_possible
                    } else {
                        0.0
                    },
                    coverage: matched as f32 / distinct.len() as f32,
                    terms: distinct.len(),
                })
            })
            .collect()
    }

    /// Whether every reference inside holds: a file that parses as JSON but points outside
    /// its own lists is refused at load, so searching it cannot go wrong later.
    ///
    /// A postings list must name each passage once, in ascending order, with a term frequency
    /// of at least 1 and no more than the passage's length: a passage named twice would count
    /// a token twice (coverage over 1) and a list longer than the passages would make idf
    /// negative. The average length is recomputed from the passages (a stored one that
    /// disagrees is refused), so a length cannot be made up either.
    fn check(&mut self, language: &str) -> Result<(), FormatError> {
        let bad = |what: String| FormatError::Inconsistent(format!("{language}: {what}"));
        for p in &self.passages {
            if p.doc as usize >= self.docs.len() {
                return Err(bad(format!("passage {} names document {}", p.id, p.doc)));
            }
        }
        for (t, postings) in &self.terms {
            let mut last: Option<u32> = None;
            for &(p, tf) in postings {
                let Some(passage) = self.passages.get(p as usize) else {
                    return Err(bad(format!("term {t:?} names passage {p}")));
                };
                if last.is_some_and(|l| p <= l) {
                    return Err(bad(format!(
                        "term {t:?}: passages not in ascending order, or one named twice ({p})"
                    )));
                }
                if tf == 0 || u32::from(tf) > passage.len {
                    return Err(bad(format!(
                        "term {t:?}: frequency {tf} in passage {p} of length {}",
                        passage.len
                    )));
                }
                last = Some(p);
            }
        }
        let computed = mean_len(&self.passages);
        if !self.avg_len.is_finite() || (self.avg_len - computed).abs() > 1e-3 * computed.max(1.0) {
            return Err(bad(format!(
                "average length {} is not the passages' ({computed})",
                self.avg_len
            )));
        }
        self.avg_len = computed;
        Ok(())
    }
}

/// The passages' mean length (0 for none), as `Index::build` stores it.
fn mean_len(passages: &[Passage]) -> f32 {
    if passages.is_empty() {
        return 0.0;
    }
    let total: u64 = passages.iter().map(|p| u64::from(p.len)).sum();
    (total as f64 / passages.len() as f64) as f32
}

/// Why bytes are not a knowledge index.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("not a knowledge index: {0} bytes, shorter than its 10-byte header")]
    TooShort(usize),
    #[error("not a knowledge index: it does not begin with SBKB1")]
    Magic,
    #[error("knowledge index: the header says {declared} bytes of body, the file has {actual}")]
    Length { declared: u64, actual: u64 },
    #[error("knowledge index: the body is not the index's JSON: {0}")]
    Json(String),
    #[error(
        "knowledge index built by tokenizer {found}, this build reads {expected}: train again"
    )]
    Tokenizer { found: u32, expected: u32 },
    #[error("knowledge index is inconsistent: {0}")]
    Inconsistent(String),
}

impl IndexFile {
    /// The file's bytes: header then JSON. The same index always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self)
            .expect("an index serialises: strings, numbers and maps with string keys");
        let len = u32::try_from(body.len()).expect("an index under 4 GiB");
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Reads a file's bytes, refusing anything that is not a whole, consistent index of this
    /// tokenizer's version. Never panics, whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<IndexFile, FormatError> {
        if bytes.len() < HEADER {
            return Err(FormatError::TooShort(bytes.len()));
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(FormatError::Magic);
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[MAGIC.len()..HEADER]);
        let declared = u64::from(u32::from_le_bytes(len));
        let body = &bytes[HEADER..];
        if declared != body.len() as u64 {
            return Err(FormatError::Length {
                declared,
                actual: body.len() as u64,
            });
        }
        let mut file: IndexFile =
            serde_json::from_slice(body).map_err(|e| FormatError::Json(e.to_string()))?;
        if file.tokenizer != TOKENIZER_VERSION {
            return Err(FormatError::Tokenizer {
                found: file.tokenizer,
                expected: TOKENIZER_VERSION,
            });
        }
        for (language, index) in &mut file.languages {
            index.check(language)?;
        }
        Ok(file)
    }
}

/// The passage length `switchboard train` cuts at unless `[knowledge] max_passage_words`
/// says otherwise (the plan's default; the setting is not read yet).
pub const DEFAULT_MAX_PASSAGE_WORDS: usize = 120;

/// `knowledge.bin` for the bundle in `dir`: every `knowledge/<lang>/**.md|txt`, read with
/// `words/<lang>.toml`. `None` when the bundle has no `knowledge/` directory. The bytes are a
/// function of the sources, the words files and `TOKENIZER_VERSION` alone (files are taken in
/// sorted order), so `train --check` can compare them. The error names the file.
pub fn build_bundle_index(dir: &Path, max_words: usize) -> Result<Option<Vec<u8>>, String> {
    let root = dir.join("knowledge");
    if !root.is_dir() {
        return Ok(None);
    }
    let mut hashed: Vec<(String, Vec<u8>)> = Vec::new();
    let mut languages = BTreeMap::new();
    for entry in sorted_entries(&root)? {
        let language = file_name(&entry)?;
        if !entry.is_dir() {
            return Err(format!(
                "{}: not in a language's directory (knowledge/<lang>/)",
                entry.display()
            ));
        }
        let (words, words_hashed) = bundle_words(dir, &language)?;
        hashed.push(words_hashed);

        let mut files = Vec::new();
        collect_documents(&entry, "", &mut files)?;
        check_unique_ids(&mut files)?;
        let mut documents = Vec::with_capacity(files.len());
        for (id, path) in files {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("{}: not UTF-8 text", path.display()))?
                .to_owned();
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            hashed.push((rel.to_string_lossy().replace('\\', "/"), bytes));
            documents.push((id, text));
        }
        let index = super::build_index(&words, &documents, max_words)?;
        languages.insert(language, index);
    }
    hashed.sort();
    let mut sha = Sha256::new();
    for (path, bytes) in &hashed {
        sha.update(path.as_bytes());
        sha.update([0]);
        sha.update((bytes.len() as u64).to_le_bytes());
        sha.update(bytes);
    }
    let file = IndexFile {
        tokenizer: TOKENIZER_VERSION,
        sources_sha256: hex::encode(sha.finalize()),
        languages,
    };
    Ok(Some(file.to_bytes()))
}

/// The words a language's documents are read with, as the bundle loader finds them: the
/// bundle's `words/<lang>.toml`, else the default bundle's file of that language (compiled
/// in). With them, what goes into the sources' hash: the bundle's file under its path, or the
/// default one's bytes under `default:words/<lang>.toml` (so switching from one to the other
/// changes the hash even when the bytes are equal).
fn bundle_words(dir: &Path, language: &str) -> Result<(Words, (String, Vec<u8>)), String> {
    let words_rel = format!("words/{language}.toml");
    let words_path = dir.join(&words_rel);
    let (file, hashed_as, bytes) = if words_path.exists() {
        let bytes = std::fs::read(&words_path).map_err(|e| {
            format!(
                "{}: {e} (knowledge/{language}/ needs it)",
                words_path.display()
            )
        })?;
        (words_path.display().to_string(), words_rel, bytes)
    } else {
        let Some(bytes) = crate::bot::words::default_words_bytes(language) else {
            return Err(format!(
                "{}: missing, and the default bundle has no words for {language:?} \
                 (knowledge/{language}/ needs them)",
                words_path.display()
            ));
        };
        (
            format!("(default) {words_rel}"),
            format!("default:{words_rel}"),
            bytes.to_vec(),
        )
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{file}: not UTF-8 text"))?;
    let words = Words::parse(&file, language, text).map_err(|e| e.to_string())?;
    Ok((words, (hashed_as, bytes)))
}

/// Sorts the documents by id and refuses two files of one id ("returns.md" and
/// "returns.txt"): a passage id would name either, and which one was indexed would depend on
/// the listing.
fn check_unique_ids(files: &mut [(String, PathBuf)]) -> Result<(), String> {
    files.sort();
    for pair in files.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(format!(
                "{} and {}: two documents of the id {:?}; rename or remove one",
                pair[0].1.display(),
                pair[1].1.display(),
                pair[0].0
            ));
        }
    }
    Ok(())
}

/// A directory's entries, sorted by name (a listing's order is the file system's), without
/// the hidden ones: `.DS_Store`, an editor's `.#returns.md` lock or `.returns.md.swp`, a
/// `.git` folder are no one's help pages.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> Result<String, String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| format!("{}: not a UTF-8 name", path.display()))
}

/// The `.md` and `.txt` files under `dir` as (doc id, path): the id is the path under the
/// language's directory, without extension, with `/` between folders. Other files are not
/// documents (an image a page links to) and are skipped.
fn collect_documents(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), String> {
    for path in sorted_entries(dir)? {
        let name = file_name(&path)?;
        if path.is_dir() {
            collect_documents(&path, &format!("{prefix}{name}/"), out)?;
            continue;
        }
        let stem = name
            .strip_suffix(".md")
            .or_else(|| name.strip_suffix(".txt"));
        if let Some(stem) = stem {
            out.push((format!("{prefix}{stem}"), path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::words::default_words;
    use crate::knowledge::{build_index, search};

    fn en() -> Words {
        default_words("en").unwrap().unwrap()
    }

    /// A made-up lamp shop's help pages.
    fn corpus() -> Vec<(String, String)> {
        [
            (
                "returns",
                "+++\ntitle = \"Returns\"\nurl = \"https://lanterns.example/returns\"\n+++\n\
                 # Returns\n\n\
                 ## Returning a lamp\n\
                 Unused lamps can be returned within 45 days of delivery for a refund to the card you paid with.\n\n\
                 ## Return postage\n\
                 We pay the postage when a lamp arrives broken; otherwise a label costs 6 euros.\n",
            ),
            (
                "shipping",
                "# Shipping\n\n\
                 ## Delivery times\n\
                 Orders leave the workshop in two working days and arrive within a week.\n\n\
                 ## Abroad\n\
                 We ship to most of Europe; customs fees are paid by the customer.\n",
            ),
            (
                "care",
                "# Looking after brass\n\n\
                 Wipe brass with a dry cloth. Never polish lacquered shades.\n",
            ),
            (
                "gift-cards",
                "# Gift cards\n\nGift cards never expire and can be spent on anything in the shop.\n",
            ),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn file(index: Index) -> IndexFile {
        IndexFile {
            tokenizer: TOKENIZER_VERSION,
            sources_sha256: "0".repeat(64),
            languages: BTreeMap::from([("en".to_string(), index)]),
        }
    }

    fn ids(hits: &[Hit<'_>]) -> Vec<String> {
        hits.iter().map(|h| h.passage.id.clone()).collect()
    }

    #[test]
    fn a_returns_question_finds_the_returns_passage() {
        let words = en();
        let index = build_index(&words, &corpus(), 60).unwrap();
        let hits = search(
            &index,
            &words,
            "How many days do I have to return a lamp?",
            3,
        );
        assert_eq!(hits[0].passage.id, "returns#1", "{hits:#?}");
        assert_eq!(hits[0].passage.heading, "Returns › Returning a lamp");
        // The question's own words ("how", "do", "I", "where", "you") are the words file's
        // `[retrieval] stop`: they count against no passage.
        for (question, id) in [
            ("How do I return a lamp?", "returns#1"),
            ("Where do you ship?", "shipping#2"),
            ("How many days do I have to return a lamp?", "returns#1"),
        ] {
            let hits = search(&index, &words, question, 3);
            assert_eq!(hits[0].passage.id, id, "{question}: {hits:#?}");
            assert!(supported(&hits[0], 0.3, 0.5), "{question}: {hits:#?}");
        }
        let hits = search(&index, &words, "Can I return my lamp within 45 days?", 3);
        assert_eq!(hits[0].passage.id, "returns#1", "{hits:#?}");
        assert_eq!(hits[0].coverage, 1.0);
        assert!(supported(&hits[0], 0.3, 0.5), "{hits:#?}");
        assert_eq!(
            index.doc(hits[0].passage).unwrap().url.as_deref(),
            Some("https://lanterns.example/returns")
        );
        // Scores descend; relevance and coverage are shares.
        for w in hits.windows(2) {
            assert!(w[0].score >= w[1].score);
        }
        for h in &hits {
            assert!(h.relevance > 0.0 && h.relevance < 1.0, "{h:?}");
            assert!(h.coverage > 0.0 && h.coverage <= 1.0, "{h:?}");
        }

        let hits = search(&index, &words, "Do you ship to Europe?", 3);
        assert_eq!(hits[0].passage.id, "shipping#2");
        assert!(supported(&hits[0], 0.3, 0.5), "{hits:#?}");
    }

    #[test]
    fn an_unrelated_question_is_not_supported() {
        let words = en();
        let index = build_index(&words, &corpus(), 60).unwrap();
        for question in [
            "Can I pay with crypto?",
            "What is your phone number for the press office?",
            "Is the workshop hiring carpenters?",
        ] {
            let hits = search(&index, &words, question, 3);
            assert!(
                hits.iter().all(|h| !supported(h, 0.3, 0.5)),
                "{question}: {hits:#?}"
            );
        }
        // Nothing but stop words: nothing to search for.
        assert!(search(&index, &words, "what about it?", 3).is_empty());
        assert!(search(&index, &words, "lamp", 0).is_empty());
    }

    #[test]
    fn heading_tokens_count_twice() {
        let words = en();
        let index = build_index(&words, &corpus(), 60).unwrap();
        let p = &index.passages[0];
        assert_eq!(p.id, "care#1");
        let brass = &index.terms["brass"];
        // Once in the heading (twice over), once in the text.
        assert_eq!(brass, &vec![(0, 3)]);
    }

    #[test]
    fn a_short_query_needs_all_its_tokens() {
        let passage = Passage {
            id: "x#1".into(),
            doc: 0,
            heading: String::new(),
            text: String::new(),
            len: 1,
        };
        let hit = |terms, coverage| Hit {
            passage: &passage,
            score: 1.0,
            relevance: 0.9,
            coverage,
            terms,
        };
        assert!(!supported(&hit(2, 0.5), 0.3, 0.5));
        assert!(supported(&hit(2, 1.0), 0.3, 0.5));
        assert!(supported(&hit(4, 0.5), 0.3, 0.5));
        assert!(!supported(&hit(4, 0.25), 0.3, 0.5));
    }

    #[test]
    fn the_same_sources_give_the_same_bytes() {
        let words = en();
        let a = file(build_index(&words, &corpus(), 60).unwrap()).to_bytes();
        let mut shuffled = corpus();
        shuffled.reverse();
        let b = file(build_index(&words, &shuffled, 60).unwrap()).to_bytes();
        assert_eq!(a, b);
        assert_eq!(&a[..6], b"SBKB1\0");
        assert_eq!(
            u32::from_le_bytes(a[6..10].try_into().unwrap()) as usize,
            a.len() - 10
        );
    }

    #[test]
    fn bytes_round_trip_to_the_same_results() {
        let words = en();
        let built = file(build_index(&words, &corpus(), 60).unwrap());
        let bytes = built.to_bytes();
        let read = IndexFile::from_bytes(&bytes).unwrap();
        assert_eq!(read.to_bytes(), bytes);
        let (before, after) = (&built.languages["en"], &read.languages["en"]);
        for q in [
            "return a lamp",
            "customs fees abroad",
            "brass cloth",
            "crypto",
        ] {
            let a = search(before, &words, q, 5);
            let b = search(after, &words, q, 5);
            assert_eq!(ids(&a), ids(&b), "{q}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x.score - y.score).abs() < 1e-4, "{q}");
            }
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        let good = file(build_index(&en(), &corpus(), 60).unwrap()).to_bytes();
        assert_eq!(IndexFile::from_bytes(b""), Err(FormatError::TooShort(0)));
        assert_eq!(
            IndexFile::from_bytes(b"SBKB2\0\0\0\0\0{}"),
            Err(FormatError::Magic)
        );
        assert!(matches!(
            IndexFile::from_bytes(&good[..good.len() - 1]),
            Err(FormatError::Length { .. })
        ));
        let mut longer = good.clone();
        longer.push(b' ');
        assert!(matches!(
            IndexFile::from_bytes(&longer),
            Err(FormatError::Length { .. })
        ));
        let body = b"{not json";
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bad.extend_from_slice(body);
        assert!(matches!(
            IndexFile::from_bytes(&bad),
            Err(FormatError::Json(_))
        ));

        // Well-formed JSON that points outside its own lists, or of another tokenizer.
        let mut f = file(build_index(&en(), &corpus(), 60).unwrap());
        f.languages
            .get_mut("en")
            .unwrap()
            .terms
            .insert("ghost".into(), vec![(999, 1)]);
        assert!(matches!(
            IndexFile::from_bytes(&f.to_bytes()),
            Err(FormatError::Inconsistent(_))
        ));
        let mut f = file(build_index(&en(), &corpus(), 60).unwrap());
        f.languages.get_mut("en").unwrap().passages[0].doc = 99;
        assert!(matches!(
            IndexFile::from_bytes(&f.to_bytes()),
            Err(FormatError::Inconsistent(_))
        ));
        let mut f = file(build_index(&en(), &corpus(), 60).unwrap());
        f.tokenizer = TOKENIZER_VERSION + 1;
        assert!(matches!(
            IndexFile::from_bytes(&f.to_bytes()),
            Err(FormatError::Tokenizer { .. })
        ));
    }

    /// The good file's body as JSON, changed by `edit`, framed again.
    fn corrupted(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let good = file(build_index(&en(), &corpus(), 60).unwrap()).to_bytes();
        let mut body: serde_json::Value = serde_json::from_slice(&good[HEADER..]).unwrap();
        edit(&mut body["languages"]["en"]);
        let body = serde_json::to_vec(&body).unwrap();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn corrupt_postings_and_lengths_are_refused() {
        // Unchanged, the round trip through JSON reads.
        assert!(IndexFile::from_bytes(&corrupted(|_| {})).is_ok());
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let r = IndexFile::from_bytes(&corrupted(edit));
            assert!(matches!(r, Err(FormatError::Inconsistent(_))), "{r:?}");
        };
        // "lamp" naming its first passage again: counted twice, coverage would pass 1.
        refused(&|en| {
            let lamp = en["terms"]["lamp"].as_array_mut().unwrap();
            let first = lamp[0].clone();
            lamp.push(first);
        });
        // Passages out of order.
        refused(&|en| {
            en["terms"]["lamp"].as_array_mut().unwrap().reverse();
        });
        // A posting more often than the passages (df > N: a negative idf).
        refused(&|en| {
            let n = en["passages"].as_array().unwrap().len();
            en["terms"]["ghost"] = (0..n)
                .chain([0])
                .map(|p| serde_json::json!([p, 1]))
                .collect();
        });
        // A frequency of 0, or longer than its passage.
        refused(&|en| en["terms"]["lamp"][0][1] = 0.into());
        refused(&|en| en["terms"]["lamp"][0][1] = 60000.into());
        // An average length that is not the passages'.
        refused(&|en| en["avg_len"] = (-3.0).into());
        refused(&|en| en["avg_len"] = 1000.0.into());

        // What loads searches within its bounds.
        let words = en();
        let f = IndexFile::from_bytes(&corrupted(|_| {})).unwrap();
        for h in search(&f.languages["en"], &words, "return lamp lamp brass", 5) {
            assert!(h.relevance > 0.0 && h.relevance < 1.0, "{h:?}");
            assert!(h.coverage > 0.0 && h.coverage <= 1.0, "{h:?}");
        }
    }

    #[test]
    fn no_input_panics() {
        let good = file(build_index(&en(), &corpus(), 60).unwrap()).to_bytes();
        // Every truncation, and every prefix given a header that matches its length.
        for n in 0..good.len() {
            assert!(IndexFile::from_bytes(&good[..n]).is_err());
            if n >= 10 {
                let mut b = good[..n].to_vec();
                b[6..10].copy_from_slice(&((n - 10) as u32).to_le_bytes());
                let _ = IndexFile::from_bytes(&b);
            }
        }
        // Single flipped bytes and random inputs, with and without a valid header.
        let mut rng = fastrand::Rng::with_seed(25);
        for _ in 0..2000 {
            let mut b = good.clone();
            let i = rng.usize(..b.len());
            b[i] = rng.u8(..);
            let _ = IndexFile::from_bytes(&b);
            let len = rng.usize(..64);
            let mut r: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = IndexFile::from_bytes(&r);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&(r.len() as u32).to_le_bytes());
            framed.append(&mut r);
            assert!(IndexFile::from_bytes(&framed).is_err());
        }
    }

    #[test]
    fn a_bundle_directory_builds_the_same_bytes_twice() {
        let dir = std::env::temp_dir().join(format!("knowledge-{}", ulid::Ulid::new()));
        assert_eq!(build_bundle_index(&dir, 60), Ok(None));
        let en = dir.join("knowledge/en/help");
        std::fs::create_dir_all(&en).unwrap();
        std::fs::create_dir_all(dir.join("words")).unwrap();
        let words = crate::bot::embedded::FILES
            .iter()
            .find(|(p, _)| *p == "words/en.toml")
            .unwrap()
            .1;
        std::fs::write(dir.join("words/en.toml"), words).unwrap();
        for (id, text) in corpus() {
            std::fs::write(en.join(format!("{id}.md")), text).unwrap();
        }
        std::fs::write(en.join("lamp.png"), [0u8, 1, 2]).unwrap();

        let a = build_bundle_index(&dir, 60).unwrap().unwrap();
        let b = build_bundle_index(&dir, 60).unwrap().unwrap();
        assert_eq!(a, b);
        let file = IndexFile::from_bytes(&a).unwrap();
        let index = &file.languages["en"];
        assert_eq!(index.docs[0].id, "help/care");
        assert_eq!(file.sources_sha256.len(), 64);
        // The sources' hash follows the sources.
        std::fs::write(en.join("care.md"), "# Care\nDust it.\n").unwrap();
        let c = IndexFile::from_bytes(&build_bundle_index(&dir, 60).unwrap().unwrap()).unwrap();
        assert_ne!(c.sources_sha256, file.sources_sha256);
        // A language without its words file is an error that names it.
        std::fs::create_dir_all(dir.join("knowledge/xx")).unwrap();
        assert!(build_bundle_index(&dir, 60)
            .unwrap_err()
            .contains("xx.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_files_of_one_doc_id_are_an_error_naming_both() {
        let dir = std::env::temp_dir().join(format!("knowledge-{}", ulid::Ulid::new()));
        let lang = dir.join("knowledge/en");
        std::fs::create_dir_all(lang.join("policies")).unwrap();
        std::fs::write(lang.join("shipping.md"), "# Shipping\nWe ship to Europe.\n").unwrap();
        std::fs::write(
            lang.join("policies/returns.md"),
            "# Returns\nWithin 45 days.\n",
        )
        .unwrap();
        std::fs::write(
            lang.join("policies/returns.txt"),
            "Returns within 30 days.\n",
        )
        .unwrap();
        let err = build_bundle_index(&dir, 60).unwrap_err();
        assert!(err.contains("policies/returns.md"), "{err}");
        assert!(err.contains("policies/returns.txt"), "{err}");
        assert!(err.contains("\"policies/returns\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Handed documents directly, the same.
        let docs = [
            ("returns".to_string(), "Within 45 days.".to_string()),
            ("returns".to_string(), "Within 30 days.".to_string()),
        ];
        assert!(build_index(&en(), &docs, 60).is_err());
    }

    #[test]
    fn hidden_files_and_folders_are_skipped() {
        let dir = std::env::temp_dir().join(format!("knowledge-{}", ulid::Ulid::new()));
        let lang = dir.join("knowledge/en");
        std::fs::create_dir_all(lang.join(".drafts")).unwrap();
        std::fs::write(dir.join("knowledge/.DS_Store"), [0u8, 0xff]).unwrap();
        std::fs::write(lang.join(".DS_Store"), [0u8, 0xff]).unwrap();
        std::fs::write(lang.join("returns.md"), "# Returns\nWithin 45 days.\n").unwrap();
        // An editor's lock file of the page would be indexed as a page of its own.
        std::fs::write(lang.join(".#returns.md"), "# Returns\nWithin 30 days.\n").unwrap();
        std::fs::write(
            lang.join(".drafts/secret.md"),
            "# Secret\nUnreleased lamps.\n",
        )
        .unwrap();
        let file = IndexFile::from_bytes(&build_bundle_index(&dir, 60).unwrap().unwrap()).unwrap();
        assert_eq!(file.languages.keys().collect::<Vec<_>>(), ["en"]);
        let ids: Vec<&str> = file.languages["en"]
            .docs
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids, ["returns"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_language_without_its_words_file_reads_with_the_default_one() {
        let dir = std::env::temp_dir().join(format!("knowledge-{}", ulid::Ulid::new()));
        let en = dir.join("knowledge/en");
        std::fs::create_dir_all(&en).unwrap();
        for (id, text) in corpus() {
            std::fs::write(en.join(format!("{id}.md")), text).unwrap();
        }
        // No words/ at all: the bundle loader reads English with the default file, and so
        // does the index.
        let default =
            IndexFile::from_bytes(&build_bundle_index(&dir, 60).unwrap().unwrap()).unwrap();
        std::fs::create_dir_all(dir.join("words")).unwrap();
        let words = crate::bot::words::default_words_bytes("en").unwrap();
        std::fs::write(dir.join("words/en.toml"), words).unwrap();
        let own = IndexFile::from_bytes(&build_bundle_index(&dir, 60).unwrap().unwrap()).unwrap();
        assert_eq!(default.languages, own.languages);
        // The hash says which was used.
        assert_ne!(default.sources_sha256, own.sources_sha256);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
