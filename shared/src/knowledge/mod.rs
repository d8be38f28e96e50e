//! The knowledge base: a bundle's help documents (`knowledge/<lang>/*.md|txt`), cut into
//! passages and indexed per language, so a question the intents do not cover can be answered
//! from what the shop wrote — and from nothing else (issue 25, docs/design/ai-layer-plan.md
//! §3). Retrieval decides whether there is anything to answer from at all (`index::supported`);
//! a grounded answer is only ever written from the passages it returns.
//!
//! Pure code: reading a document (`source`), cutting it (`chunk`), the tokenizer shared by
//! index and query (`tokens`), BM25 and the `knowledge.bin` format (`index`); only
//! `index::build_bundle_index`, given a bundle's directory, reads files. Not wired in yet:
//! `switchboard train` does not call it, the bundle loader does not read `knowledge.bin`,
//! and the dialogue does not search it.

pub mod chunk;
pub mod index;
pub mod source;
pub mod tokens;

use crate::bot::words::Words;

pub use index::{supported, Hit, Index, IndexFile};

/// One language's index from its documents: `(doc id, text)` pairs, the id being the path
/// under `knowledge/<lang>/` without extension. Sorted by id first, so the index does not
/// depend on the order a directory was listed in. The error names the document.
pub fn build_index(
    words: &Words,
    documents: &[(String, String)],
    max_words: usize,
) -> Result<Index, String> {
    let mut sorted: Vec<&(String, String)> = documents.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = sorted.windows(2).find(|p| p[0].0 == p[1].0) {
        return Err(format!("{}: two documents of this id", pair[0].0));
    }
    let mut docs = Vec::with_capacity(sorted.len());
    for (id, text) in sorted {
        let stem = id.rsplit('/').next().unwrap_or(id);
        let doc = source::parse(stem, text).map_err(|e| format!("{id}: {e}"))?;
        let chunks = chunk::chunk(id, &doc, max_words)
            .into_iter()
            .map(|chunk| index::Tokenized {
                heading: tokens::tokenize(words, &chunk.heading),
                text: tokens::tokenize(words, &chunk.text),
                chunk,
            })
            .collect();
        let info = index::Doc {
            id: id.clone(),
            title: doc.title,
            url: doc.url,
        };
        docs.push((info, chunks));
    }
    Ok(Index::build(docs))
}

/// The best `top_k` passages of `index` for a customer's message, read with the index's
/// language's `words`. A message with no content token ("what about it?") finds nothing.
pub fn search<'a>(index: &'a Index, words: &Words, message: &str, top_k: usize) -> Vec<Hit<'a>> {
    index.search(&tokens::tokenize(words, message), top_k)
}
