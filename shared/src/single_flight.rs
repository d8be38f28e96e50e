//! Callers that ask for the same thing at the same time share one fetch of it. The webhook
//! function reads every vendor's and channel's secret at once at init, and the template keeps
//! them as keys of two Secrets Manager secrets: without this, each key was a `GetSecretValue`
//! of the same secret (eight calls for two secrets). Nothing is kept once the fetch is over:
//! the callers' own caches decide how long a value lives (a rotation must be seen).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared};

pub struct SingleFlight<K, V: Clone> {
    in_flight: Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone + Send + Sync + 'static> SingleFlight<K, V> {
    /// What `fetch` gives for `key`: started here, or joined if a fetch of `key` is under way.
    pub async fn run(&self, key: K, fetch: impl FnOnce() -> BoxFuture<'static, V>) -> V {
        let shared = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| fetch().shared())
            .clone();
        // However this call ends (an answer, its caller dropping it, a panic in the fetch), the
        // entry goes: a fetch nobody waits for any more must not be joined minutes later, after
        // a rotation, nor a panicked one forever.
        let _leave = Leave {
            flight: self,
            key,
            shared: shared.clone(),
        };
        shared.await
    }
}

/// Removes its fetch's entry when dropped: only that fetch's (a newer one for the key is
/// another caller's). Another thread may still clone the entry between the fetch's end and
/// this: it then gets the value just read, which is as fresh as any.
struct Leave<'a, K: Eq + Hash, V: Clone> {
    flight: &'a SingleFlight<K, V>,
    key: K,
    shared: Shared<BoxFuture<'static, V>>,
}

impl<K: Eq + Hash, V: Clone> Drop for Leave<'_, K, V> {
    fn drop(&mut self) {
        let mut in_flight = self
            .flight
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if in_flight
            .get(&self.key)
            .is_some_and(|current| Shared::ptr_eq(current, &self.shared))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counted(
        calls: &Arc<AtomicUsize>,
        gate: &Arc<tokio::sync::Notify>,
        value: u32,
    ) -> impl FnOnce() -> BoxFuture<'static, u32> {
        let (calls, gate) = (calls.clone(), gate.clone());
        move || {
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                value
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn callers_of_one_key_at_once_share_one_fetch_and_other_keys_have_their_own() {
        let flight = SingleFlight::<&str, u32>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let all = futures_util::future::join_all([
            flight.run("a", counted(&calls, &gate, 1)).boxed(),
            flight.run("a", counted(&calls, &gate, 2)).boxed(),
            flight.run("a", counted(&calls, &gate, 3)).boxed(),
            flight.run("b", counted(&calls, &gate, 4)).boxed(),
        ]);
        let opener = async {
            // Every caller is waiting before the fetches may end.
            while calls.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            gate.notify_waiters();
        };
        let (values, ()) = tokio::join!(all, opener);
        assert_eq!(values, [1, 1, 1, 4]);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one fetch per key");
        assert!(flight.in_flight.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_fetch_its_callers_gave_up_on_is_not_joined_later() {
        let flight = SingleFlight::<&str, u32>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        // The only caller stops waiting (a timeout) before the fetch ends.
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            flight.run("a", counted(&calls, &gate, 1)),
        )
        .await;
        assert!(waited.is_err());
        assert!(flight.in_flight.lock().unwrap().is_empty());
        // The next caller fetches afresh.
        assert_eq!(flight.run("a", || async { 2 }.boxed()).await, 2);
    }

    #[tokio::test]
    async fn a_fetch_that_is_over_is_not_shared_with_later_callers() {
        let flight = SingleFlight::<&str, u32>::default();
        let first = flight.run("a", || async { 1 }.boxed()).await;
        let second = flight.run("a", || async { 2 }.boxed()).await;
        assert_eq!((first, second), (1, 2));
    }
}
