//! Takes personal data out of text bound for the logs: emails, phone numbers, payment card
//! numbers and street addresses become `[email]`, `[phone]`, `[card]` and `[address]`.
//!
//! Log calls are meant not to carry such data in the first place; this is the net under them
//! for what slips through (a vendor's error message that quotes a request, a parse error that
//! quotes a value). [`Redacting`] wraps the writer of the JSON log layer (`telemetry`) and
//! rewrites only the JSON string values of each line, so the line stays valid JSON, keys and
//! numbers (`elapsed_us`, `status`, `seq`) are untouched, and a string without a digit or an
//! `@` (most of them) costs one scan.
//!
//! What is left alone on purpose: identifiers (ULIDs, request ids, customer ids, which are
//! pseudonymous), ISO timestamps, order numbers (`1001`, `#1002`, `A-10021`) and amounts. A
//! bare run of digits is an order number to `entities`, and stays one here unless it is a
//! Luhn-valid card number.

use std::borrow::Cow;
use std::io;
use std::sync::LazyLock;

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;

use crate::entities::{is_phone_length, EMAIL, PHONE};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

/// A run of digits with single spaces or dashes between them, at least 13 digits long: the
/// candidates for a card number, checked further by [`card_spans`].
static DIGIT_RUN: LazyLock<Regex> = LazyLock::new(|| re(r"\d(?:[ -]?\d){12,}"));

/// National numbers written in groups with spaces, which `entities::PHONE` leaves to order
/// numbers when they are bare: "415 555 0101", "07700 900123", "020 7946 0958".
static SPACED_PHONE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:\d{3} \d{3} \d{4}|0\d{2,4} \d{3,4} ?\d{3,4})\b"));

/// A house number, one to five words of street name and a street suffix, then an optional
/// unit: "221B Baker Street", "12 main st., apt 4", "725 5th Avenue".
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b\d{1,5}[a-z]?(?:-\d{1,5})?,?\s+(?:(?:\d{1,3}(?:st|nd|rd|th)|[a-z][a-z'.-]*)\s+){1,5}?(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|terr?|parkway|pkwy|highway|hwy|circle|cir|square|sq|crescent|cres|close|alley|row|walk|plaza)\b\.?(?:,?\s*(?:apt|apartment|suite|ste|unit|flat|#)\.?\s*[a-z0-9-]+)?",
    )
});

/// UK ("SW1A 1AA", "M1 1AE") and Canadian ("K1A 0B1") postcodes, in capitals as written on
/// an envelope. US ZIP codes are five digits, like order numbers, and are left alone.
static POSTCODE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d)\b"));

/// Compiles every pattern redaction reads, so that a turn's first log lines do not: part of
/// the warm-up. A turn's usual lines (ids with capitals and digits) need `POSTCODE`, an id
/// with 13 digits `DIGIT_RUN`; a warning or an error quoting a value can need any of them.
pub(crate) fn warm_up() {
    for pattern in [
        &EMAIL,
        &PHONE,
        &DIGIT_RUN,
        &SPACED_PHONE,
        &ADDRESS,
        &POSTCODE,
    ] {
        LazyLock::force(pattern);
    }
}

/// Returns `text` with emails, card numbers, phone numbers, street addresses and postcodes
/// replaced by `[email]`, `[card]`, `[phone]` and `[address]`. Borrowed when nothing changed.
pub fn redact(text: &str) -> Cow<'_, str> {
    // What each pattern needs before it can match, from one pass over the bytes: most log
    // strings (paths, ids, messages) skip every pattern or all but one.
    let (mut digits, mut at, mut space, mut upper) = (0, false, false, false);
    // Every shape `PHONE` knows has a `+`, a `(`, a `.` or a `-`: ids (ULIDs, request ids) have
    // none and skip it.
    let mut phone_marks = false;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'@' => at = true,
            b' ' => space = true,
            b'A'..=b'Z' => upper = true,
            b'+' | b'(' | b'.' | b'-' => phone_marks = true,
            _ => {}
        }
    }
    let mut out = Cow::Borrowed(text);
    // Emails first: "alice+4111111111111111@example.com" is one email, not a card in one.
    // The placeholders hold no digit and no `@`, so later passes do not see them.
    if at {
        out = replace_all(out, &EMAIL, "[email]", |_| true);
    }
    if digits >= 13 {
        out = replace_spans(out, "[card]", card_spans);
    }
    if digits >= 7 {
        if phone_marks {
            out = replace_all(out, &PHONE, "[phone]", is_phone_length);
        }
        if space {
            out = replace_all(out, &SPACED_PHONE, "[phone]", |_| true);
        }
    }
    if digits >= 1 && space {
        out = replace_all(out, &ADDRESS, "[address]", |_| true);
    }
    if digits >= 1 && upper {
        out = replace_all(out, &POSTCODE, "[address]", |_| true);
    }
    out
}

