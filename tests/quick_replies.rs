//! Buttons and links through the running chat function and DynamoDB: what a bot message offers
//! is stored with it and read back in the history; a pressed button answers; a stale one is
//! only text. And CORS for the configured site origins, as a browser sees it.

use serde_json::{json, Value};
use switchboard_it::Stack;

fn last_reply(reply: &Value) -> &Value {
    reply["replies"]
        .as_array()
        .and_then(|r| r.last())
        .unwrap_or_else(|| panic!("no replies: {reply}"))
}

fn values(message: &Value) -> Vec<String> {
    message["quick_replies"]
        .as_array()
        .map(|q| {
            q.iter()
                .map(|b| b["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn press(stack: &Stack, token: &str, conv: &str, button: &Value) -> Value {
    let r = stack
        .post(
            token,
            json!({ "conversation_id": conv, "text": button["label"], "quick_reply": button["value"] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test]
async fn buttons_are_stored_with_their_message_and_answer_when_pressed() {
    let stack = Stack::connect().await;
    let customer = stack.create_customer("cust_buttons").await;
    let on_time = stack
        .create_order_with(
            &customer,
            json!({ "total_cents": 1999, "placed_days_ago": 2, "promised_in_days": 3 }),
        )
        .await;
    let late = stack
        .create_order_with(
            &customer,
            json!({ "total_cents": 3450, "placed_days_ago": 11, "promised_in_days": -3, "carrier": "UPS" }),
        )
        .await;
    let token = stack.token(&customer);

    let which = stack.say(&token, None, "where's my order?").await;
    let conv = which["conversation_id"].as_str().unwrap().to_string();
    let asked = last_reply(&which);
    assert_eq!(values(asked), [on_time.clone(), late.clone()], "{which}");
    let button = asked["quick_replies"][1].clone();
    assert!(
        button["label"]
            .as_str()
            .unwrap()
            .contains(&format!("#{late}")),
        "{button}"
    );

    let status = press(&stack, &token, &conv, &button).await;
    assert_eq!(
        status["message"]["text"], button["label"],
        "the label is what was said"
    );
    let told = &status["replies"][0];
    let tracking = format!("https://track.example.com/ups/1Z{late}");
    assert!(
        told["text"].as_str().unwrap().contains(&tracking),
        "{status}"
    );
    assert_eq!(told["links"], json!([{ "url": tracking }]), "{told}");
    let offer = last_reply(&status);
    assert_eq!(values(offer), ["Yes", "No"], "{status}");

    // Pressed, with words of the client's own: the offered label is what is kept.
    let yes = press(
        &stack,
        &token,
        &conv,
        &json!({ "label": "no thanks", "value": "Yes" }),
    )
    .await;
    assert!(yes.to_string().contains("requested a refund"), "{yes}");
    assert_eq!(
        yes["message"]["text"], "Yes",
        "the button's own label is stored"
    );

    // A stale button (the order list's) is only its text: no order is looked up by its value.
    let stale = press(
        &stack,
        &token,
        &conv,
        &json!({ "label": "hmm", "value": on_time }),
    )
    .await;
    assert!(
        !stale.to_string().contains(&format!("#{on_time}")),
        "a stale value read as an answer: {stale}"
    );
    assert_eq!(stale["message"]["text"], "hmm");

    // The history, read back from the table, keeps every message's buttons and links.
    let page = stack
        .get(Some(&token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let messages = page.body["messages"].as_array().unwrap();
    let with_buttons: Vec<Vec<String>> = messages
        .iter()
        .map(values)
        .filter(|v| !v.is_empty())
        .collect();
    assert_eq!(with_buttons[0], [on_time, late.clone()]);
    assert_eq!(with_buttons[1], ["Yes", "No"]);
    assert!(
        messages
            .iter()
            .any(|m| m["links"] == json!([{ "url": tracking }])),
        "{}",
        page.body
    );
    // A value that is no button at all is refused before anything is stored.
    let bad = stack
        .post(
            &token,
            json!({ "conversation_id": conv, "text": "yes", "quick_reply": " " }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// An HTTP API event for the chat function, as API Gateway (payload 2.0) sends it.
fn http_event(method: &str, path: &str, headers: Value) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": { "requestId": switchboard_it::unique("cors"), "http": { "method": method, "path": path } },
        "isBase64Encoded": false
    })
}

fn header<'v>(response: &'v Value, name: &str) -> Option<&'v str> {
    response["headers"][name].as_str()
}

/// Invoked directly: `cargo lambda watch`'s HTTP front answers preflights itself with a CORS
/// layer that allows any origin, which is the emulator's, not the function's (in AWS the HTTP
/// API's CorsConfiguration answers them, with the same origins).
#[tokio::test]
async fn browsers_on_the_configured_origins_may_call_the_api_and_others_may_not() {
    let stack = Stack::connect().await;
    let origins = std::env::var("ALLOWED_ORIGINS")
        .expect("ALLOWED_ORIGINS: the local stack allows its web server's origins");
    let site = origins.split(',').next().unwrap().trim().to_string();
    let preflight = |origin: &str| {
        http_event(
            "OPTIONS",
            "/v1/messages",
            json!({ "origin": origin, "access-control-request-method": "POST",
                    "access-control-request-headers": "authorization, content-type" }),
        )
    };
    let ok = stack.invoke("chat", &preflight(&site)).await;
    assert_eq!(ok["statusCode"], 204, "{ok}");
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some(site.as_str())
    );
    assert!(header(&ok, "access-control-allow-headers")
        .unwrap()
        .contains("authorization"));
    assert_eq!(header(&ok, "access-control-allow-credentials"), None);

    let refused = stack
        .invoke("chat", &preflight("https://elsewhere.example"))
        .await;
    assert_eq!(refused["statusCode"], 403, "{refused}");
    assert_eq!(header(&refused, "access-control-allow-origin"), None);

    // A real request from the site's page: readable there (with Retry-After), varies by origin.
    let token = stack.token(&Stack::fresh_customer("cust_cors"));
    let get = |origin: &str| {
        http_event(
            "GET",
            "/v1/conversations",
            json!({ "origin": origin, "authorization": format!("Bearer {token}") }),
        )
    };
    let r = stack.invoke("chat", &get(&site)).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some(site.as_str())
    );
    assert_eq!(header(&r, "vary"), Some("origin"));
    assert!(header(&r, "access-control-expose-headers")
        .unwrap()
        .contains("retry-after"));
    let other = stack
        .invoke("chat", &get("https://elsewhere.example"))
        .await;
    assert_eq!(
        other["statusCode"], 200,
        "answered, but its browser keeps it from the page"
    );
    assert_eq!(header(&other, "access-control-allow-origin"), None);
}
