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
fn a_broken_connector_file_fails() {
    let file = scratch("connectors.toml", "[systems.orders]\nbase_url = 3\n");
    let out = switchboard(&["check", "--connectors", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connectors.toml"), "{stderr}");
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
    std::fs::create_dir_all(&tests).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::copy(
        format!("{root}/config/bot/tests/fixtures.yaml"),
        tests.join("fixtures.yaml"),
    )
    .unwrap();
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
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

/// A small bundle to train: training the shop bot's 34 intents takes most of a minute in a
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
