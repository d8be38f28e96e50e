//! Entities in a customer's message: order numbers, emails, phone numbers, money amounts, dates
//! (absolute and relative) and product names from the inventory.
//!
//! Spans are taken in a fixed order (emails, phone numbers, money, dates, then order numbers)
//! and each one masks its text, so "+1 415 555 0101" is a phone number and not an order, and
//! "$45.99" is an amount. Matching is by regular expressions over the whole message, whose
//! size the chat API already bounds.

use std::sync::LazyLock;

use regex::Regex;
use time::{Date, Duration, Month, Weekday};

use crate::bot::pattern::{Found, Pattern};
use crate::bot::words::{DateKind, Words};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    pub amount_cents: i64,
    /// ISO 4217, when the message says which.
    pub currency: Option<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entities {
    /// As written, without `#`, upper-cased: "1002", "A-10021", "551209874413377".
    pub order_refs: Vec<String>,
    /// Lower-cased.
    pub emails: Vec<String>,
    /// Digits only, with a leading `+` when written with a country code.
    pub phones: Vec<String>,
    pub amounts: Vec<Amount>,
    /// Resolved against the day the message was written.
    pub dates: Vec<Date>,
    /// Catalogue names, as the catalogue spells them.
    pub products: Vec<String>,
}

/// The patterns here are ASCII (digits, `@`, currency codes; the language's date words are
/// `Words`' own patterns, built at load), so they are compiled without Unicode
/// classes: `\d`, `\s`, `\b` and case folding over ASCII only. That is what they mean here
/// (an Arabic-Indic digit is not part of an order number), and it halves what compiling them
/// costs at init, which every cold start pays (all eight with a first match, release build:
/// 5.5 ms with Unicode classes, 2.8 ms without).
fn re(pattern: &str) -> Regex {
    Regex::new(&format!("(?-u){pattern}")).expect("static regex")
}

fn date(pattern: &str) -> Pattern {
    Pattern::new(&format!("(?-u){pattern}")).expect("static regex")
}

