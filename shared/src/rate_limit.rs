//! Per-caller rate limit of the chat API: a GCRA token bucket per (tenant, subject), in memory.
//!
//! Lambda runs one request at a time per container and spreads a burst over containers, so this
//! limit holds per container: it stops a caller hammering a warm function (the common case: a
//! client in a retry loop) at no I/O cost, while API Gateway's throttling (template.yaml) caps the
//! whole API. A limit shared by every container would need a counter in DynamoDB: one more write
//! per request, which the turn's I/O budget (one read, one write) does not have room for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{ConfigError, Env};

/// How many callers a container tracks before it forgets the idle ones.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    /// Sustained requests per minute per caller; 0 turns the limit off.
    pub per_minute: u32,
    /// Requests a caller may make at once before the sustained rate applies.
    pub burst: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            per_minute: 120,
            burst: 30,
        }
    }
}

impl RateSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let s = Self {
            per_minute: env.parsed("RATE_LIMIT_PER_MINUTE", d.per_minute)?,
            burst: env.parsed("RATE_LIMIT_BURST", d.burst)?,
        };
        if s.per_minute > 0 && s.burst == 0 {
            return Err(ConfigError::Invalid {
                name: "RATE_LIMIT_BURST",
                reason: "must be at least 1 while RATE_LIMIT_PER_MINUTE is set".into(),
            });
        }
        Ok(s)
    }
}

/// GCRA: each caller has a theoretical arrival time (TAT); a request is allowed when the TAT is
/// no further ahead of now than the burst allows, and pushes it on by one interval.
pub struct RateLimiter {
    interval: Duration,
    /// How far ahead of now the TAT may run: (burst - 1) intervals.
    tolerance: Duration,
    enabled: bool,
    tats: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub fn new(settings: RateSettings) -> Self {
        let enabled = settings.per_minute > 0;
        let interval = Duration::from_secs(60) / settings.per_minute.max(1);
        Self {
            interval,
            tolerance: interval * settings.burst.saturating_sub(1),
            enabled,
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` if `caller` may go ahead now, else how long until it may.
    pub fn check(&self, caller: &str) -> Result<(), Duration> {
        self.check_at(caller, Instant::now())
    }

    fn check_at(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        // A poisoned lock only means another request panicked mid-update of a timestamp.
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        let tat = tats.get(caller).copied().unwrap_or(now).max(now);
        let allowed_from = tat.checked_sub(self.tolerance).unwrap_or(now);
        if now < allowed_from {
            return Err(allowed_from - now);
        }
        if tats.len() >= MAX_TRACKED && !tats.contains_key(caller) {
            // Callers whose TAT has passed are back to a full bucket: forgetting them changes
            // nothing. Only if every tracked caller is still limited does the map stay full.
            tats.retain(|_, t| *t > now);
            if tats.len() >= MAX_TRACKED {
                // Everyone is still limited: the caller closest to a full bucket goes, so the
                // map stays bounded whatever the callers do.
                let soonest = tats.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    tats.remove(&k);
                }
            }
        }
        tats.insert(caller.to_string(), tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateSettings { per_minute, burst })
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = limiter(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a", t0).is_ok());
        }
        let wait = l.check_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // Another caller has a bucket of its own.
        assert!(l.check_at("b", t0).is_ok());
        // One interval later exactly one more request fits.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check_at("a", t1).is_ok());
        assert!(l.check_at("a", t1).is_err());
        // After a long pause the whole burst is back, and no more.
        let t2 = t1 + Duration::from_secs(600);
        for _ in 0..3 {
            assert!(l.check_at("a", t2).is_ok());
        }
        assert!(l.check_at("a", t2).is_err());
    }

    #[test]
    fn zero_per_minute_is_off() {
        let l = limiter(0, 0);
        let t = Instant::now();
        for _ in 0..1000 {
            assert!(l.check_at("a", t).is_ok());
        }
    }

    #[test]
    fn idle_callers_are_forgotten_when_the_map_is_full() {
        let l = limiter(60, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED {
            l.check_at(&format!("c{i}"), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(5);
        l.check_at("newcomer", later).unwrap();
        assert_eq!(l.tats.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_map_stays_bounded_while_everyone_is_limited() {
        let l = limiter(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            l.check_at(&format!("c{i}"), t0).unwrap();
        }
        assert_eq!(l.tats.lock().unwrap().len(), MAX_TRACKED);
    }

    #[test]
    fn a_burst_without_a_rate_is_refused() {
        let env = Env(|k: &str| match k {
            "RATE_LIMIT_PER_MINUTE" => Some("10".to_string()),
            "RATE_LIMIT_BURST" => Some("0".to_string()),
            _ => None,
        });
        assert!(RateSettings::from_env(&env).is_err());
    }
}
