//! Linking a messaging channel's user (a phone number, a Telegram chat) to a customer of the
//! company's CRM by a one-time code emailed to the address the CRM has for them: the code, what
//! is kept of it while it waits, the check of what the customer types back, and reading an
//! email address or a code out of a chat message. Pure logic: the caller looks the address up,
//! sends the email (`verify.email.*`), stores the [`PendingCode`] with the conversation and
//! says how it went (`verify.*`).
//!
//! Only a hash of the code is kept, bound to the conversation it was sent for: a code read in
//! another conversation (another phone asking for the same address) is worth nothing there.
//! The hash is no secret against someone who can read the store — six digits are a million
//! guesses — which is why a code lives ten minutes and allows five tries.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// How long a code is good for; the email (`verify.email.text`) says so in words.
pub const CODE_LIFETIME: Duration = Duration::minutes(10);
/// Tries before a code is spent, the right one included.
pub const ATTEMPTS: u8 = 5;

/// Longest message read for an address: a reply giving one is short, and a long text cut
/// short could end inside an address and name another (`bob@example.co` of `….com`).
const MAX_EMAIL_TEXT: usize = 2048;
/// Longest message read for a code.
const MAX_CODE_TEXT: usize = 512;
/// RFC 5321's limits: the whole address, and the part before `@`.
const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;
/// Versions the hash, so a change of its input can never match an old one by accident.
const HASH_DOMAIN: &str = "switchboard.channels.identity.code.v1";

/// A code sent and not yet used: for whom, its hash, until when, and the tries left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// The CRM customer the conversation is linked to once the code comes back.
    pub customer_id: String,
    /// Hex SHA-256 of the conversation id and the code (`hash`).
    pub code_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub attempts_left: u8,
}

/// How a typed code compares with the pending one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code in time: link the conversation to `customer_id`, forget the code.
    Match,
    /// Not the code; `left` tries remain (at least one): keep the code with `attempts_left =
    /// left` (`verify.wrong_code`).
    Wrong { left: u8 },
    /// Past its time: forget it (`verify.expired`), whatever was typed.
    Expired,
    /// No tries left, this one was the last wrong one: forget it (`verify.expired`).
    Exhausted,
}

/// A new code for `conversation_id`, to link it to `customer_id`: the code to email, and what
/// to keep. Uniform over the million codes, from the operating system's CSPRNG.
///
/// # Panics
///
/// When the operating system cannot give random bytes: no code is better than a guessable
/// one, and a system in that state cannot make conversation ids either (`ulid`).
pub fn issue(
    conversation_id: &str,
    customer_id: &str,
    now: OffsetDateTime,
) -> (String, PendingCode) {
    let code = format!("{:0width$}", random_below_million(), width = CODE_DIGITS);
    let pending = PendingCode {
        customer_id: customer_id.to_string(),
        code_hash: hash(conversation_id, &code),
        expires_at: now + CODE_LIFETIME,
        attempts_left: ATTEMPTS,
    };
    (code, pending)
}

/// What the customer typed (`typed`: their message, read with [`read_code`]) against the code
/// pending for `conversation_id`. Every call is a try; the caller keeps the count.
pub fn check(
    p: &PendingCode,
    conversation_id: &str,
    typed: &str,
    now: OffsetDateTime,
) -> CodeCheck {
    if p.attempts_left == 0 {
        return CodeCheck::Exhausted;
    }
    if now >= p.expires_at {
        return CodeCheck::Expired;
    }
    let matches = read_code(typed).is_some_and(|code| {
        let typed = hash(conversation_id, &code);
        bool::from(typed.as_bytes().ct_eq(p.code_hash.as_bytes()))
    });
    match (matches, p.attempts_left - 1) {
        (true, _) => CodeCheck::Match,
        (false, 0) => CodeCheck::Exhausted,
        (false, left) => CodeCheck::Wrong { left },
    }
}

/// The one email address a message gives ("it's Alice.Martin@Example.com"), lowercased.
/// `None` for none, for two different ones (which one would be a guess), for an address that
/// is not plausibly one, and for a long text.
pub fn read_email(text: &str) -> Option<String> {
    if text.len() > MAX_EMAIL_TEXT {
        return None;
    }
    let mut found: Option<String> = None;
    for word in text.split(char::is_whitespace) {
        let word = word
            .trim_start_matches(|c: char| OPENING.contains(c))
            .trim_end_matches(|c: char| CLOSING.contains(c));
        let word = strip_prefix_ignore_case(word, "mailto:").unwrap_or(word);
        if !word.contains('@') || !is_plausible_address(word) {
            continue;
        }
        let address = word.to_ascii_lowercase();
        match &found {
            Some(first) if *first != address => return None,
            _ => found = Some(address),
        }
    }
    found
}

