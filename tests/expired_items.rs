//! Reads and erasure over items DynamoDB keeps after they expire. TTL deletes in no set order
//! and may take days; moto never deletes them, so items written here with their `expires_at`
//! already past stay, as expired items do in AWS until TTL gets to them. Written straight to the
//! table with the store (a one-day retention), not through the API; an expired conversation is
//! dated further back than any retention the stack's functions use, since the listing judges a
//! record by the function's `RETENTION_DAYS` (the index holds no `expires_at`).

use std::time::Duration;

use serde_json::Value;
use switchboard::auth::Role;
use switchboard::conversation::{Conversation, ConversationKey, Message, Role as MessageRole};
use switchboard::store::{dynamo::DynamoStore, MAX_ERASED_PER_CALL};
use switchboard::store::{Commit, ConversationStore};
use switchboard_it::Stack;
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(86_400);
/// Past every `RETENTION_DAYS` in use (365 by default).
const LONG_AGO: Duration = Duration::from_secs(3650 * 86_400);

fn store(stack: &Stack) -> DynamoStore {
    DynamoStore::new(stack.ddb.clone(), stack.table.clone(), DAY)
}

/// Commits messages `seqs`, written at `at`, to the conversation (`previous` is what the last
/// call returned), updating its record at `at`; returns the record.
async fn write(
    store: &DynamoStore,
    key: &ConversationKey,
    customer: &str,
    previous: Option<Conversation>,
    seqs: std::ops::RangeInclusive<u64>,
    at: OffsetDateTime,
) -> Conversation {
    let expected_version = previous.as_ref().map_or(0, |c| c.version);
    let mut c = previous.unwrap_or_else(|| Conversation::new(key.clone(), customer.into(), at));
    c.version = expected_version + 1;
    c.last_seq = *seqs.end();
    c.updated_at = at;
    let messages = seqs
        .map(|seq| Message::new(seq, MessageRole::Customer, format!("message {seq}"), at))
        .collect();
    store
        .commit(Commit {
            conversation: c.clone(),
            expected_version,
            messages,
            turn: None,
            effect: None,
            jobs: vec![],
        })
        .await
        .unwrap();
    c
}

fn new_key() -> ConversationKey {
    ConversationKey {
        tenant: "default".into(),
        id: switchboard::conversation::new_conversation_id(),
    }
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn history_pages_hold_the_live_messages_however_many_expired_ones_come_first() {
    let stack = Stack::connect().await;
    let store = store(&stack);
    let customer = Stack::fresh_customer("cust_long");
    let token = stack.token(&customer);
    let key = new_key();
    let now = OffsetDateTime::now_utc();
    // Messages 1-60 expired, 61-64 live, and the record live.
    let c = write(&store, &key, &customer, None, 1..=30, now - 2 * DAY).await;
    let c = write(&store, &key, &customer, Some(c), 31..=60, now - 2 * DAY).await;
    write(&store, &key, &customer, Some(c), 61..=64, now).await;
    let path = |q: &str| format!("/v1/conversations/{}/messages?{q}", key.id);

    // Pages of 3: DynamoDB's Limit counts the expired items it reads, which the filter then
    // drops; the page still holds 3 live ones, and the next starts after the last returned.
    let page = stack.get(Some(&token), &path("limit=3")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(seqs(&page.body), [61, 62, 63]);
    assert_eq!(page.body["next_after"], 63);
    let page = stack.get(Some(&token), &path("after=63&limit=3")).await;
    assert_eq!(seqs(&page.body), [64]);
    assert_eq!(page.body["next_after"], 64);
    let page = stack.get(Some(&token), &path("after=64&limit=3")).await;
    assert_eq!(seqs(&page.body), Vec::<u64>::new());
    assert_eq!(page.body["next_after"], 64);
    let page = stack.get(Some(&token), &path("after=10&limit=100")).await;
    assert_eq!(seqs(&page.body), [61, 62, 63, 64]);

    // A turn's read (the record and the newest messages) and the listing see the same.
    let snapshot = store.load(&key, 10).await.unwrap().unwrap();
    let recent: Vec<u64> = snapshot.recent.iter().map(|m| m.seq).collect();
    assert_eq!(recent, [61, 62, 63, 64]);
    let listed = stack.get(Some(&token), "/v1/conversations").await;
    assert_eq!(listed.body["conversations"][0]["id"], key.id.as_str());
}

#[tokio::test]
async fn erasure_deletes_expired_conversations_too_a_bounded_number_a_call() {
    let stack = Stack::connect().await;
    let store = store(&stack);
    let customer = Stack::fresh_customer("cust_expired");
    let token = stack.token(&customer);
    let now = OffsetDateTime::now_utc();
    // One fewer live conversation than a call erases, and three expired ones TTL has not
    // deleted: 28 in all, so the first call's page (26) holds expired ones.
    let mut live = Vec::new();
    for _ in 0..MAX_ERASED_PER_CALL - 1 {
        let key = new_key();
        write(&store, &key, &customer, None, 1..=2, now).await;
        live.push(key);
    }
    let mut expired = Vec::new();
    for _ in 0..3 {
        let key = new_key();
        write(&store, &key, &customer, None, 1..=2, now - LONG_AGO).await;
        expired.push(key);
    }
    let listed = stack.get(Some(&token), "/v1/conversations?limit=100").await;
    assert_eq!(
        listed.body["conversations"].as_array().unwrap().len(),
        live.len(),
        "expired conversations are not listed"
    );
    for key in &expired {
        assert!(store.history(key, 0, 10).await.unwrap().is_none());
        assert_eq!(stack.partition("default", &key.id).await.len(), 3);
    }

    let admin = stack.token_as("admin_root", Some("default"), Role::Admin);
    let path = format!("/v1/customers/{customer}");
    let first = stack.call("DELETE", Some(&admin), &path, None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["conversations_deleted"], MAX_ERASED_PER_CALL);
    assert_eq!(first.body["items_deleted"], 3 * MAX_ERASED_PER_CALL);
    assert_eq!(first.body["complete"], false, "{}", first.body);
    let second = stack.call("DELETE", Some(&admin), &path, None).await;
    assert_eq!(second.body["conversations_deleted"], 2, "{}", second.body);
    assert_eq!(second.body["items_deleted"], 6);
    assert_eq!(second.body["complete"], true);
    for key in live.iter().chain(&expired) {
        assert!(
            stack.partition("default", &key.id).await.is_empty(),
            "{} erased",
            key.id
        );
    }
    let third = stack.call("DELETE", Some(&admin), &path, None).await;
    assert_eq!(third.body["conversations_deleted"], 0);
    assert_eq!(third.body["complete"], true);
}
