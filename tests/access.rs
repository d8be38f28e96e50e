//! Access rules against the running chat function: customers reach only their own
//! conversations and orders, agents only their tenant's, admins erase; each refusal has its
//! status and writes nothing. Also the per-caller rate limit.

use std::time::Duration;

use serde_json::json;
use switchboard::auth::Role;
use switchboard_it::{texts, Reply, Stack};

const PROBLEM: &str = "application/problem+json";

fn assert_problem(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.content_type, PROBLEM, "{what}");
    assert_eq!(r.body["status"], status, "{what}");
}

/// The conversation's items, straight from the table, but its outbox items (the relay deletes
/// those as it sends them, whatever a test does meanwhile): what a refused request must not
/// change.
async fn items(stack: &Stack, tenant: &str, conversation: &str) -> usize {
    stack
        .partition(tenant, conversation)
        .await
        .iter()
        .filter(|i| !i["sk"].as_s().is_ok_and(|sk| sk.starts_with("JOB#")))
        .count()
}

/// An agent's action on a conversation: `takeover` or `release`.
async fn act(stack: &Stack, token: &str, conversation: &str, action: &str) -> Reply {
    let path = format!("/v1/conversations/{conversation}/{action}");
    stack.call("POST", Some(token), &path, None).await
}

async fn erase(stack: &Stack, token: &str, customer: &str) -> Reply {
    let path = format!("/v1/customers/{customer}");
    stack.call("DELETE", Some(token), &path, None).await
}

/// `customer`'s conversations, as the token's holder lists them.
async fn list_of(stack: &Stack, token: &str, customer: &str) -> Reply {
    let path = format!("/v1/conversations?customer_id={customer}");
    stack.get(Some(token), &path).await
}

fn history(conversation: &str) -> String {
    format!("/v1/conversations/{conversation}/messages?limit=100")
}

#[tokio::test]
async fn customers_reach_only_their_own_conversations() {
    let stack = Stack::connect().await;
    let (a, b) = (
        Stack::fresh_customer("cust_a"),
        Stack::fresh_customer("cust_b"),
    );
    let (ta, tb) = (stack.token(&a), stack.token(&b));
    let first = stack.say(&tb, None, "hi").await;
    let conv_b = first["conversation_id"].as_str().unwrap().to_string();
    let before = items(&stack, "default", &conv_b).await;

    // B's history and B's conversation look to A exactly like ones that do not exist.
    let theirs = stack.get(Some(&ta), &history(&conv_b)).await;
    assert_problem(&theirs, 404, "A reads B's history");
    let missing = stack
        .get(Some(&ta), &history("01J0000000000000000000NONE"))
        .await;
    assert_problem(&missing, 404, "A reads a missing conversation");
    assert_eq!(theirs.body["detail"], missing.body["detail"]);

    let r = stack
        .post(&ta, json!({ "text": "hello", "conversation_id": conv_b }))
        .await;
    assert_problem(&r, 404, "A writes into B's conversation");

    // Listing someone else's conversations is refused outright.
    let r = list_of(&stack, &ta, &b).await;
    assert_problem(&r, 403, "A lists B's conversations");
    // Naming oneself is the same as not naming anyone.
    let r = list_of(&stack, &tb, &b).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["conversations"].as_array().unwrap().len(), 1);

    // Customers cannot act as the team.
    for (method, path, body) in [
        ("POST", format!("/v1/conversations/{conv_b}/takeover"), None),
        (
            "POST",
            format!("/v1/conversations/{conv_b}/agent-messages"),
            Some(json!({ "text": "I am an agent, honest" })),
        ),
        ("DELETE", format!("/v1/customers/{b}"), None),
    ] {
        let r = stack.call(method, Some(&tb), &path, body).await;
        assert_problem(&r, 403, &format!("customer {method} {path}"));
    }

    assert_eq!(
        items(&stack, "default", &conv_b).await,
        before,
        "nothing written"
    );
    let listed = stack.get(Some(&ta), "/v1/conversations").await;
    assert_eq!(listed.body["conversations"], json!([]), "A has nothing");
}

