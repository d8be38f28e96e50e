//! What keeps a slow or dead system from taking a turn down with it: the turn's deadline (seen
//! by every connector call made inside it), jittered backoff, `Retry-After`, and a circuit
//! breaker per system, so a system that keeps failing costs microseconds rather than timeouts.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `call` with `deadline` visible to the connector calls inside it: retries and
/// `Retry-After` waits that would end past it are not started.
pub async fn with_deadline<F: std::future::Future>(deadline: Instant, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// The deadline of the turn this call is part of, if any (a fulfillment job has none).
pub fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The least of a turn worth starting an attempt with: less than this is spent on the request
/// alone (and a timer's wake-up can overshoot by a millisecond or two).
pub const MIN_ATTEMPT: Duration = Duration::from_millis(20);

/// True if waiting `wait` from now still leaves an attempt's worth of time before the deadline
/// (always, without one).
pub fn fits(wait: Duration) -> bool {
    deadline().is_none_or(|d| Instant::now() + wait + MIN_ATTEMPT < d)
}

/// "Full jitter" backoff: a random wait up to `base × 2^attempt`, capped, so that many
/// containers retrying a struggling system spread out instead of arriving together.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(10));
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(fastrand::u64(ms / 2..=ms.max(1)))
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else fails fast until it reports.
    HalfOpen,
}

/// Opens after `threshold` consecutive failed calls, stays open for `open_for`, then lets one
/// probe through: its success closes the circuit, its failure opens it again.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

/// Refused by an open circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open;

/// A call the breaker let through; report how it went. Dropped without a report, it was
/// cancelled: past its turn's deadline that is a failure (the system did not answer in the time
/// a turn has, and without counting it a hanging system would never open the circuit in chat);
/// before it, it counts as neither, and a probe hands its turn to the next call.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
    deadline: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    pub fn admit(&self) -> Result<Permit<'_>, Open> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let probe = match *s {
            State::Closed { .. } => false,
            State::HalfOpen => return Err(Open),
            State::Open { until } if Instant::now() < until => return Err(Open),
            State::Open { .. } => {
                *s = State::HalfOpen;
                true
            }
        };
        Ok(Permit {
            breaker: self,
            probe,
            reported: false,
            deadline: deadline(),
        })
    }

    pub fn is_open(&self) -> bool {
        !matches!(
            *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            State::Closed { .. }
        )
    }
}

impl Permit<'_> {
    /// The system answered (whatever it said): it is up.
    pub fn success(mut self) {
        self.reported = true;
        *self.breaker.state.lock().unwrap_or_else(|p| p.into_inner()) =
            State::Closed { failures: 0 };
    }

    /// The system did not answer usefully (timeouts, 5xx, refused connections).
    pub fn failure(mut self) {
        self.reported = true;
        self.fail();
    }

    fn fail(&self) {
        let b = self.breaker;
        let mut s = b.state.lock().unwrap_or_else(|p| p.into_inner());
        *s = match *s {
            State::Closed { failures } if failures + 1 < b.threshold && !self.probe => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            _ => {
                tracing::warn!(
                    open_for_ms = b.open_for.as_millis() as u64,
                    "circuit opened"
                );
                State::Open {
                    until: Instant::now() + b.open_for,
                }
            }
        };
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.reported {
            return;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return self.fail();
        }
        if self.probe {
            let mut s = self.breaker.state.lock().unwrap_or_else(|p| p.into_inner());
            if *s == State::HalfOpen {
                *s = State::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_n_failures_then_probes_once() {
        let b = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..2 {
            b.admit().unwrap().failure();
        }
        assert!(!b.is_open());
        b.admit().unwrap().success();
        for _ in 0..3 {
            b.admit().unwrap().failure();
        }
        assert!(b.admit().is_err(), "open after three in a row");
        tokio::time::advance(Duration::from_secs(31)).await;
        let probe = b.admit().unwrap();
        assert!(b.admit().is_err(), "one probe at a time");
        probe.failure();
        assert!(b.admit().is_err(), "a failed probe opens it again");
        tokio::time::advance(Duration::from_secs(31)).await;
        b.admit().unwrap().success();
        assert!(!b.is_open());
        b.admit().unwrap().success();
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_call_probe() {
        let b = Breaker::new(1, Duration::from_secs(5));
        b.admit().unwrap().failure();
        tokio::time::advance(Duration::from_secs(6)).await;
        drop(b.admit().unwrap());
        assert!(b.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_cut_off_by_its_deadline_counts_as_failed() {
        let b = Breaker::new(2, Duration::from_secs(30));
        for _ in 0..2 {
            let d = Instant::now() + Duration::from_millis(150);
            let hanging = with_deadline(d, async {
                let _permit = b.admit().unwrap();
                std::future::pending::<()>().await
            });
            assert!(tokio::time::timeout_at(d, hanging).await.is_err());
        }
        assert!(b.is_open(), "two turns that timed out open it");
        // Cancelled before its deadline (the caller gave up): neither.
        let c = Breaker::new(1, Duration::from_secs(30));
        let d = Instant::now() + Duration::from_secs(10);
        let early = with_deadline(d, async {
            let _permit = c.admit().unwrap();
            std::future::pending::<()>().await
        });
        assert!(tokio::time::timeout(Duration::from_millis(10), early)
            .await
            .is_err());
        assert!(!c.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_seen_inside_its_scope_only() {
        assert!(deadline().is_none() && fits(Duration::from_secs(3600)));
        let d = Instant::now() + Duration::from_millis(150);
        with_deadline(d, async {
            assert_eq!(deadline(), Some(d));
            assert!(fits(Duration::from_millis(100)));
            assert!(!fits(Duration::from_millis(140)), "too little left to try");
            assert!(!fits(Duration::from_millis(200)));
        })
        .await;
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = time::macros::datetime!(2026-12-01 12:00:00 UTC);
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 12:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        for attempt in 0..20 {
            let d = backoff(Duration::from_millis(50), attempt);
            assert!(d <= Duration::from_secs(10));
            assert!(d >= Duration::from_millis(25).min(Duration::from_secs(5)));
        }
    }
}
