//! Vendor webhooks against the running webhook and fulfillment functions: verification and its
//! bad input, deduplication, and the proactive messages they turn into.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::signatures::{sign, Scheme, SigningKey};
use switchboard_it::{event_job_key, signed, texts, unix_now as now, Stack};

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn stripe_payment_failed(event_id: &str, customer: &str) -> Vec<u8> {
    json!({
        "id": event_id, "object": "event", "type": "invoice.payment_failed",
        "data": { "object": {
            "object": "invoice", "customer": customer, "amount_due": 2999, "currency": "usd",
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/test_1"
        }}
    })
    .to_string()
    .into_bytes()
}

async fn claim(stack: &Stack, vendor: &str, event_id: &str) -> Option<Value> {
    stack
        .item(&format!("T#default#W#{vendor}#{event_id}"), "CLAIM")
        .await
        .map(|item| {
            json!({
                "state": item["claim_state"].as_s().unwrap(),
                "outcome": item.get("outcome").and_then(|o| o.as_s().ok()),
                "vendor_type": item["vendor_type"].as_s().unwrap(),
            })
        })
}

/// Waits for the customer's conversations to hold `n` bot messages in all; returns the newest
/// conversation's id and its messages.
async fn wait_for_bot_messages(stack: &Stack, token: &str, n: usize) -> (String, Vec<Value>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = stack.get(Some(token), "/v1/conversations").await;
        assert_eq!(list.status, 200, "{}", list.body);
        if let Some(first) = list.body["conversations"].as_array().unwrap().first() {
            let id = first["id"].as_str().unwrap().to_string();
            let page = stack
                .get(
                    Some(token),
                    &format!("/v1/conversations/{id}/messages?limit=100"),
                )
                .await;
            let messages: Vec<Value> = page.body["messages"].as_array().unwrap().clone();
            let bots = messages.iter().filter(|m| m["role"] == "bot").count();
            if bots >= n {
                return (id, messages);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no proactive message within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_stripe_payment_failure_reaches_the_customer_once_and_yes_continues() {
    let stack = Stack::connect().await;
    let event_id = unique("evt_it");
    let body = stripe_payment_failed(&event_id, "cus_erin05");
    let headers = signed(Scheme::Stripe, "stripe", "", now(), &body);

    // The same delivery four times at once (a vendor retrying over a slow answer): one is
    // queued, the others are duplicates or told to come back.
    let attempts = futures_join(&stack, &headers, &body, 4).await;
    assert_eq!(
        attempts.iter().filter(|s| **s == 202).count(),
        1,
        "{attempts:?}"
    );
    assert!(
        attempts.iter().all(|s| [200, 202, 409].contains(s)),
        "{attempts:?}"
    );
    let again = stack.webhook("stripe", &headers, &body).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["duplicate"], true);

    let erin = stack.token("cust_erin");
    let (conv, messages) = wait_for_bot_messages(&stack, &erin, 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["text"],
        "Looks like your payment didn't go through — need help?"
    );
    let c = claim(&stack, "stripe", &event_id).await.expect("claimed");
    assert_eq!(c["state"], "done");
    assert_eq!(c["outcome"], "queued");
    let job_key = event_job_key("stripe", &event_id);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(30))
        .await;
    assert_eq!(state, "done");
    // Still one message once everything has run.
    let (_, messages) = wait_for_bot_messages(&stack, &erin, 1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");

    // "yes" continues into the payment-help flow, in the same conversation.
    let reply = stack.say(&erin, Some(&conv), "yes please").await;
    assert!(texts(&reply)[0].contains("Reply 1, 2 or 3"), "{reply}");
    let retry = stack.say(&erin, Some(&conv), "1").await;
    assert!(
        texts(&retry)[0].contains("https://invoice.stripe.com/i/acct_test/test_1"),
        "{retry}"
    );
    let update = stack.say(&erin, Some(&conv), "2").await;
    assert!(texts(&update)[0].contains("/billing"), "{update}");
}

async fn futures_join(
    stack: &Stack,
    headers: &[(&'static str, String)],
    body: &[u8],
    n: usize,
) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = format!("{}/webhooks/stripe", stack.webhook_url);
        let http = stack.http.clone();
        let headers = headers.to_vec();
        let body = body.to_vec();
        set.spawn(async move {
            let mut req = http.post(url).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        });
    }
    let mut out = Vec::new();
    while let Some(s) = set.join_next().await {
        out.push(s.unwrap());
    }
    out
}

#[tokio::test]
async fn shopify_and_standard_webhooks_vendors_with_secrets_from_secrets_manager_and_ssm() {
    let stack = Stack::connect().await;
    let frank = stack.token("cust_frank");

    // Shopify (its secret is in Secrets Manager): a fulfillment, matched by its order's owner
    // (the email is not read: Shopify is not configured as confirming addresses). Shopify is
    // deduplicated on the body, so a field unique to the run keeps it new on a long-lived stack.
    let body = json!({
        "id": 4242, "admin_graphql_api_id": unique("gid://shopify/Fulfillment/"),
        "order_id": 450789469, "name": "#1007.1", "email": "frank@example.com",
        "status": "success", "shipment_status": "confirmed", "tracking_company": "UPS",
        "tracking_url": "https://track.example.com/ups/1Z1007"
    })
    .to_string();
    let mut headers = signed(
        Scheme::Shopify,
        "shopify",
        &unique("wh"),
        now(),
        body.as_bytes(),
    );
    headers.push(("x-shopify-topic", "fulfillments/create".into()));
    let r = stack.webhook("shopify", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let (conv, messages) = wait_for_bot_messages(&stack, &frank, 1).await;
    let text = messages[0]["text"].as_str().unwrap();
    assert!(
        text.contains("order #1007 has shipped with UPS")
            && text.contains("https://track.example.com/ups/1Z1007"),
        "{text}"
    );

    // A Standard Webhooks billing platform (its secret is in SSM): the same customer's open
    // conversation gets the message, found by the account the CRM links to him.
    let msg_id = unique("msg");
    let body = json!({
        "type": "payment.failed",
        "data": {
            "customer_id": "acct_frank", "customer_email": "frank@example.com",
            "amount": 6400, "currency": "usd"
        }
    })
    .to_string();
    let headers = signed(
        Scheme::StandardWebhooks,
        "billing",
        &msg_id,
        now(),
        body.as_bytes(),
    );
    let r = stack.webhook("billing", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let (same, messages) = wait_for_bot_messages(&stack, &frank, 2).await;
    assert_eq!(same, conv);
    assert!(messages[1]["text"]
        .as_str()
        .unwrap()
        .contains("payment didn't go through"));
}

#[tokio::test]
async fn unhandled_types_are_recorded_and_slack_checks_get_their_challenge() {
    let stack = Stack::connect().await;
    let event_id = unique("evt_other");
    let body =
        json!({ "id": event_id, "type": "customer.created", "data": { "object": {} } }).to_string();
    let headers = signed(Scheme::Stripe, "stripe", "", now(), body.as_bytes());
    let r = stack.webhook("stripe", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handled"], false);
    let c = claim(&stack, "stripe", &event_id).await.expect("recorded");
    assert_eq!(c["outcome"], "unhandled");
    assert_eq!(c["vendor_type"], "customer.created");

    let body = br#"{"token":"t","challenge":"c-123","type":"url_verification"}"#;
    let headers = signed(Scheme::Slack, "slack", "", now(), body);
    let r = stack.webhook("slack", &headers, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["challenge"], "c-123");
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_recorded() {
    let stack = Stack::connect().await;
    let t = now();
    let mut ids = Vec::new();
    let mut case = |prefix: &str| {
        let id = unique(prefix);
        ids.push(id.clone());
        id
    };

    let id = case("evt_missing");
    let body = stripe_payment_failed(&id, "cus_erin05");
    let r = stack.webhook("stripe", &[], &body).await;
    assert_eq!(r.status, 401, "missing headers: {}", r.body);
    assert_eq!(r.content_type, "application/problem+json");

    let id = case("evt_wrong_secret");
    let body = stripe_payment_failed(&id, "cus_erin05");
    let key = SigningKey::new(Scheme::Stripe, "whsec_not_the_secret").unwrap();
    let r = stack
        .webhook("stripe", &sign(Scheme::Stripe, &key, "", t, &body), &body)
        .await;
    assert_eq!(r.status, 401, "wrong secret: {}", r.body);

    let id = case("evt_byte");
    let body = stripe_payment_failed(&id, "cus_erin05");
    let headers = signed(Scheme::Stripe, "stripe", "", t, &body);
    let mut changed = body.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    let r = stack.webhook("stripe", &headers, &changed).await;
    assert_eq!(r.status, 401, "one byte changed: {}", r.body);
    let moved = vec![(
        "stripe-signature",
        headers[0]
            .1
            .replacen(&format!("t={t}"), &format!("t={}", t + 1), 1),
    )];
    let r = stack.webhook("stripe", &moved, &body).await;
    assert_eq!(r.status, 401, "timestamp changed: {}", r.body);

    // Well outside ±300 s: the function's clock reads a little later than this test's `t`, and
    // the exact boundary is covered by the unit tests, with a fixed clock.
    for (name, ts) in [("too old", t - 400), ("from the future", t + 400)] {
        let id = case("evt_replay");
        let body = stripe_payment_failed(&id, "cus_erin05");
        let r = stack
            .webhook(
                "stripe",
                &signed(Scheme::Stripe, "stripe", "", ts, &body),
                &body,
            )
            .await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("outside"),
            "{name}: {}",
            r.body
        );
    }

    // A valid GitHub signature over the same bytes, sent to the Stripe endpoint.
    let id = case("evt_scheme");
    let body = stripe_payment_failed(&id, "cus_erin05");
    let gh = SigningKey::new(Scheme::Github, &Stack::webhook_secret("stripe")).unwrap();
    let r = stack
        .webhook("stripe", &sign(Scheme::Github, &gh, "d", t, &body), &body)
        .await;
    assert_eq!(r.status, 401, "another scheme: {}", r.body);

    let r = stack
        .webhook("stripe", &signed(Scheme::Stripe, "stripe", "", t, b""), b"")
        .await;
    assert_eq!(r.status, 400, "empty body: {}", r.body);

    let big = vec![b'{'; 256 * 1024 + 1];
    let r = stack
        .webhook(
            "stripe",
            &signed(Scheme::Stripe, "stripe", "", t, &big),
            &big,
        )
        .await;
    assert_eq!(r.status, 413, "over the limit");

    let id = case("evt_vendor");
    let body = stripe_payment_failed(&id, "cus_erin05");
    let r = stack
        .webhook(
            "acme",
            &signed(Scheme::Stripe, "stripe", "", t, &body),
            &body,
        )
        .await;
    assert_eq!(r.status, 404, "unknown vendor: {}", r.body);

    let get = stack
        .http
        .get(format!("{}/webhooks/stripe", stack.webhook_url))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);

    // Invalid base64 from the function URL front door (sent raw, as the URL would).
    let out = stack
        .invoke(
            "webhook",
            &json!({
                "version": "2.0", "rawPath": "/webhooks/stripe", "rawQueryString": "",
                "headers": { "content-type": "application/json" },
                "requestContext": { "requestId": "bad-b64", "http": { "method": "POST", "path": "/webhooks/stripe" } },
                "isBase64Encoded": true, "body": "%%% not base64 %%%"
            }),
        )
        .await;
    assert_eq!(out["statusCode"], 400, "{out}");

    for vendor in ["stripe", "acme"] {
        for id in &ids {
            assert!(
                claim(&stack, vendor, id).await.is_none(),
                "{id} was refused but recorded"
            );
        }
    }
}

/// A Shopify fulfillment of `order` as Shopify would sign it, with the unsigned id and topic
/// headers chosen by the sender.
fn shopify_delivery(body: &str, webhook_id: &str, topic: &str) -> Vec<(&'static str, String)> {
    let mut headers = signed(
        Scheme::Shopify,
        "shopify",
        webhook_id,
        now(),
        body.as_bytes(),
    );
    headers.push(("x-shopify-topic", topic.into()));
    headers
}

fn shopify_fulfillment(order: &str, updated_at: time::OffsetDateTime) -> String {
    let at = updated_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({
        "id": 4243, "order_id": 450789470, "name": format!("#{order}.1"),
        "status": "success", "shipment_status": "confirmed", "tracking_company": "UPS",
        "created_at": at, "updated_at": at
    })
    .to_string()
}

#[tokio::test]
async fn a_captured_shopify_body_is_not_replayed_under_a_fresh_id_or_another_topic() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("cust_replay");
    let order = stack.create_order(&customer, 1500).await;
    let body = shopify_fulfillment(&order, time::OffsetDateTime::now_utc());

    let first = stack
        .webhook(
            "shopify",
            &shopify_delivery(&body, &unique("wh"), "fulfillments/create"),
            body.as_bytes(),
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let event_id = first.body["event_id"].as_str().unwrap().to_string();

    // Whoever holds the signed body sets the unsigned headers: a fresh webhook id, then a fresh
    // id and another topic. Both are the same event.
    for (name, topic) in [
        ("fresh id", "fulfillments/create"),
        ("relabelled", "orders/fulfilled"),
    ] {
        let r = stack
            .webhook(
                "shopify",
                &shopify_delivery(&body, &unique("wh"), topic),
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.body["duplicate"], true, "{name}: {}", r.body);
        assert_eq!(r.body["event_id"], event_id.as_str(), "{name}");
    }

    // The one job ran; nothing else was queued, so its message is the only one.
    let job_key = event_job_key("shopify", &event_id);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(60))
        .await;
    assert_eq!(state, "done");
    let token = stack.token(&customer);
    let (conv, _) = wait_for_bot_messages(&stack, &token, 1).await;
    let said = stack.bot_texts(&token, &conv).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains(&format!("order #{order} has shipped")),
        "{said:?}"
    );
    let list = stack.get(Some(&token), "/v1/conversations").await;
    assert_eq!(list.body["conversations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_signed_shopify_body_older_than_the_dedup_window_is_refused() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("cust_stale");
    let order = stack.create_order(&customer, 1500).await;
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(8);
    let body = shopify_fulfillment(&order, old);
    let r = stack
        .webhook(
            "shopify",
            &shopify_delivery(&body, &unique("wh"), "fulfillments/create"),
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(
        r.body["detail"].as_str().unwrap().contains("older than"),
        "{}",
        r.body
    );
    let id = switchboard::webhook::events::body_id(body.as_bytes());
    assert!(
        claim(&stack, "shopify", &id).await.is_none(),
        "refused but recorded"
    );
}

#[tokio::test]
async fn a_payment_failure_is_not_routed_by_an_unverified_email() {
    let stack = Stack::connect().await;
    // Someone created a Stripe customer with Gina's address (she never confirmed it with us)
    // and a card that fails, and points the invoice at their own page. Then the same with
    // Alice's, which she did confirm with us: that says nothing about who paid at Stripe, whose
    // customer id we have never linked, so neither reaches anyone.
    for victim in ["gina", "alice"] {
        let event_id = unique("evt_spoof");
        let body = json!({
            "id": event_id, "object": "event", "type": "invoice.payment_failed",
            "data": { "object": {
                "object": "invoice", "customer": unique("cus_mallory"),
                "customer_email": format!("{victim}@example.com"), "amount_due": 4999,
                "currency": "usd", "hosted_invoice_url": "https://pay.attacker.example/i/1"
            }}
        })
        .to_string();
        let headers = signed(Scheme::Stripe, "stripe", "", now(), body.as_bytes());
        let r = stack.webhook("stripe", &headers, body.as_bytes()).await;
        assert_eq!(r.status, 202, "{victim}: {}", r.body);
        let job_key = event_job_key("stripe", &event_id);
        let state = stack
            .wait_for_effect("default", &job_key, Duration::from_secs(60))
            .await;
        assert_eq!(
            state, "failed",
            "{victim}: no customer matched: recorded, not retried"
        );
    }
    let gina = stack.token("cust_gina");
    let list = stack.get(Some(&gina), "/v1/conversations").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(
        list.body["conversations"].as_array().unwrap().len(),
        0,
        "{}",
        list.body
    );
}