#[tokio::test]
async fn another_customers_order_gets_the_same_answer_as_a_missing_one() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_nosy");
    let token = stack.token(&who);
    // 1001 is cust_alice's order in the demo systems; 9999 exists nowhere.
    let theirs = stack.say(&token, None, "where is my order #1001?").await;
    let missing = stack.say(&token, None, "where is my order #9999?").await;
    let theirs = texts(&theirs).join(" ").replace("1001", "N");
    let missing = texts(&missing).join(" ").replace("9999", "N");
    assert_eq!(theirs, missing);
    assert!(!theirs.contains("Wireless Mouse"), "{theirs}");
}

#[tokio::test]
async fn agents_work_inside_their_tenant_only() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("cust_needs_help");
    let token = stack.token(&customer);
    let first = stack.say(&token, None, "I want to talk to a person").await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();

    // An agent of another tenant cannot even name the conversation: keys carry the tenant.
    let outsider = stack.token_as("agent_outside", Some("other-shop"), Role::Agent);
    let before = items(&stack, "default", &conv).await;
    let r = stack.get(Some(&outsider), &history(&conv)).await;
    assert_problem(&r, 404, "another tenant's agent reads");
    let r = act(&stack, &outsider, &conv, "takeover").await;
    assert_problem(&r, 404, "another tenant's agent takes over");
    let r = list_of(&stack, &outsider, &customer).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["conversations"], json!([]));
    assert_eq!(items(&stack, "default", &conv).await, before);
    assert!(stack.partition("other-shop", &conv).await.is_empty());

    // The tenant's own agent reads, takes over, replies; the bot stays quiet meanwhile.
    let agent = stack.token_as("agent_ann", Some("default"), Role::Agent);
    let r = list_of(&stack, &agent, &customer).await;
    assert_eq!(r.body["conversations"][0]["id"], conv.as_str());
    let r = stack.get(Some(&agent), &history(&conv)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = stack
        .call(
            "POST",
            Some(&agent),
            &format!("/v1/conversations/{conv}/agent-messages"),
            Some(json!({ "text": "Hi, Ann here." })),
        )
        .await;
    assert_problem(&r, 409, "a reply before taking over");

    let r = act(&stack, &agent, &conv, "takeover").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], conv.as_str());

    let quiet = stack.say(&token, Some(&conv), "hello? anyone?").await;
    assert_eq!(quiet["replies"], json!([]), "the bot stays silent");

    let body = json!({ "text": "Hi, Ann here. Let me look.", "client_message_id": "ann-1" });
    let path = format!("/v1/conversations/{conv}/agent-messages");
    let sent = stack
        .call("POST", Some(&agent), &path, Some(body.clone()))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["message"]["role"], "agent");
    let again = stack.call("POST", Some(&agent), &path, Some(body)).await;
    assert_eq!(
        again.body["message"]["seq"], sent.body["message"]["seq"],
        "a retried reply is stored once"
    );

    // An oversized reply is refused and changes nothing.
    let before = items(&stack, "default", &conv).await;
    let r = stack
        .call(
            "POST",
            Some(&agent),
            &path,
            Some(json!({ "text": "x".repeat(20_000) })),
        )
        .await;
    assert_problem(&r, 413, "an oversized agent reply");
    assert_eq!(items(&stack, "default", &conv).await, before);

    // The customer sees the agent's message in their history.
    let seen = stack
        .wait_for_message(&token, &conv, Duration::from_secs(5), |m| {
            m["role"] == "agent"
        })
        .await;
    assert_eq!(seen["text"], "Hi, Ann here. Let me look.");

    let r = act(&stack, &agent, &conv, "release").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let back = stack.say(&token, Some(&conv), "thanks!").await;
    assert!(!texts(&back).is_empty(), "the bot answers again");

    // Agents do not chat as customers, nor erase.
    let r = stack.post(&agent, json!({ "text": "hi" })).await;
    assert_problem(&r, 403, "an agent posting as a customer");
    let r = erase(&stack, &agent, &customer).await;
    assert_problem(&r, 403, "an agent erasing");
}

