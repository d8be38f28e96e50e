//! A vendor's (or a messaging channel's) signing keys: read from the secret store through its
//! references, cached per container and re-read when due, so a rotation reaches warm containers
//! and a revocation takes effect within the TTL.
//!
//! What a read finds decides what requests get until the next read is due:
//!
//! - keys: they verify, for `secrets_ttl`;
//! - no usable key although the store answered (the secret deleted, emptied or malformed: the
//!   vendor disabled, a leaked secret revoked): no keys, so every request fails verification
//!   (401), for `secrets_ttl`; the keys in hand are dropped;
//! - the store could not be read (a reference `Unavailable`): the keys in hand stay in use, but
//!   only until `secrets_max_stale` after they were read; without them, 503. Read again after
//!   `UNAVAILABLE_RETRY` (or the TTL if shorter).
//!
//! So a request never reaches the store while an answer is cached, whatever that answer is: an
//! anonymous POST to a disabled vendor, or during an outage, costs no `GetSecretValue`. Reads are
//! single-flight per vendor: requests that find the keys due wait for the one read in progress
//! and take its answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock, so tests can pause and advance it; otherwise it is the monotonic clock.
use tokio::time::Instant;

use crate::problem::ApiError;
use crate::secrets::{SecretError, SecretRef, SecretSource};
use crate::signatures::SigningKey;

use super::config::VendorConfig;
use super::WebhookSettings;

/// How soon a read that found the store unavailable is tried again: as often as the 503's
/// `Retry-After` invites the vendor back, not once per request.
pub const UNAVAILABLE_RETRY: Duration = Duration::from_secs(30);

/// What one read of a vendor's references found.
enum Read<K> {
    Keys(Vec<K>),
    /// Every reference answered, and none with a usable key.
    NoUsableKey,
    /// No usable key, and at least one reference could not be read: its keys may be the ones
    /// in hand.
    Unavailable,
}

struct State<K> {
    /// The keys of the last read that found any, and when it did.
    good: Option<(Arc<Vec<K>>, Instant)>,
    /// What requests get until `due`: keys (none when the vendor has no usable secret), or
    /// `None` while the store is unavailable and no keys may be used.
    answer: Option<Arc<Vec<K>>>,
    due: Option<Instant>,
}

impl<K> Default for State<K> {
    fn default() -> Self {
        Self {
            good: None,
            answer: None,
            due: None,
        }
    }
}

impl<K> State<K> {
    fn cached(&self, now: Instant) -> Option<Result<Arc<Vec<K>>, ApiError>> {
        match self.due {
            Some(due) if now < due => Some(self.answer()),
            _ => None,
        }
    }

    fn answer(&self) -> Result<Arc<Vec<K>>, ApiError> {
        self.answer.clone().ok_or_else(|| ApiError::Unavailable {
            detail: "the vendor's signing secret cannot be read right now".into(),
            retry_after_secs: UNAVAILABLE_RETRY.as_secs() as u32,
        })
    }

    fn record(&mut self, vendor: &str, read: Read<K>, now: Instant, settings: &WebhookSettings) {
        let ttl = settings.secrets_ttl;
        match read {
            Read::Keys(keys) => {
                let keys = Arc::new(keys);
                self.good = Some((keys.clone(), now));
                self.answer = Some(keys);
                self.due = Some(now + ttl);
            }
            Read::NoUsableKey => {
                if self.good.take().is_some() {
                    tracing::error!(vendor, "the vendor's signing secret is gone: its keys are dropped and its requests refused (401)");
                }
                self.answer = Some(Arc::new(Vec::new()));
                self.due = Some(now + ttl);
            }
            Read::Unavailable => {
                let retry = now + ttl.min(UNAVAILABLE_RETRY);
                match &self.good {
                    Some((keys, read_at)) if now < *read_at + settings.secrets_max_stale => {
                        let until = *read_at + settings.secrets_max_stale;
                        tracing::warn!(
                            vendor,
                            read_secs_ago = (now - *read_at).as_secs(),
                            "secret store unavailable: keeping the keys in hand"
                        );
                        self.answer = Some(keys.clone());
                        self.due = Some(retry.min(until));
                    }
                    _ => {
                        if self.good.take().is_some() {
                            tracing::error!(vendor, "secret store unavailable for longer than WEBHOOK_SECRETS_MAX_STALE_SECS: the keys in hand are dropped (503)");
                        }
                        self.answer = None;
                        self.due = Some(retry);
                    }
                }
            }
        }
    }
}

