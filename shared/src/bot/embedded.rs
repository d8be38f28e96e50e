//! The default bundle (`config/bot/`), compiled in by `shared/build.rs`: each file's path inside
//! the bundle and its bytes (examples listed without their text).

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// How errors in the compiled-in bundle name its files.
pub const ROOT: &str = "config/bot";