#[tokio::test]
async fn an_admin_erases_a_customer_and_nothing_of_them_is_left() {
    let stack = Stack::connect().await;
    let gone = Stack::fresh_customer("cust_forget_me");
    let stays = Stack::fresh_customer("cust_keep_me");
    let (tg, ts) = (stack.token(&gone), stack.token(&stays));
    let mut convs = Vec::new();
    for text in [
        "hi",
        "where is my order?",
        "my email is forget.me@example.com",
    ] {
        let r = stack.say(&tg, None, text).await;
        convs.push(r["conversation_id"].as_str().unwrap().to_string());
    }
    let kept = stack.say(&ts, None, "hi").await;
    let kept = kept["conversation_id"].as_str().unwrap().to_string();
    let kept_items = items(&stack, "default", &kept).await;
    let mut expected_items = 0;
    for c in &convs {
        expected_items += items(&stack, "default", c).await;
    }

    let admin = stack.token_as("admin_root", Some("default"), Role::Admin);
    let r = erase(&stack, &admin, &gone).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer_id"], gone.as_str());
    assert_eq!(r.body["conversations_deleted"], 3);
    assert_eq!(r.body["items_deleted"], expected_items);

    for c in &convs {
        assert!(stack.partition("default", c).await.is_empty(), "{c} erased");
    }
    let listed = stack.get(Some(&tg), "/v1/conversations").await;
    assert_eq!(listed.body["conversations"], json!([]));
    assert_eq!(items(&stack, "default", &kept).await, kept_items);
    let _ = ts;

    // Erasing again is harmless; an admin of another tenant erases nothing here.
    let r = erase(&stack, &admin, &gone).await;
    assert_eq!(r.body["conversations_deleted"], 0);
    let other_admin = stack.token_as("admin_other", Some("other-shop"), Role::Admin);
    let r = erase(&stack, &other_admin, &stays).await;
    assert_eq!(r.body["conversations_deleted"], 0);
    assert_eq!(items(&stack, "default", &kept).await, kept_items);
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429_with_retry_after_and_writes_nothing() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_hammer");
    let token = stack.token(&who);
    let burst: usize = std::env::var("RATE_LIMIT_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    // The local stack runs up to four chat instances, each with its own bucket (as Lambda
    // containers do). Cheap reads first, until every bucket is empty...
    let budget = 4 * burst + 200;
    let mut sent = 0;
    let mut first_limited: Option<Reply> = None;
    while first_limited.is_none() && sent < budget {
        let reads = (0..8).map(|_| stack.get(Some(&token), "/v1/conversations?limit=1"));
        for r in futures_util::future::join_all(reads).await {
            match r.status {
                429 => {
                    first_limited.get_or_insert(r);
                }
                status => assert_eq!(status, 200, "{}", r.body),
            }
        }
        sent += 8;
    }
    let limited = first_limited.expect("the burst was limited");
    assert!(sent > burst, "the burst itself went through ({sent} sent)");
    assert_problem(&limited, 429, "over the limit");
    let retry: u64 = limited
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");

    // ...then messages, with reads beside them keeping the buckets empty (a turn takes long
    // enough here for a bucket to refill between two): a limited message is not stored, an
    // accepted one is.
    let mut refused = 0;
    for wave in 0..10 {
        let reads = (0..24).map(|_| stack.get(Some(&token), "/v1/conversations?limit=1"));
        let posts = (0..8).map(|i| {
            let cmid = format!("burst-{wave}-{i}");
            let token = token.clone();
            let stack = &stack;
            async move {
                let body = json!({ "text": "hi", "client_message_id": cmid });
                (cmid, stack.post(&token, body).await)
            }
        });
        let (posted, _) = tokio::join!(
            futures_util::future::join_all(posts),
            futures_util::future::join_all(reads)
        );
        for (cmid, r) in posted {
            let conv = switchboard::conversation::derived_conversation_id("default", &who, &cmid);
            let stored = !stack.partition("default", &conv).await.is_empty();
            match r.status {
                429 => {
                    assert!(!stored, "a limited message is not stored");
                    refused += 1;
                }
                status => {
                    assert_eq!(status, 200, "{}", r.body);
                    assert!(stored);
                }
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "messages over the limit were refused");

    // Someone else is not limited by it.
    let other = stack.token(&Stack::fresh_customer("cust_calm"));
    let r = stack.get(Some(&other), "/v1/conversations").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn erasure_is_bounded_per_call_and_repeats_finish_it() {
    use switchboard::conversation::{Conversation, ConversationKey, Message, Role as MessageRole};
    use switchboard::store::{dynamo::DynamoStore, MAX_ERASED_PER_CALL};
    use switchboard::store::{Commit, ConversationStore};

    let stack = Stack::connect().await;
    // Ids with '@' arrive percent-encoded in a path.
    let customer = format!("{}@shop", Stack::fresh_customer("cust_many"));
    let store = DynamoStore::new(
        stack.ddb.clone(),
        stack.table.clone(),
        Duration::from_secs(86_400),
    );
    // Written straight to the table: more conversations than one call erases, without going
    // through the (rate-limited) chat API.
    let now = time::OffsetDateTime::now_utc();
    for _ in 0..MAX_ERASED_PER_CALL + 2 {
        let key = ConversationKey {
            tenant: "default".into(),
            id: switchboard::conversation::new_conversation_id(),
        };
        let mut c = Conversation::new(key, customer.clone(), now);
        c.version = 1;
        c.last_seq = 1;
        let message = Message::new(1, MessageRole::Customer, "hello", now);
        let commit = Commit {
            conversation: c,
            expected_version: 0,
            messages: vec![message],
            turn: None,
            effect: None,
            jobs: vec![],
        };
        store.commit(commit).await.unwrap();
    }

    let admin = stack.token_as("admin_root", Some("default"), Role::Admin);
    let encoded = customer.replace('@', "%40");
    let first = erase(&stack, &admin, &encoded).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["customer_id"], customer.as_str());
    assert_eq!(first.body["conversations_deleted"], MAX_ERASED_PER_CALL);
    assert_eq!(first.body["items_deleted"], 2 * MAX_ERASED_PER_CALL);
    assert_eq!(first.body["complete"], false);

    let second = erase(&stack, &admin, &encoded).await;
    assert_eq!(second.body["conversations_deleted"], 2);
    assert_eq!(second.body["complete"], true);
    assert!(store
        .conversations_of("default", &customer, 100)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn someone_elses_history_reads_no_messages() {
    let stack = Stack::connect().await;
    let (a, b) = (
        Stack::fresh_customer("cust_a"),
        Stack::fresh_customer("cust_b"),
    );
    let (ta, tb) = (stack.token(&a), stack.token(&b));
    let first = stack.say(&tb, None, "hi").await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    // Counts the message reads (Query) of the conversation's partition, passing them through.
    let queries = stack
        .arm_aws_fault(json!({ "target": "DynamoDB_20120810.Query", "match": conv, "delay_ms": 1 }))
        .await;
    let theirs = stack.get(Some(&ta), &history(&conv)).await;
    let missing = stack
        .get(Some(&ta), &history("01JZZZZZZZZZZZZZZZZZZZZZZZ"))
        .await;
    let read_for_a = stack.aws_fault_hits(&queries).await;
    let own = stack.get(Some(&tb), &history(&conv)).await;
    let read_for_b = stack.aws_fault_hits(&queries).await;
    stack.clear_aws_fault(&queries).await;

    assert_problem(&theirs, 404, "someone else's conversation");
    assert_problem(&missing, 404, "a missing conversation");
    assert_eq!(theirs.body["detail"], missing.body["detail"]);
    assert_eq!(read_for_a, 0, "someone else's messages were read");
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(read_for_b, 1, "the owner's page is one Query");
}