fn replace_all<'a>(
    text: impl Into<Cow<'a, str>>,
    re: &Regex,
    with: &str,
    keep: impl Fn(&str) -> bool,
) -> Cow<'a, str> {
    replace_spans(text.into(), with, |s| {
        re.find_iter(s)
            .filter(|m| keep(m.as_str()))
            .map(|m| m.range())
            .collect()
    })
}

fn replace_spans<'a>(
    text: Cow<'a, str>,
    with: &str,
    spans: impl Fn(&str) -> Vec<std::ops::Range<usize>>,
) -> Cow<'a, str> {
    let found = spans(&text);
    if found.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in found {
        out.push_str(&text[at..r.start]);
        out.push_str(with);
        at = r.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// The card numbers in `text`: 13 to 19 digits, optionally grouped by spaces or dashes, that
/// pass the Luhn check and start as issued cards do (2 to 6: Mastercard, Amex, Visa, Discover,
/// JCB, UnionPay...). The start rules out epoch milliseconds (1...) and zero-padded order
/// numbers; the Luhn check nine in ten other long numbers.
fn card_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    for run in DIGIT_RUN.find_iter(text) {
        // Digits inside a longer token are part of an identifier (a ULID, a UUID's groups,
        // "cus_4111..."); after `#` they are an order number.
        let before = text[..run.start()].chars().next_back();
        let joined = |c: Option<char>, next: Option<char>| match c {
            Some(c) if c.is_alphanumeric() || c == '_' || c == '#' => true,
            Some('-' | '.' | '/' | ':') => next.is_some_and(|n| n.is_alphanumeric()),
            _ => false,
        };
        let before2 = text[..run.start()].chars().rev().nth(1);
        let mut after = text[run.end()..].chars();
        let (after1, after2) = (after.next(), after.next());
        if joined(before, before2) || joined(after1, after2) {
            continue;
        }
        // A card may sit next to another number ("order 1002 4111 1111 1111 1111"): try the
        // runs of space-separated groups, longest first. Dashes bind their groups together,
        // so a dashed identifier is judged whole.
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = run.start();
        for (i, b) in bytes[run.range()].iter().enumerate() {
            if *b == b' ' {
                groups.push(start..run.start() + i);
                start = run.start() + i + 1;
            }
        }
        groups.push(start..run.end());
        let mut first = 0;
        'groups: while first < groups.len() {
            for last in (first..groups.len()).rev() {
                let span = groups[first].start..groups[last].end;
                if is_card_number(&text[span.clone()]) {
                    spans.push(span);
                    first = last + 1;
                    continue 'groups;
                }
            }
            first += 1;
        }
    }
    spans
}

fn is_card_number(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, d2) if d2 > 9 => d2 - 9,
            (_, d2) => d2,
        })
        .sum();
    sum % 10 == 0
}

/// Redacts one log line. A JSON object has each of its string values redacted and keeps its
/// shape; anything else (a plain-text formatter, a line cut short) is redacted as text.
pub fn redact_line(line: &str) -> Cow<'_, str> {
    if line.trim_start().starts_with('{') {
        redact_json_strings(line)
    } else {
        redact(line)
    }
}