/// The one code a message gives: exactly one run of six digits standing on its own ("123456",
/// "it's 123 456.", "code: 12 34 56"), spaces allowed between groups of digits. `None` for
/// none, two, a longer number (a phone number, an order number), digits inside a word
/// ("SO-123456", "A123456"), and a long text.
pub fn read_code(text: &str) -> Option<String> {
    if text.len() > MAX_CODE_TEXT {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut found = None;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // A run: digits, and single spaces with a digit on each side.
        let start = i;
        let mut digits = String::new();
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                digits.push(chars[i]);
                i += 1;
            } else if is_group_space(chars[i]) && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                i += 1;
            } else {
                break;
            }
        }
        let before = start.checked_sub(1).map(|j| chars[j]);
        let after = (chars.get(i).copied(), chars.get(i + 1).copied());
        if digits.len() == CODE_DIGITS && stands_alone(before, after) {
            if found.is_some() {
                return None;
            }
            found = Some(digits);
        }
    }
    found
}

/// What may wrap an address in a sentence: quotes and brackets before it, and after it those
/// and the sentence's punctuation. A dot before it is the address's own mistake, not trimmed.
const OPENING: &str = "<([{\"'`“‘«‹";
const CLOSING: &str = ">)]}\"'`”’»›,;:!?.";

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// ASCII only, as the bot reads addresses elsewhere (`entities::EMAIL`): a local part of
/// letters, digits and `._%+-'` with no empty dot-separated piece, and a domain of at least two
/// labels (letters, digits, inner hyphens) ending in a TLD of two or more letters.
fn is_plausible_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    if s.len() > MAX_ADDRESS || local.is_empty() || local.len() > MAX_LOCAL {
        return false;
    }
    let local_ok = local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._%+-'".contains(&b))
        && !local.split('.').any(str::is_empty);
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()));
    local_ok && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

/// A space between groups of a code: typed, or put there by a phone's number formatting.
fn is_group_space(c: char) -> bool {
    matches!(c, ' ' | '\u{00A0}' | '\u{202F}')
}

/// Six digits are a code only on their own: not part of a word or an identifier ("SO-123456",
/// "#123456", "+123456"), nor the start of a decimal number ("123456.78").
fn stands_alone(before: Option<char>, (after, then): (Option<char>, Option<char>)) -> bool {
    let joins = |c: char| c.is_alphanumeric() || "-_#/@".contains(c);
    let before_ok = before.is_none_or(|c| !joins(c) && !"+.,".contains(c));
    let after_ok = match after {
        None => true,
        Some('.' | ',') => !then.is_some_and(|c| c.is_ascii_digit()),
        Some(c) => !joins(c),
    };
    before_ok && after_ok
}