/// One sender's keys, of whatever type its verification needs.
pub struct KeyCache<K> {
    state: Mutex<State<K>>,
    /// Held for the length of a read: one read at a time per sender.
    reading: tokio::sync::Mutex<()>,
}

impl<K> Default for KeyCache<K> {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            reading: tokio::sync::Mutex::default(),
        }
    }
}

/// A vendor's keys: decoded as its signature scheme requires.
pub type VendorKeys = KeyCache<SigningKey>;

impl VendorKeys {
    /// The vendor's signing keys as of the last read, reading them again when due. An empty
    /// list means the vendor has no usable secret: nothing verifies.
    pub async fn get(
        &self,
        c: &VendorConfig,
        secrets: &dyn SecretSource,
        settings: &WebhookSettings,
    ) -> Result<Arc<Vec<SigningKey>>, ApiError> {
        let scheme = c.scheme;
        self.keys(&c.name, &c.secrets, secrets, settings, |v| {
            SigningKey::new(scheme, v).map_err(|e| e.to_string())
        })
        .await
    }
}

impl<K> KeyCache<K> {
    /// The keys `refs` hold as of the last read, each made by `make` from a secret's value,
    /// reading them again when due; `name` says whose they are in logs. An empty list means
    /// no usable secret: nothing verifies.
    pub async fn keys(
        &self,
        name: &str,
        refs: &[SecretRef],
        secrets: &dyn SecretSource,
        settings: &WebhookSettings,
        make: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Arc<Vec<K>>, ApiError> {
        if let Some(answer) = self.state.lock().unwrap().cached(Instant::now()) {
            return answer;
        }
        let _reading = self.reading.lock().await;
        // The read this one waited for has just answered.
        if let Some(answer) = self.state.lock().unwrap().cached(Instant::now()) {
            return answer;
        }
        let read = read(name, refs, secrets, make).await;
        let mut state = self.state.lock().unwrap();
        state.record(name, read, Instant::now(), settings);
        state.answer()
    }
}

async fn read<K>(
    name: &str,
    refs: &[SecretRef],
    secrets: &dyn SecretSource,
    make: impl Fn(&str) -> Result<K, String>,
) -> Read<K> {
    let mut keys = Vec::new();
    let mut unavailable = false;
    for reference in refs {
        match secrets.resolve(reference).await {
            Ok(values) => {
                for v in values {
                    match make(v.expose()) {
                        Ok(k) => keys.push(k),
                        Err(e) => {
                            tracing::error!(vendor = %name, secret = %reference, error = %e, "unusable secret value")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(vendor = %name, error = %e, "secret not read");
                unavailable |= matches!(e, SecretError::Unavailable { .. });
            }
        }
    }
    if !keys.is_empty() {
        Read::Keys(keys)
    } else if unavailable {
        Read::Unavailable
    } else {
        Read::NoUsableKey
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::secrets::{SecretRef, SecretValue};

    const TTL: Duration = Duration::from_secs(300);
    const MAX_STALE: Duration = Duration::from_secs(900);
    const SECRET: &str = "whsec_unit_keys_0123456789";

    /// Answers each read with the next scripted outcome (the last one repeats), counting reads;
    /// `slow` makes each read take a second, so concurrent requests overlap it.
    struct Store {
        script: Mutex<VecDeque<Result<&'static str, SecretError>>>,
        reads: AtomicUsize,
        slow: bool,
    }

    impl Store {
        fn new(script: Vec<Result<&'static str, SecretError>>) -> Self {
            Self {
                script: Mutex::new(script.into()),
                reads: AtomicUsize::new(0),
                slow: false,
            }
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl SecretSource for Store {
        async fn resolve(&self, _reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.slow {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let mut script = self.script.lock().unwrap();
            let next = if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script[0].clone()
            };
            next.map(|v| vec![SecretValue::new(v)])
        }
    }

    fn unavailable() -> Result<&'static str, SecretError> {
        Err(SecretError::Unavailable {
            reference: "secretsmanager:x#stripe".into(),
            reason: "throttled".into(),
        })
    }

    fn not_found() -> Result<&'static str, SecretError> {
        Err(SecretError::NotFound("secretsmanager:x#stripe".into()))
    }

    fn vendor() -> VendorConfig {
        let vendors = super::super::config::parse(
            "test",
            r#"
[vendors.stripe]
scheme = "stripe"
secrets = ["secretsmanager:x#stripe"]
"#,
        )
        .unwrap();
        vendors["stripe"].clone()
    }

    fn settings() -> WebhookSettings {
        WebhookSettings {
            secrets_ttl: TTL,
            secrets_max_stale: MAX_STALE,
        }
    }

    /// How many keys a request gets, or its status when it gets none at all.
    async fn keys(k: &VendorKeys, store: &Store) -> Result<usize, u16> {
        k.get(&vendor(), store, &settings())
            .await
            .map(|keys| keys.len())
            .map_err(|e| e.status())
    }

    async fn advance(by: Duration) {
        tokio::time::advance(by).await;
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_keys_are_read_once_per_ttl() {
        let store = Store::new(vec![Ok(SECRET)]);
        let k = VendorKeys::default();
        for _ in 0..100 {
            assert_eq!(keys(&k, &store).await, Ok(1));
        }
        assert_eq!(store.reads(), 1);
        advance(TTL - Duration::from_secs(1)).await;
        assert_eq!(keys(&k, &store).await, Ok(1));
        assert_eq!(store.reads(), 1);
        advance(Duration::from_secs(1)).await;
        assert_eq!(keys(&k, &store).await, Ok(1));
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_store_is_unavailable_the_keys_in_hand_stay_and_it_is_asked_every_30_s() {
        let store = Store::new(vec![Ok(SECRET), unavailable()]);
        let k = VendorKeys::default();
        assert_eq!(keys(&k, &store).await, Ok(1));
        advance(TTL).await;
        for _ in 0..100 {
            assert_eq!(keys(&k, &store).await, Ok(1), "stale but unavailable");
        }
        assert_eq!(store.reads(), 2);
        advance(UNAVAILABLE_RETRY).await;
        assert_eq!(keys(&k, &store).await, Ok(1));
        assert_eq!(store.reads(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_or_malformed_secret_drops_the_keys_in_hand() {
        for gone in [
            not_found(),
            Err(SecretError::Malformed {
                reference: "secretsmanager:x#stripe".into(),
                reason: "not an array of strings".into(),
            }),
            // A value no key can be made of.
            Ok(""),
        ] {
            let store = Store::new(vec![Ok(SECRET), gone.clone()]);
            let k = VendorKeys::default();
            assert_eq!(keys(&k, &store).await, Ok(1));
            advance(TTL).await;
            assert_eq!(keys(&k, &store).await, Ok(0), "{gone:?}");
            // Even if the store then goes down: the revoked keys do not come back.
            store.script.lock().unwrap()[0] = unavailable();
            advance(TTL).await;
            assert_eq!(keys(&k, &store).await, Err(503), "{gone:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_keys_in_hand_are_not_used_past_the_bound() {
        let store = Store::new(vec![Ok(SECRET), unavailable()]);
        let k = VendorKeys::default();
        assert_eq!(keys(&k, &store).await, Ok(1));
        advance(MAX_STALE - Duration::from_secs(1)).await;
        assert_eq!(keys(&k, &store).await, Ok(1));
        advance(Duration::from_secs(1)).await;
        assert_eq!(keys(&k, &store).await, Err(503));
        // Recovered: the next read after the retry interval brings keys back.
        store.script.lock().unwrap()[0] = Ok(SECRET);
        assert_eq!(keys(&k, &store).await, Err(503));
        advance(UNAVAILABLE_RETRY).await;
        assert_eq!(keys(&k, &store).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_vendor_without_a_secret_costs_one_read_per_ttl() {
        let store = Store::new(vec![not_found()]);
        let k = VendorKeys::default();
        for _ in 0..1000 {
            assert_eq!(keys(&k, &store).await, Ok(0));
        }
        assert_eq!(store.reads(), 1);
        advance(TTL).await;
        for _ in 0..1000 {
            assert_eq!(keys(&k, &store).await, Ok(0));
        }
        assert_eq!(store.reads(), 2);
        // Without keys in hand an outage answers 503, and is asked again only after 30 s.
        store.script.lock().unwrap()[0] = unavailable();
        advance(TTL).await;
        for _ in 0..1000 {
            assert_eq!(keys(&k, &store).await, Err(503));
        }
        assert_eq!(store.reads(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_read() {
        let mut store = Store::new(vec![not_found()]);
        store.slow = true;
        let store = Arc::new(store);
        let k = Arc::new(VendorKeys::default());
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (k, store) = (k.clone(), store.clone());
            set.spawn(async move { keys(&k, &store).await });
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap(), Ok(0));
        }
        assert_eq!(store.reads(), 1);
    }
}