fn redact_json_strings(line: &str) -> Cow<'_, str> {
    let bytes = line.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        if j >= bytes.len() {
            // Not JSON after all: the rest is redacted as text.
            let rest = redact(&line[start..]);
            if let Cow::Owned(rest) = rest {
                let o = out.get_or_insert_with(|| String::with_capacity(line.len()));
                o.push_str(&line[copied..start]);
                o.push_str(&rest);
                copied = line.len();
            }
            break;
        }
        let end = j + 1;
        i = end;
        let is_key = line[end..].trim_start().starts_with(':');
        let raw = &line[start + 1..j];
        if is_key || !raw.bytes().any(|b| b.is_ascii_digit() || b == b'@') {
            continue;
        }
        // Escapes are undone first ("\n415-555-0101" is a newline and a phone number), and
        // the result is escaped again as serde_json does.
        let Ok(value) = serde_json::from_str::<String>(&line[start..end]) else {
            continue;
        };
        if let Cow::Owned(redacted) = redact(&value) {
            let o = out.get_or_insert_with(|| String::with_capacity(line.len()));
            o.push_str(&line[copied..start]);
            o.push_str(&serde_json::Value::String(redacted).to_string());
            copied = end;
        }
    }
    match out {
        None => Cow::Borrowed(line),
        Some(mut o) => {
            o.push_str(&line[copied..]);
            Cow::Owned(o)
        }
    }
}

/// A `MakeWriter` whose writers redact what they are given before passing it on.
///
/// tracing-subscriber's fmt layer formats an event into one buffer and hands it over with a
/// single `write_all`, which [`RedactingWriter::write`] consumes whole: each call sees a
/// complete line, never half of an email.
#[derive(Debug, Clone)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter(self.0.make_writer_for(meta))
    }
}

