//! The knowledge base: a bundle's help documents (`knowledge/<lang>/*.md|txt`), cut into
//! passages and indexed per language, so a question the intents do not cover can be answered
//! from what the shop wrote — and from nothing else (issue 25, docs/design/ai-layer-plan.md
//! §3). Retrieval decides whether there is anything to answer from at all (`index::supported`);
//! a grounded answer is only ever written from the passages it returns.
//!
//! Pure code: reading a document (`source`), cutting it (`chunk`), the tokenizer shared by
//! index and query (`tokens`), BM25 and the `knowledge.bin` format (`index`). Not wired in
//! yet: `switchboard train` does not write `knowledge.bin`, the bundle loader does not read
//! it, and the dialogue does not search it.

pub mod chunk;
pub mod source;
pub mod tokens;
