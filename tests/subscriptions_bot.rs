//! The second example bot (examples/bots/subscriptions) answering through the real chat
//! function: its flows read the demo `boxes` system through the connectors for the signed-in
//! customer, and the skip it confirms is a `connector.write` job that fulfillment sends once.
//!
//! The functions must run that bundle, so these tests are ignored in the usual run (whose
//! stack runs the shop bot). Against a stack started with it:
//!
//! ```sh
//! ./dev/up --bot examples/bots/subscriptions        # or dev/stack.py up --bot … --ready-file F
//! cargo test -p switchboard-it --test subscriptions_bot -- --ignored
//! ```

use std::time::Duration;

use switchboard::jobs::connector_write_key;
use switchboard_it::{texts, Stack};

const NEEDS: &str = "needs a stack started with --bot examples/bots/subscriptions";

/// The stack, once it is known to run the subscriptions bot.
async fn stack() -> Stack {
    let bot = std::env::var("SWITCHBOARD_BOT").unwrap_or_default();
    assert!(
        bot.trim_end_matches('/')
            .ends_with("examples/bots/subscriptions"),
        "{NEEDS} (the ready file's SWITCHBOARD_BOT is {bot:?})"
    );
    Stack::connect().await
}

#[tokio::test]
#[ignore = "needs a stack started with --bot examples/bots/subscriptions"]
async fn the_bot_reads_the_customers_subscription_and_skips_the_next_box_once() {
    let stack = stack().await;
    let (customer, sub) = stack.create_subscription("ACTIVE").await;
    let (_, _, before) = stack.boxes_seen("", &sub).await;
    let next_box = before["next_delivery"].as_str().unwrap().to_string();
    let token = stack.token(&customer);

    let r = stack.say(&token, None, "when is my next box?").await;
    let conv = r["conversation_id"].as_str().unwrap().to_string();
    let said = texts(&r);
    assert!(
        said[0].starts_with(
            "Your Veggie box for two subscription is active: the next box arrives on "
        ) && said[0].ends_with(", and it's $39.90."),
        "{said:?}"
    );

    let r = stack
        .say(&token, Some(&conv), "can i skip my next box?")
        .await;
    let said = texts(&r);
    assert!(
        said[0].starts_with("Skip your Veggie box for two box of ")
            && said[0].ends_with("You won't be charged $39.90 for it."),
        "{said:?}"
    );
    let r = stack.say(&token, Some(&conv), "yes").await;
    assert!(texts(&r)[0].starts_with("Done: no box on "), "{r}");

    // Fulfillment sends the write with the flow's key, exactly once.
    let job_key = connector_write_key(
        "default",
        "boxes.pause_box",
        &format!("pause:{sub}:{next_box}"),
    );
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(60))
        .await;
    assert_eq!(state, "done");
    let (calls, changes, after) = stack.boxes_seen(&job_key, &sub).await;
    assert_eq!((calls, changes), (1, 1));
    assert_eq!(after["skipped"], 1, "{after}");
    assert_ne!(after["next_delivery"], before["next_delivery"], "{after}");

    // The next read sees the change: the box a week later.
    let r = stack.say(&token, Some(&conv), "when is my next box?").await;
    let said = texts(&r);
    assert!(
        said[0].contains("is active: the next box arrives on "),
        "{said:?}"
    );
}

#[tokio::test]
#[ignore = "needs a stack started with --bot examples/bots/subscriptions"]
async fn a_paused_subscription_has_nothing_to_skip_and_no_subscription_is_said_plainly() {
    let stack = stack().await;
    let (customer, _) = stack.create_subscription("PAUSED").await;
    let token = stack.token(&customer);
    let r = stack.say(&token, None, "skip my next delivery").await;
    assert_eq!(
        texts(&r),
        ["Your Veggie box for two subscription is paused already, so there's no box to skip."]
    );

    let nobody = Stack::fresh_customer("cust_nobox");
    let r = stack
        .say(&stack.token(&nobody), None, "when is my next box?")
        .await;
    assert!(
        texts(&r)[0].starts_with("I can't find a subscription on your account."),
        "{r}"
    );
}