pub struct RedactingWriter<W>(W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact_line(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        redact(text).into_owned()
    }

    #[test]
    fn emails() {
        assert_eq!(
            r("mail Alice.Martin+x@Example.co.uk now"),
            "mail [email] now"
        );
        assert_eq!(r("pii-01JF3Q4Z7Y8X9W0V1T2S3R4Q5P@test.example"), "[email]");
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(r("call +1 415 555 0101"), "call [phone]");
        assert_eq!(
            r("call (415) 555-0102 or 415.555.0103"),
            "call [phone] or [phone]"
        );
        assert_eq!(r("+44 20 7946 0958"), "[phone]");
        assert_eq!(r("ring 415 555 0104 today"), "ring [phone] today");
        assert_eq!(r("mobile 07700 900123"), "mobile [phone]");
        // Each of the marks the phone pattern is looked for by, alone.
        assert_eq!(r("at 415.555.0103 now"), "at [phone] now");
        assert_eq!(r("at (415) 555 0102 now"), "at [phone] now");
        assert_eq!(r("at +14155550101 now"), "at [phone] now");
        assert_eq!(r("at 415-555-0105 now"), "at [phone] now");
    }

    #[test]
    fn card_numbers() {
        assert_eq!(r("card 4111111111111111 expires"), "card [card] expires");
        assert_eq!(r("4111 1111 1111 1111"), "[card]");
        assert_eq!(r("5555-5555-5555-4444."), "[card].");
        assert_eq!(r("amex 3782 822463 10005"), "amex [card]");
        // Beside an order number, only the card goes.
        assert_eq!(r("order 1002 4111 1111 1111 1111"), "order 1002 [card]");
        // Not Luhn-valid, or not how cards start: left alone.
        assert_eq!(r("4111111111111112"), "4111111111111112");
        assert_eq!(r("1733112233445"), "1733112233445");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            r("ship to 221B Baker Street please"),
            "ship to [address] please"
        );
        assert_eq!(
            r("12 main st., apt 4B, Springfield"),
            "[address], Springfield"
        );
        assert_eq!(r("725 5th Avenue"), "[address]");
        assert_eq!(r("1600 Pennsylvania Ave NW"), "[address] NW");
        assert_eq!(
            r("4 Privet Drive, Little Whinging"),
            "[address], Little Whinging"
        );
        assert_eq!(r("London SW1A 1AA"), "London [address]");
        assert_eq!(r("Ottawa K1A 0B1"), "Ottawa [address]");
        // Pasted with no-break spaces, and next to letters outside ASCII.
        assert_eq!(r("ship to 12\u{a0}Main\u{a0}Street"), "ship to [address]");
        assert_eq!(r("à 12 Main Street, é"), "à [address], é");
        assert_eq!(r("appelez le 415 555 0101 é"), "appelez le [phone] é");
        // A house number in another script's digits is one too (why these patterns keep
        // Unicode classes: compiled ASCII-only they were cheaper and missed it).
        assert_eq!(r("ship to ५ Privet Road, flat 2"), "ship to [address]");
    }

    #[test]
    fn identifiers_timestamps_orders_and_amounts_stay() {
        for kept in [
            "01JF3Q4Z7Y8X9W0V1T2S3R4Q5P",
            "01J00000000000000000000000",
            "c0ffee00-1234-4aaa-8bbb-123456789012",
            "12345678-4111-1111-1111-111111111111",
            "cus_4111111111111111",
            "2026-12-02T03:52:35.123456Z",
            "2026-12-02T03:52:35+00:00",
            "order 1001 and #1002, A-10021, SB1002",
            "cancel #4111111111111111",
            "change purchase 00007612094",
            "paid $45.99 on 11/20/2026",
            "HTTP 404 (is the base URL right?)",
            "retry in 1733112233445 ms",
            "v1.2.3 on port 9001",
        ] {
            assert_eq!(r(kept), kept);
        }
    }

    #[test]
    fn json_lines_keep_their_shape_and_numbers() {
        let line = r#"{"level":"WARN","fields":{"message":"connector call failed during a turn","error":"orders rejected the request (422): GraphQL: no customer alice@example.com at 4 Privet Drive, card 4111 1111 1111 1111, call +1 415 555 0101\n","status":422,"elapsed_us":4111111111111111,"seq":1002,"request_id":"01JF3Q4Z7Y8X9W0V1T2S3R4Q5P"}}"#;
        let out = redact_line(line);
        let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(
            v["fields"]["error"],
            "orders rejected the request (422): GraphQL: no customer [email] at [address], card [card], call [phone]\n"
        );
        assert_eq!(v["fields"]["elapsed_us"], 4111111111111111u64);
        assert_eq!(v["fields"]["status"], 422);
        assert_eq!(v["fields"]["seq"], 1002);
        assert_eq!(v["fields"]["request_id"], "01JF3Q4Z7Y8X9W0V1T2S3R4Q5P");
        assert_eq!(v["level"], "WARN");
        // Escapes inside a value are read as JSON reads them.
        let escaped = r#"{"m":"a \"quoted\" \u0061lice@example.com\tand\n415-555-0101"}"#;
        let v: serde_json::Value = serde_json::from_str(&redact_line(escaped)).unwrap();
        assert_eq!(v["m"], "a \"quoted\" [email]\tand\n[phone]");
    }

    #[test]
    fn lines_without_personal_data_are_not_copied() {
        let line = r#"{"level":"INFO","fields":{"message":"chat request","request_id":"c0ffee00-1234-4aaa-8bbb-123456789012","path":"/v1/messages","status":200,"elapsed_us":1834}}"#;
        assert!(matches!(redact_line(line), Cow::Borrowed(_)));
    }

    #[test]
    fn text_and_broken_json_are_redacted_as_text() {
        assert_eq!(
            redact_line("WARN failed for bob@example.com"),
            "WARN failed for [email]"
        );
        assert_eq!(
            redact_line(r#"{"m":"ok","n":"bob@example.com"#),
            r#"{"m":"ok","n":"[email]"#
        );
    }

    #[test]
    fn the_writer_redacts_each_write() {
        use std::io::Write;
        let mut sink = Vec::new();
        let mut w = RedactingWriter(&mut sink);
        w.write_all(b"{\"m\":\"bob@example.com\"}\n").unwrap();
        assert_eq!(String::from_utf8(sink).unwrap(), "{\"m\":\"[email]\"}\n");
    }

    /// Cost per line: `cargo test -p switchboard --release --lib redact::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let lines = [
            (
                "understood",
                r#"{"level":"INFO","fields":{"message":"understood","intent":"order_status","confidence":0.91,"unsure":false}}"#,
            ),
            (
                "chat request",
                r#"{"level":"INFO","fields":{"message":"chat request","request_id":"c0ffee00-1234-4aaa-8bbb-123456789012","method":"POST","path":"/v1/messages","status":200,"elapsed_us":1834}}"#,
            ),
            (
                "with PII",
                r#"{"level":"WARN","fields":{"message":"connector call failed during a turn","error":"orders rejected the request (422): GraphQL: no customer alice@example.com at 4 Privet Drive, card 4111 1111 1111 1111"}}"#,
            ),
        ];
        for (name, line) in lines {
            let n = 50_000;
            let started = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(redact_line(std::hint::black_box(line)));
            }
            println!(
                "{name} ({} bytes): {:?} per line",
                line.len(),
                started.elapsed() / n
            );
        }
    }
}
