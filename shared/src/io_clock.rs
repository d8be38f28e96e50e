//! The wall time a request spends awaiting I/O (DynamoDB, SQS, the company's systems, backoff
//! sleeps), so what remains of its latency is the project's own work: the figure the chat turn's
//! overhead target (< 1 ms p99) is about, logged per request and emitted as `TurnOverhead`.
//!
//! `measure` puts a clock in the task; `io` wraps one awaited call. Overlapping calls (joined
//! futures) count once: the clock runs while at least one is in flight, so the I/O time never
//! exceeds the wall time. Outside `measure` (a spawned task, a test) `io` costs one task-local
//! lookup and records nothing.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, so tests can pause it; outside a paused test it is the monotonic clock.
use tokio::time::Instant;

#[derive(Default)]
struct State {
    in_flight: u32,
    since: Option<Instant>,
    total: Duration,
}

#[derive(Clone, Default)]
struct Clock(Arc<Mutex<State>>);

impl Clock {
    fn enter(&self) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if s.in_flight == 0 {
            s.since = Some(Instant::now());
        }
        s.in_flight += 1;
    }

    fn exit(&self) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            if let Some(since) = s.since.take() {
                s.total += since.elapsed();
            }
        }
    }

    fn total(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

tokio::task_local! {
    static CLOCK: Clock;
}

/// Runs `fut` and returns its output with the wall time spent inside `io` calls during it.
/// Inside another `measure` (a benchmark around `ChatApi::handle`) it shares the outer clock, so
/// both see the I/O.
pub async fn measure<F: Future>(fut: F) -> (F::Output, Duration) {
    if let Ok(outer) = CLOCK.try_with(Clock::clone) {
        let before = outer.total();
        let out = fut.await;
        return (out, outer.total().saturating_sub(before));
    }
    let clock = Clock::default();
    let out = CLOCK.scope(clock.clone(), fut).await;
    (out, clock.total())
}

/// Stops the clock again even when the awaiting future is dropped (a timeout, a lost race).
struct InFlight(Clock);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.exit();
    }
}

/// Awaits one I/O call, counting its time as I/O for the enclosing `measure`.
pub async fn io<F: Future>(fut: F) -> F::Output {
    let _in_flight = CLOCK.try_with(Clock::clone).ok().map(|c| {
        c.enter();
        InFlight(c)
    });
    fut.await
}

/// `.io()` on any future: the same as `io(fut)`, for the end of a builder chain
/// (`client.query()…send().io().await`).
pub trait IoFutureExt: Future + Sized {
    fn io(self) -> impl Future<Output = Self::Output> {
        io(self)
    }
}

impl<F: Future> IoFutureExt for F {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_awaited_io_once_even_when_calls_overlap() {
        let ((), io_time) = measure(async {
            io(tokio::time::sleep(Duration::from_millis(30))).await;
            // Two calls side by side for 20 ms are 20 ms of waiting, not 40.
            tokio::join!(
                io(tokio::time::sleep(Duration::from_millis(20))),
                io(tokio::time::sleep(Duration::from_millis(10))),
            );
            // Not wrapped: counted as our own time.
            tokio::time::sleep(Duration::from_millis(5)).await;
        })
        .await;
        assert_eq!(io_time, Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_call_stops_the_clock() {
        let ((), io_time) = measure(async {
            let slow = io(tokio::time::sleep(Duration::from_secs(10)));
            let _ = tokio::time::timeout(Duration::from_millis(40), slow).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
        .await;
        assert_eq!(io_time, Duration::from_millis(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_measure_inside_another_counts_for_both() {
        let (inner, outer) = measure(async {
            io(tokio::time::sleep(Duration::from_millis(10))).await;
            let ((), inner) = measure(io(tokio::time::sleep(Duration::from_millis(30)))).await;
            inner
        })
        .await;
        assert_eq!(inner, Duration::from_millis(30));
        assert_eq!(outer, Duration::from_millis(40));
    }

    #[tokio::test]
    async fn outside_measure_io_just_awaits() {
        assert_eq!(io(async { 7 }).await, 7);
    }
}
