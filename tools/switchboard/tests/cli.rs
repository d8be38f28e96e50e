//! The `switchboard` command run as an operator runs it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        // The workspace root: the bundled files' paths are relative to it.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the binary runs")
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_bundled_files_pass() {
    let out = switchboard(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok: 5 vendors"), "{stdout}");
    assert!(stdout.contains("ok: bot shop (config/bot): "), "{stdout}");
    assert!(stdout.contains(" systems, "), "{stdout}");
    let out = switchboard(&[
        "check",
        "--connectors",
        "config/examples/shopify.toml",
        "config/examples/stripe.toml",
        "--webhooks",
        "config/webhooks.toml",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_webhook_problem_is_named_by_file_line_and_field() {
    let file = scratch(
        "webhooks.toml",
        "[vendors.acme]\nscheme = \"md5\"\nsecrets = []\n\n[vendors.beta]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\ndedup_days = 0\n",
    );
    let path = file.display().to_string();
    let out = switchboard(&["check", "--webhooks", &path]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        format!("error: {path}:2: vendors.acme.scheme: unknown variant `md5`"),
        format!("error: {path}:3: vendors.acme.secrets: at least one"),
        format!("error: {path}:8: vendors.beta.dedup_days: must be between 1 and 365"),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
    }
    assert!(stderr.contains("3 problems"), "{stderr}");
}

#[test]
fn a_broken_flow_fails_the_bundle_check_naming_file_line_and_key() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/bot");
    let dir = std::env::temp_dir().join(format!("switchboard-check-bot-{}", std::process::id()));
    copy_dir(std::path::Path::new(root), &dir);
    let flow = dir.join("flows/track_refund.toml");
    let text = std::fs::read_to_string(&flow).unwrap();
    std::fs::write(
        &flow,
        text.replacen(
            "[[steps]]",
            "[[steps]]
say = \"no.such.key\"\n[[steps]]",
            1,
        ),
    )
    .unwrap();
    let out = switchboard(&["check", "--bot", &dir.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("flows/track_refund.toml:")
            && stderr.contains("no.such.key: no such message"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The second example bot's flows call its own system: `check --bot` reads the bundle's
/// connectors.toml; named connector files replace it, as a function's connectors would.
#[test]
fn a_bundles_flows_are_checked_against_the_operations_its_connectors_declare() {
    let bot = "examples/bots/subscriptions";
    let out = switchboard(&["check", "--bot", bot]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = [
        "check",
        "--bot",
        bot,
        "--connectors",
        "config/connectors.toml",
        "examples/bots/subscriptions/connectors.toml",
    ];
    let out = switchboard(&both);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = switchboard(&both[..5]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {bot}/flows/pause_box.toml:9: boxes.get_subscription: no such operation"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("\n5 problems"), "{stderr}");
}

#[test]
fn a_broken_connector_file_fails() {
    let file = scratch("connectors.toml", "[systems.orders]\nbase_url = 3\n");
    let out = switchboard(&["check", "--connectors", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connectors.toml"), "{stderr}");
}

/// A company's order id format: shown when it is good, named by file, line and key when not.
#[test]
fn an_order_id_format_is_checked_with_the_file() {
    let orders = "[systems.orders]\nbase_url = \"https://orders.example.com\"\n";
    let good = scratch(
        "ids-good.toml",
        &format!("{orders}order_ids = {{ prefix = \"SO-\", digits = 5 }}\n"),
    );
    let out = switchboard(&["check", "--connectors", &good.display().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("order ids: \"SO-\" + 5 digits"), "{stdout}");

    let bad = scratch(
        "ids-bad.toml",
        &format!("{orders}\n[systems.orders.order_ids]\nprefix = \"SALES-\"\ndigits = 40\n"),
    );
    let file = bad.display().to_string();
    let out = switchboard(&["check", "--connectors", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{file}:5: systems.orders.order_ids.prefix: \"SALES-\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:6: systems.orders.order_ids.digits: 40: between"
        )),
        "both problems at once: {stderr}"
    );
}

#[test]
fn bad_usage_is_refused() {
    let out = switchboard(&["check", "--colour"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_default_bots_conversation_tests_pass() {
    let out = switchboard(&["test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");
}

#[test]
fn a_failing_conversation_test_fails_the_command_and_names_the_turn() {
    let bundle = std::env::temp_dir().join(format!("switchboard-test-{}", std::process::id()));
    let tests = bundle.join("tests");
    // The tests talk to the bundle they are in: the shop bot, with one test of its own.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    copy_dir(&std::path::Path::new(root).join("config/bot"), &bundle);
    for e in std::fs::read_dir(&tests).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().is_some_and(|n| n != "fixtures.yaml") {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::write(
        tests.join("t.yaml"),
        "tests:\n  - name: greeting\n    turns:\n      - say: hello\n        reply: \"^Goodbye\"\n",
    )
    .unwrap();
    let out = switchboard(&["test", "--bot", &bundle.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("t.yaml:2: \"greeting\", turn 1 (\"hello\")"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 passed, 1 failed"));
}

fn chat(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("chat")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let written = child.stdin.take().unwrap().write_all(input.as_bytes());
    // A chat that refuses to start may exit before reading a line: its output says why.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

#[test]
fn chat_answers_each_line_in_one_conversation_from_the_fixtures() {
    let out = chat(
        &["--customer", "alice"],
        "where is my order\nthe second one\n\nyes\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Vec<&str> = stdout.lines().filter(|l| l.starts_with("bot> ")).collect();
    assert_eq!(
        replies.len(),
        3,
        "one reply per message, none for the blank line:\n{stdout}"
    );
    assert!(replies[0].contains("You have 3 recent orders"), "{stdout}");
    assert!(
        replies[1].contains("Order #1002"),
        "the list is remembered:\n{stdout}"
    );
    assert!(
        replies[2].contains("requested a refund of $45.99"),
        "{stdout}"
    );
    assert!(stdout.contains("[affirm "), "{stdout}");
}

#[test]
fn chat_refuses_what_it_cannot_start_with() {
    let out = chat(&["--fixtures", "/nonexistent/fixtures.yaml"], "hi\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fixtures.yaml: cannot read")
    );
    let out = chat(&["--connectors", "config/connectors.toml"], "hi\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--customer is needed"));
    let long = "a".repeat(5000);
    let out = chat(&[], &format!("{long}\nhello\n"));
    assert!(
        out.status.success(),
        "a refused message does not end the chat"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("bot> Hi!"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: "));
}

#[test]
fn import_rasa_writes_intents_examples_and_messages() {
    let out = std::env::temp_dir().join(format!("switchboard-rasa-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rasa");
    let run = switchboard(&[
        "import",
        "rasa",
        &format!("{here}/nlu.yml"),
        &format!("{here}/domain.yml"),
        "--out",
        &out.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("ok: 3 intents (2 with an answer), 7 examples, 3 messages"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hand off to a person until you write their answer or flow: order_lookup"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: utter_bye: the Rasa slot {name} was taken out"),
        "{stdout}"
    );
    let read = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
    assert_eq!(
        read("intents/check_balance.toml"),
        "description = \"check balance\"\nanswer = \"answer.check_balance\"\n"
    );
    // No response: a person, never a dead end.
    assert_eq!(
        read("intents/order_lookup.toml"),
        "description = \"order lookup\"\nanswer = \"answer.order_lookup\"\nhandoff = true\n"
    );
    // Rasa's `bye` is our goodbye move, answered with its response.
    assert_eq!(
        read("intents/goodbye.toml"),
        "description = \"goodbye\"\nanswer = \"answer.bye\"\n"
    );
    let examples = read("examples/en/order_lookup.txt");
    assert!(
        examples.contains("\nwhat happened to order <order>\n"),
        "{examples}"
    );
    assert!(
        examples.contains("\nis the <product> on its way"),
        "{examples}"
    );
    assert!(read("examples/en/check_balance.txt").contains("what's my balance on card 5555"));
    let messages = read("messages/en.toml");
    assert!(
        messages.contains("\"answer.bye\" = \"Goodbye!\""),
        "{messages}"
    );
    assert!(messages.contains("# also: \"See you soon.\""), "{messages}");
    assert!(messages.contains("\"answer.ask_email\" = "), "{messages}");
    assert!(
        !out.join("intents/gift_card.toml").exists(),
        "synonyms are not intents"
    );
    // What comes out is a bundle: it trains, and it loads with every check passing.
    let trained = switchboard(&["train", "--bot", &out.display().to_string()]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    if let Err(e) = switchboard::bot::Bot::load(&out) {
        panic!("the imported bundle does not load:\n{e}");
    }
    // Never over an existing bundle.
    let again = switchboard(&[
        "import",
        "rasa",
        &format!("{here}/nlu.yml"),
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let bad = switchboard(&["import", "rasa", "/nonexistent/nlu.yml", "--out", "/tmp/x"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/nlu.yml: cannot read"));
}

/// A small bundle to train: training the shop bot's 35 intents takes most of a minute in a
/// debug build, and the shipped model is checked by `./dev/test` already.
fn small_bundle(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("intents")).unwrap();
    std::fs::create_dir_all(dir.join("examples/en")).unwrap();
    std::fs::write(dir.join("bot.toml"), "name = \"t\"\nlanguages = [\"en\"]\n").unwrap();
    for (intent, lines) in [
        ("greet", "{hi|hello|hey} {there|}\n"),
        ("cancel_order", "{cancel|stop} my {order|purchase}\n"),
    ] {
        std::fs::write(dir.join(format!("intents/{intent}.toml")), "").unwrap();
        std::fs::write(dir.join(format!("examples/en/{intent}.txt")), lines).unwrap();
    }
    dir
}

#[test]
fn train_writes_the_model_its_examples_give_and_check_proves_it() {
    let dir = small_bundle("train");
    let bot = dir.display().to_string();
    let out = switchboard(&["train", "--bot", &bot, "--check"]);
    assert_eq!(out.status.code(), Some(1), "no model yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let out = switchboard(&["train", "--bot", &bot]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = std::fs::read(dir.join("model.bin")).unwrap();
    // Reproducible: training again gives the same bytes.
    let out = switchboard(&["train", "--bot", &bot, "--check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One more example: the model is stale until trained again.
    let greet = dir.join("examples/en/greet.txt");
    let mut text = std::fs::read_to_string(&greet).unwrap();
    text.push_str("{ahoy|howdy} {folks|friends}\n");
    std::fs::write(&greet, text).unwrap();
    let out = switchboard(&["train", "--bot", &bot, "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not what the examples train to"));
    assert_eq!(
        std::fs::read(dir.join("model.bin")).unwrap(),
        first,
        "--check writes nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn train_names_what_is_wrong_with_a_bundle() {
    let dir = small_bundle("train-bad");
    std::fs::write(
        dir.join("examples/en/orphan.txt"),
        "an example without an intent\n",
    )
    .unwrap();
    let out = switchboard(&["train", "--bot", &dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("orphan"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The issue's proof that the bot is data: a new intent (its file, examples, flow, messages
/// and conversation tests) added to a copy of the shop bot, trained, checked and talked to
/// through the real chat turn, with no Rust change.
#[test]
fn a_new_intent_with_its_own_flow_is_trained_checked_and_answered() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/bot");
    let dir = std::env::temp_dir().join(format!("switchboard-new-intent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(std::path::Path::new(root), &dir);
    let write = |rel: &str, text: &str| std::fs::write(dir.join(rel), text).unwrap();
    // An English shop's bot: the other languages would each need the intent's examples and
    // the flow's sentences too.
    for lang in ["es", "fr", "de"] {
        std::fs::remove_dir_all(dir.join("examples").join(lang)).unwrap();
        std::fs::remove_file(dir.join(format!("messages/{lang}.toml"))).unwrap();
        std::fs::remove_file(dir.join(format!("model.{lang}.bin"))).unwrap();
    }
    let bot = std::fs::read_to_string(dir.join("bot.toml")).unwrap();
    write(
        "bot.toml",
        &bot.replace(
            "languages = [\"en\", \"es\", \"fr\", \"de\"]",
            "languages = [\"en\"]",
        ),
    );
    write(
        "intents/gift_wrap.toml",
        "description = \"gift wrap an order\"\nflow = \"gift_wrap\"\n",
    );
    write(
        "examples/en/gift_wrap.txt",
        "# gift_wrap: wrapping an order as a gift\n\
         {can you|could you|please|i want to|i'd like to} gift wrap {my order|order <order>|it|the order|my purchase}{| please|?}\n\
         {add|i need|i want} gift {wrap|wrapping} {to|for|on} {my order|order <order>|the order}{| please}\n\
         {is|can} {my order|order <order>} {be |}{gift wrapped|wrapped as a gift}{|?}\n",
    );
    write(
        "flows/gift_wrap.toml",
        r#"description = "gift wrap an order that has not left the warehouse"
slots = ["order"]

[[steps]]
ask = "order"

[[steps]]
call = "orders.get_status"
with = { order_id = "{order}" }
into = "o"
on_missing = "missing"

[[steps]]
branch = [{ if = "o.status == 'processing'", goto = "wrap" }]

[[steps]]
say = "gift_wrap.too_late"
next = "end"

[[steps]]
id = "wrap"
say = "gift_wrap.done"
next = "end"

[[steps]]
id = "missing"
say = "order.not_found"
"#,
    );
    let messages = std::fs::read_to_string(dir.join("messages/en.toml")).unwrap();
    write(
        "messages/en.toml",
        &format!(
            "{messages}\n[gift_wrap]\ndone = \"Done — order {{summary}} will be gift wrapped.\"\n\
             too_late = \"Sorry, order #{{order}} has already left our warehouse, so it can't be gift wrapped.\"\n"
        ),
    );
    // Its own conversation tests, alone: the shop bot's are proven elsewhere.
    for e in std::fs::read_dir(dir.join("tests")).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().is_some_and(|n| n != "fixtures.yaml") {
            std::fs::remove_file(path).unwrap();
        }
    }
    write(
        "tests/gift_wrap.yaml",
        r#"tests:
  - name: an order not shipped yet is wrapped
    customer: bob
    turns:
      - say: can you gift wrap order 2001?
        intent: gift_wrap
        reply: "^Done — order #2001 \\(walnut bookshelf\\) will be gift wrapped\\.$"
        state: idle
  - name: the flow asks which order, then answers
    customer: alice
    turns:
      - say: i'd like to gift wrap my order
        intent: gift_wrap
        reply: "order"
        state: gift_wrap.order
      - say: "1001"
        reply: "^Sorry, order #1001 has already left our warehouse"
        state: idle
"#,
    );
    let dir_arg = dir.display().to_string();
    // The old model does not know the intent: the bundle refuses to load.
    let stale = switchboard(&["check", "--bot", &dir_arg]);
    assert!(!stale.status.success());
    let said = String::from_utf8_lossy(&stale.stderr);
    assert!(
        said.contains(&format!(
            "model.bin: stale: its intents are not the intents with examples (differ: gift_wrap); train it again (switchboard train --bot {dir_arg})"
        )) && said.ends_with("\n1 problem\n"),
        "{said}"
    );
    for args in [
        &["train", "--bot", &dir_arg][..],
        &["check", "--bot", &dir_arg],
        &["test", "--bot", &dir_arg],
    ] {
        let out = switchboard(args);
        assert!(
            out.status.success(),
            "{args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