/// Hex SHA-256 over length-prefixed parts: no conversation id and code can run into another
/// pair ("ab" + "c" and "a" + "bc").
fn hash(conversation_id: &str, code: &str) -> String {
    let mut h = Sha256::new();
    for part in [HASH_DOMAIN, conversation_id, code] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Uniform in 0..1_000_000: a random u32 is drawn again when it falls in the last, partial
/// million (taking it modulo would favour the low codes).
fn random_below_million() -> u32 {
    const RANGE: u32 = 1_000_000;
    const LIMIT: u32 = u32::MAX - u32::MAX % RANGE;
    loop {
        let x = getrandom::u32().expect("the operating system's random number generator failed");
        if x < LIMIT {
            return x % RANGE;
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);
    const CONV: &str = "01JD0000000000000000000000";

    #[test]
    fn a_code_is_six_digits_kept_only_as_a_hash_for_ten_minutes_and_five_tries() {
        let (code, p) = issue(CONV, "cust_42", NOW);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        assert_eq!(p.customer_id, "cust_42");
        assert_eq!(p.expires_at, datetime!(2026-11-24 12:10 UTC));
        assert_eq!(p.attempts_left, 5);
        assert_eq!(p.code_hash.len(), 64);
        assert!(!p.code_hash.contains(&code));
        assert_eq!(p.code_hash, hash(CONV, &code));
    }

    #[test]
    fn codes_come_from_a_generator_not_a_pattern() {
        let codes: std::collections::BTreeSet<String> =
            (0..50).map(|_| issue(CONV, "c", NOW).0).collect();
        // Fifty draws from a million collide with odds of about 1 in 800; two repeats or more
        // would take a broken generator.
        assert!(codes.len() >= 48, "{codes:?}");
    }

    #[test]
    fn the_right_code_matches_in_its_own_conversation_only() {
        let (code, p) = issue(CONV, "c", NOW);
        assert_eq!(check(&p, CONV, &code, NOW), CodeCheck::Match);
        let spaced = format!("it's {} {}", &code[..3], &code[3..]);
        assert_eq!(check(&p, CONV, &spaced, NOW), CodeCheck::Match);
        assert_eq!(
            check(&p, "01JD0000000000000000000001", &code, NOW),
            CodeCheck::Wrong { left: 4 }
        );
    }

    #[test]
    fn wrong_codes_count_down_and_the_last_one_spends_the_code() {
        let (code, mut p) = issue(CONV, "c", NOW);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for left in (1..ATTEMPTS).rev() {
            assert_eq!(check(&p, CONV, wrong, NOW), CodeCheck::Wrong { left });
            p.attempts_left = left;
        }
        assert_eq!(check(&p, CONV, wrong, NOW), CodeCheck::Exhausted);
        // Spent: even the right code no longer opens it.
        p.attempts_left = 0;
        assert_eq!(check(&p, CONV, &code, NOW), CodeCheck::Exhausted);
        // Something that is not a code at all is a try too.
        let (_, p) = issue(CONV, "c", NOW);
        assert_eq!(check(&p, CONV, "hello?", NOW), CodeCheck::Wrong { left: 4 });
    }

    #[test]
    fn a_code_expires_after_ten_minutes_even_when_right() {
        let (code, p) = issue(CONV, "c", NOW);
        let nearly = NOW + Duration::minutes(10) - Duration::seconds(1);
        assert_eq!(check(&p, CONV, &code, nearly), CodeCheck::Match);
        let late = NOW + Duration::minutes(10);
        assert_eq!(check(&p, CONV, &code, late), CodeCheck::Expired);
    }

    #[test]
    fn the_hash_separates_its_parts() {
        assert_ne!(hash("ab", "c"), hash("a", "bc"));
        assert_eq!(hash("a", "123456"), hash("a", "123456"));
    }

    #[test]
    fn pending_codes_are_stored_as_rfc3339() {
        let (_, p) = issue(CONV, "c", NOW);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["expires_at"], "2026-11-24T12:10:00Z");
        assert_eq!(json["attempts_left"], 5);
        let back: PendingCode = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn one_plausible_address_is_read_lowercased() {
        let cases: &[(&str, Option<&str>)] = &[
            ("alice@example.com", Some("alice@example.com")),
            (
                "It's Alice.Martin@Example.COM.",
                Some("alice.martin@example.com"),
            ),
            (
                "<bob+shop@mail.example.co.uk>",
                Some("bob+shop@mail.example.co.uk"),
            ),
            ("mailto:o'brien@example.ie", Some("o'brien@example.ie")),
            ("use «carla@example.fr», thanks!", Some("carla@example.fr")),
            // The same one twice is still one.
            ("a@example.com, I mean A@example.com", Some("a@example.com")),
            // Two different ones: which is a guess.
            ("a@example.com or b@example.com", None),
            ("no address here", None),
            ("@example.com", None),
            ("alice@", None),
            ("alice@localhost", None),
            ("alice@example.c", None),
            ("alice@example.123", None),
            ("alice@-example.com", None),
            ("alice@example..com", None),
            (".alice@example.com", None),
            ("al..ice@example.com", None),
            ("alice@@example.com", None),
            // Not read as "mile@example.com": an address is ASCII here.
            ("émile@example.com", None),
        ];
        for (text, want) in cases {
            assert_eq!(read_email(text).as_deref(), *want, "{text}");
        }
    }

    #[test]
    fn addresses_are_bounded() {
        let local = "a".repeat(65);
        assert_eq!(read_email(&format!("{local}@example.com")), None);
        let label = "d".repeat(64);
        assert_eq!(read_email(&format!("a@{label}.com")), None);
        let long = format!("a@{}.com", vec!["d".repeat(60); 5].join("."));
        assert!(long.len() > 254);
        assert_eq!(read_email(&long), None);
        // A long message is not an answer giving an address, whatever it holds.
        let text = format!("{} alice@example.com", "word ".repeat(500));
        assert_eq!(read_email(&text), None);
    }

    #[test]
    fn one_standalone_six_digit_run_is_a_code() {
        let cases: &[(&str, Option<&str>)] = &[
            ("123456", Some("123456")),
            ("  123456\n", Some("123456")),
            ("it's 123 456.", Some("123456")),
            ("code: 12 34 56", Some("123456")),
            ("Code:123456!", Some("123456")),
            ("123\u{00A0}456", Some("123456")),
            ("(123456)", Some("123456")),
            // An order number beside it is another run, not part of it.
            ("the code for order 1002 is 654321", Some("654321")),
            ("12345", None),
            ("1234567", None),
            ("123 4567", None),
            ("123  456", None),
            ("123456 and 654321", None),
            ("SO-123456", None),
            ("A123456", None),
            ("#123456", None),
            ("+123456", None),
            ("123456.78", None),
            ("123456-7", None),
            ("١٢٣٤٥٦", None),
            ("no code", None),
        ];
        for (text, want) in cases {
            assert_eq!(read_code(text).as_deref(), *want, "{text:?}");
        }
        assert_eq!(read_code(&format!("{} 123456", "x".repeat(600))), None);
    }
}
