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
        // The builder's own cap is INFO: `filter` decides, up to debug and trace.
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
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

    /// What the pipeline writes at `setting`, for one line at each of debug, info and warn.
    fn written(setting: &str) -> String {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let writer = move || Sink(sink.clone());
        let _guard =
            tracing::subscriber::set_default(subscriber(filter(Some(setting)).unwrap(), writer));
        tracing::debug!("a debug line");
        tracing::info!("an info line");
        tracing::warn!("a warn line");
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_level_rust_log_names_is_the_level_written() {
        let debug = written("debug");
        assert!(
            debug.contains("a debug line") && debug.contains("an info line"),
            "{debug}"
        );
        let warn = written("warn");
        assert!(
            !warn.contains("an info line") && warn.contains("a warn line"),
            "{warn}"
        );
    }
}
