//! Work done ahead of need on a thread that runs only when no other thread wants the CPU:
//! the understanding's warm-up (patterns compiled, row indexes built) is a function's busiest
//! thread for ~10 ms after init, and at normal priority it took a core from the rest of init and
//! the runtime's first poll (measured, issue 24: chat's start to its first poll 10.2–13.1 ms p50
//! with it, 7.8–9.6 without it). At idle priority it fills the time init and turns spend waiting.
//!
//! Nothing waits on it by design: a turn that needs a pattern the warm-up has not reached builds
//! it itself at its own priority; only one the warm-up is building at that moment is waited for
//! (a `OnceLock`), and the waiting thread then leaves the CPU to it.

use std::thread::JoinHandle;

/// Runs `work` on a thread named `name` at idle priority (Linux's `SCHED_IDLE`; elsewhere at
/// normal priority).
pub fn spawn<F: FnOnce() + Send + 'static>(name: &str, work: F) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            idle_priority();
            work()
        })
}

#[cfg(target_os = "linux")]
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: on Linux pid 0 names the calling thread, so only this thread's policy changes;
    // `param` outlives the call, which only reads it. SCHED_IDLE needs no privilege.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        // Still worth doing, at normal priority, as before.
        tracing::debug!(error = %std::io::Error::last_os_error(), "idle priority refused");
    }
}

#[cfg(not(target_os = "linux"))]
fn idle_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_on_a_named_thread() {
        let handle = spawn("warm-up-test", || {
            assert_eq!(std::thread::current().name(), Some("warm-up-test"));
        })
        .expect("spawned");
        handle.join().expect("the work ran without panicking");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_the_thread_runs_at_idle_priority_and_the_caller_keeps_its_own() {
        // SAFETY: pid 0 reads the calling thread's policy; no pointers.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let caller = policy();
        let seen = spawn("idle-policy-test", move || {
            assert_eq!(policy(), libc::SCHED_IDLE);
        })
        .expect("spawned")
        .join();
        assert!(seen.is_ok(), "the spawned thread was not at SCHED_IDLE");
        assert_eq!(policy(), caller);
    }
}
