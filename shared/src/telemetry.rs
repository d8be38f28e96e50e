//! Logging: JSON lines to stdout (CloudWatch in AWS), level from `RUST_LOG` (default info),
//! with personal data redacted from every line on its way out (`redact`).

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::redact::Redacting;

/// The production pipeline (JSON formatter, redaction) writing to `writer`: `init` gives it
/// stdout, tests a buffer, so what they check is what the functions log.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line already.
        .with_writer(Redacting(writer))
        .finish()
}

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init: a second call (tests, or a runtime that already set one) is not an error.
    let _ = subscriber(filter, std::io::stdout).try_init();
}