// Shared with `redact`, which takes the same emails and phone numbers out of the logs.
pub(crate) static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b"));
// A country code, or the grouped shapes of a national number: (415) 555-0101, 415-555-0101,
// 415.555.0101. A bare run of digits is left to order numbers.
pub(crate) static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}|\(\d{3}\)\s?\d{3}[\s.-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b)",
    )
});
static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:(?P<sym>\$|(?u:€|£))\s?(?P<a1>\d{1,7}(?:[.,]\d{3})*(?:[.,]\d{1,2})?)|(?P<a2>\d{1,7}(?:[.,]\d{1,2})?)\s?(?P<code>usd|eur|gbp|dollars?|euros?|pounds?|bucks)\b|\b(?P<code2>usd|eur|gbp)\s?(?P<a3>\d{1,7}(?:[.,]\d{1,2})?))",
    )
});
// Taken with the words' date patterns (`take_dates`), so compiled as they are.
static ISO_DATE: LazyLock<Pattern> =
    LazyLock::new(|| date(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"));
static US_DATE: LazyLock<Pattern> =
    LazyLock::new(|| date(r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{2,4}))?\b"));
static ORDER_REF: LazyLock<Regex> = LazyLock::new(|| {
    // "#1002", "order 1002", "A-10021", "SB1002", "551209874413377": letters are optional,
    // digits are not.
    re(r"(?i)(?:#|\b)([a-z]{0,4}-?\d{4,15})\b")
});

/// A `PHONE` match is a phone number only with 7 to 15 digits (E.164 allows at most 15).
pub(crate) fn is_phone_length(matched: &str) -> bool {
    (7..=15).contains(&matched.bytes().filter(u8::is_ascii_digit).count())
}

/// Blanks a span so later patterns do not see it (same length: offsets stay valid).
fn mask(text: &mut String, range: std::ops::Range<usize>) {
    let blank = " ".repeat(text[range.clone()].len());
    text.replace_range(range, &blank);
}

/// Each value found is taken: recorded in `into` and its text masked from `rest`. The matches
/// are read before any is masked (masking keeps offsets), so no copy of the text is needed.
fn take<T>(rest: &mut String, found: Vec<(T, std::ops::Range<usize>)>, into: &mut Vec<T>) {
    for (value, range) in found {
        into.push(value);
        mask(rest, range);
    }
}

/// A date without a year is the most recent such day: customers talk about orders placed or
/// expected around now, and "Nov 20" on Nov 25 means five days ago.
fn day_of(today: Date, year: Option<i32>, month: Month, day: u8) -> Option<Date> {
    match year {
        Some(y) => Date::from_calendar_date(y, month, day).ok(),
        None => {
            let this = Date::from_calendar_date(today.year(), month, day).ok()?;
            if this <= today + Duration::days(31) {
                Some(this)
            } else {
                Date::from_calendar_date(today.year() - 1, month, day).ok()
            }
        }
    }
}

fn year(raw: Option<&str>) -> Option<i32> {
    let y: i32 = raw?.parse().ok()?;
    Some(if y < 100 { 2000 + y } else { y })
}

fn cents(raw: &str) -> Option<i64> {
    // "1,299.50" and "1.299,50" and "45,99": the last separator followed by one or two digits
    // is the decimal point; the others group thousands.
    let (whole, frac) = match raw.rfind(['.', ',']) {
        Some(i) if raw.len() - i - 1 <= 2 => (&raw[..i], &raw[i + 1..]),
        _ => (raw, ""),
    };
    let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(frac)
}

fn currency(symbol_or_code: &str) -> Option<&'static str> {
    match symbol_or_code.to_ascii_lowercase().as_str() {
        "$" | "usd" | "dollar" | "dollars" | "bucks" => Some("USD"),
        "€" | "eur" | "euro" | "euros" => Some("EUR"),
        "£" | "gbp" | "pound" | "pounds" => Some("GBP"),
        _ => None,
    }
}

/// Every match of `re` that parses as a date is taken (`take`).
fn take_dates(
    rest: &mut String,
    re: &Pattern,
    dates: &mut Vec<Date>,
    parse: impl Fn(&Found) -> Option<Date>,
) {
    // Most messages have no date: a plain search says so without a capture search's setup.
    if !re.is_match(rest) {
        return;
    }
    let found = re
        .captures_iter(rest)
        .filter_map(|c| Some((parse(&c)?, c.range())))
        .collect();
    take(rest, found, dates);
}

/// "yesterday", "3 days ago", "in two weeks", "last friday", "next week", "el martes", as the
/// language's patterns say.
fn relative(words: &Words, c: &Found, today: Date) -> Option<Date> {
    let (_, alternatives) = words.relative.get();
    let alt = crate::bot::words::Alternative::of(alternatives, c)?;
    let group = |g: Option<usize>| g.and_then(|g| c.group(g));
    let count = || -> Option<i64> {
        let n = words.number(group(alt.n)?)?;
        let per = if group(alt.weeks).is_some() { 7 } else { 1 };
        Some(n * per)
    };
    let weekday = || -> Option<Weekday> {
        let said =
            crate::bot::words::without_accents(&crate::bot::words::lower(group(alt.weekday)?));
        let i = alt
            .weekdays
            .as_ref()?
            .iter()
            .position(|forms| forms.contains(&said))?;
        Some(Weekday::Monday.nth_next(i as u8))
    };
    let step_to = |target: Weekday, forward: bool| -> Option<Date> {
        let mut d = today;
        loop {
            d = if forward {
                d.next_day()?
            } else {
                d.previous_day()?
            };
            if d.weekday() == target {
                return Some(d);
            }
        }
    };
    match alt.kind {
        DateKind::Days(n) => Some(today + Duration::days(n)),
        DateKind::Ago => Some(today - Duration::days(count()?)),
        DateKind::Ahead => Some(today + Duration::days(count()?)),
        DateKind::Week(sign) => Some(today + Duration::days(7 * sign)),
        DateKind::LastWeekday | DateKind::Weekday => step_to(weekday()?, false),
        DateKind::NextWeekday => step_to(weekday()?, true),
        DateKind::NoDay => None,
    }
}

/// The entities written with digits, in the order `extract` takes them: phone numbers, money
/// amounts, then numeric and named dates, each masked from `rest` as it is taken.
fn numbers(words: &Words, rest: &mut String, today: Date, e: &mut Entities) {
    let found = PHONE
        .find_iter(rest)
        .filter(|m| is_phone_length(m.as_str()))
        .map(|m| {
            let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
            let plus = if m.as_str().starts_with('+') { "+" } else { "" };
            (format!("{plus}{digits}"), m.range())
        })
        .collect();
    take(rest, found, &mut e.phones);
    let found = MONEY
        .captures_iter(rest)
        .filter_map(|c| {
            let (amount, unit) = if let (Some(sym), Some(a)) = (c.name("sym"), c.name("a1")) {
                (a.as_str(), sym.as_str())
            } else if let (Some(a), Some(code)) = (c.name("a2"), c.name("code")) {
                (a.as_str(), code.as_str())
            } else if let (Some(code), Some(a)) = (c.name("code2"), c.name("a3")) {
                (a.as_str(), code.as_str())
            } else {
                return None;
            };
            let amount = Amount {
                amount_cents: cents(amount)?,
                currency: currency(unit),
            };
            Some((amount, c.get(0).expect("whole match").range()))
        })
        .collect();
    take(rest, found, &mut e.amounts);
    take_dates(rest, &ISO_DATE, &mut e.dates, |c| {
        let m = Month::try_from(c["m"].parse::<u8>().ok()?).ok()?;
        day_of(today, year(Some(&c["y"])), m, c["d"].parse().ok()?)
    });
    // "11/20" in English, "20/11" where the day comes first.
    take_dates(rest, &US_DATE, &mut e.dates, |c| {
        let (m, d) = if words.day_first {
            (&c["d"], &c["m"])
        } else {
            (&c["m"], &c["d"])
        };
        let m = Month::try_from(m.parse::<u8>().ok()?).ok()?;
        day_of(today, year(c.name("y")), m, d.parse().ok()?)
    });
    take_dates(rest, words.named_date.get(), &mut e.dates, |c| {
        let (m, d) = match (c.name("m1"), c.name("d1"), c.name("m2"), c.name("d2")) {
            (Some(m), Some(d), _, _) | (_, _, Some(m), Some(d)) => (m, d),
            _ => return None,
        };
        let m = Month::try_from(words.month(m)?).ok()?;
        day_of(today, year(c.name("y")), m, d.parse().ok()?)
    });
}

/// Finds every entity in `text`. `today` resolves relative dates; `catalogue` is the product
/// names the inventory knows.
pub fn extract(words: &Words, text: &str, today: Date, catalogue: &[&str]) -> Entities {
    let mut e = Entities::default();
    let mut rest = text.to_string();
    // Every pattern but the relative dates' ("yesterday", "last friday") needs an ASCII digit,
    // and an email an `@`: most messages ("hi there", "what is your refund policy?") have
    // neither and skip those searches, a tenth of a chat turn's own time when all ran.
    let digits = text.bytes().any(|b| b.is_ascii_digit());
    if text.contains('@') {
        let found = EMAIL
            .find_iter(text)
            .map(|m| (m.as_str().to_lowercase(), m.range()))
            .collect();
        take(&mut rest, found, &mut e.emails);
    }
    if digits {
        numbers(words, &mut rest, today, &mut e);
    }
    let (relative_dates, _) = words.relative.get();
    take_dates(&mut rest, relative_dates, &mut e.dates, |c| {
        relative(words, c, today)
    });

    if digits {
        e.order_refs = ORDER_REF
            .captures_iter(&rest)
            .map(|c| c[1].to_uppercase())
            .collect();
    }

    // Partial, plural and misspelled names too ("desk lamps", "wireles mouse"), in the order
    // the message names them.
    if !catalogue.is_empty() {
        e.products = crate::product_words::asked(words, text, catalogue)
            .products
            .into_iter()
            .map(|i| catalogue[i].to_string())
            .collect();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 25); // a Wednesday
    const CATALOGUE: &[&str] = &["Wireless Mouse", "Desk Lamp", "Noise-Cancelling Headphones"];

    fn x(text: &str) -> Entities {
        extract(Words::english(), text, TODAY, CATALOGUE)
    }

    #[test]
    fn order_numbers_in_their_usual_shapes() {
        assert_eq!(x("where is #1002?").order_refs, ["1002"]);
        assert_eq!(x("order 1002 please").order_refs, ["1002"]);
        assert_eq!(x("my order A-10021").order_refs, ["A-10021"]);
        assert_eq!(x("sb1002 hasn't arrived").order_refs, ["SB1002"]);
        assert_eq!(
            x("cancel purchase 551209874413377").order_refs,
            ["551209874413377"]
        );
        assert_eq!(x("change purchase 00007612094").order_refs, ["00007612094"]);
        assert!(x("where is my order?").order_refs.is_empty());
        assert!(x("I ordered 3 of them").order_refs.is_empty());
    }

    #[test]
    fn several_numbers_each_take_their_kind() {
        let e = x(
            "Orders 1001 and #1002; call me at +1 415 555 0101 or (415) 555-0102, \
                   I paid $45.99 on 2026-11-20. Mail: Alice.Martin@Example.com",
        );
        assert_eq!(e.order_refs, ["1001", "1002"]);
        assert_eq!(e.phones, ["+14155550101", "4155550102"]);
        assert_eq!(
            e.amounts,
            [Amount {
                amount_cents: 4599,
                currency: Some("USD")
            }]
        );
        assert_eq!(e.dates, [date!(2026 - 11 - 20)]);
        assert_eq!(e.emails, ["alice.martin@example.com"]);
    }

    #[test]
    fn money_amounts() {
        let a = |t: &str| x(t).amounts;
        let usd = |c| Amount {
            amount_cents: c,
            currency: Some("USD"),
        };
        assert_eq!(a("refund me $20"), [usd(2000)]);
        assert_eq!(a("it was 45.5 dollars"), [usd(4550)]);
        assert_eq!(a("USD 12.99 charged twice"), [usd(1299)]);
        assert_eq!(
            a("€1.299,50 for a lamp?"),
            [Amount {
                amount_cents: 129950,
                currency: Some("EUR")
            }]
        );
        assert_eq!(
            a("charged £7"),
            [Amount {
                amount_cents: 700,
                currency: Some("GBP")
            }]
        );
        assert!(a("order 1002").is_empty());
    }

    #[test]
    fn absolute_and_relative_dates() {
        let d = |t: &str| x(t).dates;
        assert_eq!(d("ordered on 11/20/2026"), [date!(2026 - 11 - 20)]);
        assert_eq!(d("ordered Nov 20"), [date!(2026 - 11 - 20)]);
        assert_eq!(d("the 3rd of December, 2025"), [date!(2025 - 12 - 03)]);
        // No year: the most recent such day (within a month ahead).
        assert_eq!(d("it came on March 3rd"), [date!(2026 - 03 - 03)]);
        assert_eq!(d("expected on Dec 10"), [date!(2026 - 12 - 10)]);
        assert_eq!(d("yesterday"), [date!(2026 - 11 - 24)]);
        assert_eq!(d("tomorrow maybe"), [date!(2026 - 11 - 26)]);
        assert_eq!(d("3 days ago"), [date!(2026 - 11 - 22)]);
        assert_eq!(d("two weeks ago"), [date!(2026 - 11 - 11)]);
        assert_eq!(d("in 5 days"), [date!(2026 - 11 - 30)]);
        assert_eq!(d("last friday"), [date!(2026 - 11 - 20)]);
        assert_eq!(d("next monday"), [date!(2026 - 11 - 30)]);
        assert!(d("13/45/2026").is_empty(), "not a date");
        assert!(d("order 1002").is_empty());
    }

    #[test]
    fn dates_in_spanish_french_and_german() {
        let bot = crate::bot::Bot::embedded();
        let d = |lang: &str, t: &str| extract(bot.words(lang), t, TODAY, &[]).dates;
        // TODAY is Wednesday 2026-11-25.
        for (lang, t, expected) in [
            ("es", "lo pedí ayer", date!(2026 - 11 - 24)),
            ("es", "llega mañana", date!(2026 - 11 - 26)),
            ("es", "llega manana", date!(2026 - 11 - 26)),
            ("es", "hoy", date!(2026 - 11 - 25)),
            ("es", "hace 3 días", date!(2026 - 11 - 22)),
            ("es", "hace dos semanas", date!(2026 - 11 - 11)),
            ("es", "hace tres dias", date!(2026 - 11 - 22)),
            ("es", "en 5 días", date!(2026 - 11 - 30)),
            ("es", "la semana pasada", date!(2026 - 11 - 18)),
            ("es", "el martes", date!(2026 - 11 - 24)),
            ("es", "el viernes pasado", date!(2026 - 11 - 20)),
            ("es", "el próximo lunes", date!(2026 - 11 - 30)),
            ("es", "el 20 de noviembre", date!(2026 - 11 - 20)),
            ("es", "el 3 de diciembre de 2025", date!(2025 - 12 - 03)),
            ("es", "el 20/11", date!(2026 - 11 - 20)),
            ("fr", "hier", date!(2026 - 11 - 24)),
            ("fr", "aujourd'hui", date!(2026 - 11 - 25)),
            ("fr", "demain", date!(2026 - 11 - 26)),
            ("fr", "il y a 3 jours", date!(2026 - 11 - 22)),
            ("fr", "il y a deux semaines", date!(2026 - 11 - 11)),
            ("fr", "dans 5 jours", date!(2026 - 11 - 30)),
            ("fr", "la semaine dernière", date!(2026 - 11 - 18)),
            ("fr", "la semaine derniere", date!(2026 - 11 - 18)),
            ("fr", "vendredi dernier", date!(2026 - 11 - 20)),
            ("fr", "lundi prochain", date!(2026 - 11 - 30)),
            ("fr", "le 20 novembre", date!(2026 - 11 - 20)),
            ("fr", "le 1er décembre 2025", date!(2025 - 12 - 01)),
            ("fr", "le 1er decembre 2025", date!(2025 - 12 - 01)),
            ("de", "gestern", date!(2026 - 11 - 24)),
            ("de", "heute", date!(2026 - 11 - 25)),
            ("de", "morgen", date!(2026 - 11 - 26)),
            ("de", "vor 3 Tagen", date!(2026 - 11 - 22)),
            ("de", "vor zwei Wochen", date!(2026 - 11 - 11)),
            ("de", "in fünf Tagen", date!(2026 - 11 - 30)),
            ("de", "in fuenf Tagen", date!(2026 - 11 - 30)),
            ("de", "letzte Woche", date!(2026 - 11 - 18)),
            ("de", "letzten Freitag", date!(2026 - 11 - 20)),
            ("de", "nächsten Montag", date!(2026 - 11 - 30)),
            ("de", "naechsten Montag", date!(2026 - 11 - 30)),
            ("de", "am 20. November", date!(2026 - 11 - 20)),
            ("de", "am 3. März", date!(2026 - 03 - 03)),
            ("de", "heute Morgen bestellt", date!(2026 - 11 - 25)),
            (
                "de",
                "Guten Morgen, kommt es morgen?",
                date!(2026 - 11 - 26),
            ),
            ("es", "mañana por la mañana", date!(2026 - 11 - 26)),
            ("es", "esta mañana", date!(2026 - 11 - 25)),
        ] {
            assert_eq!(d(lang, t), [expected], "{lang} {t}");
        }
        // English words are not dates in another language, nor the other way round.
        assert!(d("es", "yesterday").is_empty());
        assert!(d("en", "ayer").is_empty());
        assert!(d("de", "bestellung 1002").is_empty());
        // The morning is no day.
        assert!(d("de", "Guten Morgen! Wo bleibt mein Paket?").is_empty());
        assert!(d("es", "lo pedí a las 9 de la mañana").is_empty());
    }

    #[test]
    fn products_in_other_languages_with_and_without_accents() {
        let bot = crate::bot::Bot::embedded();
        let names = ["Ratón inalámbrico", "Lámpara de escritorio", "Kopfhörer"];
        let p = |lang: &str, t: &str| extract(bot.words(lang), t, TODAY, &names).products;
        assert_eq!(p("es", "¿tenéis lámparas?"), ["Lámpara de escritorio"]);
        assert_eq!(p("es", "el raton inalambrico"), ["Ratón inalámbrico"]);
        assert_eq!(p("de", "haben Sie Kopfhoerer?"), ["Kopfhörer"]);
    }

    #[test]
    fn products_from_the_catalogue() {
        assert_eq!(x("is the desk lamp in stock?").products, ["Desk Lamp"]);
        assert_eq!(
            x("my NOISE-CANCELLING HEADPHONES and the wireless mouse").products,
            ["Noise-Cancelling Headphones", "Wireless Mouse"]
        );
        assert_eq!(x("any desk lamps?").products, ["Desk Lamp"]);
        assert_eq!(x("the wireles mouse").products, ["Wireless Mouse"]);
        assert_eq!(x("the mouse").products, ["Wireless Mouse"]);
        assert!(
            x("a desk lampshade").products.is_empty(),
            "whole words only"
        );
    }

    #[test]
    fn other_languages_emoji_and_long_text() {
        assert_eq!(x("¿Dónde está mi pedido 1002?").order_refs, ["1002"]);
        assert_eq!(x("我的订单 #1002 在哪里").order_refs, ["1002"]);
        let e = x("📦 where is #1002 🙏 paid 💵 $10");
        assert_eq!(e.order_refs, ["1002"]);
        assert_eq!(e.amounts.len(), 1);
        // 4 KB of text: every entity found, nothing else.
        let long = "blah ".repeat(800) + "order 1003, email bob@example.com";
        assert!(long.len() > 4000);
        let e = x(&long);
        assert_eq!(e.order_refs, ["1003"]);
        assert_eq!(e.emails, ["bob@example.com"]);
        let noise: String = "🙂é漢\u{200b}".repeat(300);
        assert_eq!(x(&noise), Entities::default());
    }
}
