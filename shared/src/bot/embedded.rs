//! The default bundle (`config/bot/`), compiled in by `shared/build.rs`: each file's path inside
//! the bundle and its bytes (examples listed without their text). Without the `bundled-bot`
//! feature (the Lambda binaries) only its words files, the defaults for a language a bundle
//! reads without words of its own.

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// How errors in the compiled-in bundle name its files.
pub const ROOT: &str = "config/bot";
