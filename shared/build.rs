//! Packs the default bot bundle (`config/bot/`) into the library: `$OUT_DIR/bundle.rs` lists
//! every file with `include_bytes!`. With the `bundled-bot` feature off (the Lambda binaries:
//! their bundle is a layer, `SWITCHBOARD_BOT=/opt/bot`) only the words files are packed: they
//! are the engine's defaults for a language a bundle reads without words of its own.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../config/bot");
    let whole = std::env::var_os("CARGO_FEATURE_BUNDLED_BOT").is_some();
    // A directory here means every file under it, added or changed: without the whole bundle,
    // a bot change (a retrained model) compiles nothing again.
    let watched = if whole {
        root.clone()
    } else {
        root.join("words")
    };
    println!("cargo:rerun-if-changed={}", watched.display());
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut out = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in files {
        // Conversation tests are for `switchboard test`, and the loader only needs to know that
        // an intent has examples (training reads them from the directory): neither is worth
        // its bytes in every function.
        if rel.starts_with("tests/") || rel.ends_with(".md") {
            continue;
        }
        if !whole && !rel.starts_with("words/") {
            continue;
        }
        if rel.starts_with("examples/") {
            writeln!(out, "    ({rel:?}, b\"\"),").unwrap();
        } else {
            writeln!(
                out,
                "    ({rel:?}, include_bytes!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bundle.rs");
    std::fs::write(dest, out).unwrap();
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.canonicalize().unwrap()));
        }
    }
}
