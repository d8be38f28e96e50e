//! Logging: JSON lines to stdout (CloudWatch in AWS), level from `RUST_LOG` (default info),
//! with personal data redacted from every line on its way out (`redact`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::redact::Redacting;

/// The production pipeline (JSON formatter, redaction) writing to `writer`: `init` gives it
/// stdout, tests a buffer, so what they check is what the functions log.
pub fn subscriber<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line already.
        .with_writer(Redacting(writer))
        .finish()
        .with(filter)
}

/// `RUST_LOG` as levels per target (`info`, `switchboard=debug,info`), else `info`. Its span and
/// field filters (`[span{field=value}]`, tracing-subscriber's `EnvFilter`) are not read: they
/// need a regex engine of their own in every binary (~0.1 MB of the 128 MB function's package),
/// and these functions log no spans.
pub fn filter(setting: Option<&str>) -> Result<Targets, String> {
    let setting = setting.map(str::trim).filter(|s| !s.is_empty());
    setting.unwrap_or("info").parse::<Targets>().map_err(|e| {
        format!(
            "RUST_LOG={:?} is not levels per target ({e}): logging at info",
            setting.unwrap_or_default()
        )
    })
}

pub fn init() {
    let setting = std::env::var("RUST_LOG").ok();
    let (filter, problem) = match filter(setting.as_deref()) {
        Ok(f) => (f, None),
        Err(problem) => (
            Targets::new().with_default(tracing::Level::INFO),
            Some(problem),
        ),
    };
    // try_init: a second call (tests, or a runtime that already set one) is not an error.
    let _ = subscriber(filter, std::io::stdout).try_init();
    if let Some(problem) = problem {
        tracing::warn!(%problem, "log filter not understood");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn rust_log_is_levels_per_target() {
        let f = filter(None).unwrap();
        assert_eq!(f.default_level(), Some(LevelFilter::INFO));
        assert_eq!(
            filter(Some("  ")).unwrap().default_level(),
            Some(LevelFilter::INFO)
        );
        let f = filter(Some("switchboard=debug,warn")).unwrap();
        assert_eq!(f.default_level(), Some(LevelFilter::WARN));
        assert!(f.would_enable("switchboard::turn", &tracing::Level::DEBUG));
        assert!(!f.would_enable("hyper", &tracing::Level::INFO));
        let e = filter(Some("switchboard=loud")).unwrap_err();
        assert!(e.contains("RUST_LOG=\"switchboard=loud\""), "{e}");
    }
}
