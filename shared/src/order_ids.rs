//! Order numbers as the company's order system writes them. A connector file may declare what
//! its ids look like (`order_ids = { prefix = "SO-", digits = 5 }` on the orders system); a
//! customer who writes "88140", "SO88140", "so-88140" or "#88140" then means `SO-88140`.
//!
//! Two rules, both pure (the dialogue reads the customer's orders and passes their ids in):
//! - with a declared format, a reference that fits it (no letters or the prefix's letters, the
//!   declared number of digits) is rewritten to the canonical form, whoever's order that is:
//!   the usual ownership check then decides, as for a number written in full. The format must
//!   not fit ids of another shape the system still holds: "1001" under `prefix = "INV"` with
//!   any number of digits is INV1001, never an older order 1001;
//! - otherwise a reference that is not exactly one of the orders given (the customer's own, or
//!   those "which order?" listed) is the only one of them it is but for `#`, hyphens and case
//!   ("SO88140" for "SO-88140" when nothing is declared), else, for a bare number, the only one
//!   with that number ("88140"). Two that fit, or none: the reference stays as written, so
//!   "not found" is said as before. Only the customer's own orders are ever candidates. With
//!   nothing declared the dialogue reads the customer's orders only for a reference with
//!   letters ([`needs_orders`]): a bare number is then the order system's id as written.

use serde::Deserialize;

/// What the order recogniser in `entities` reads: up to four letters before the digits and
/// 4 to 15 digits. A format outside that could never be written by a customer and recognised.
const MAX_PREFIX_LETTERS: usize = 4;
pub const MIN_DIGITS: u32 = 4;
pub const MAX_DIGITS: u32 = 15;

/// A company's order ids: a prefix of letters (with its hyphen, if it has one) and digits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OrderIdSpec")]
pub struct OrderIdFormat {
    /// As the company writes it: "SO-", "INV".
    prefix: String,
    /// How many digits follow it, when the system always writes the same number.
    digits: Option<u32>,
}

/// `order_ids` as written in a connector file (or the test fixtures), before it is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderIdSpec {
    pub prefix: String,
    #[serde(default)]
    pub digits: Option<u32>,
}

/// A problem with a declared format: which key (`prefix`, `digits`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub key: &'static str,
    pub message: String,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl TryFrom<OrderIdSpec> for OrderIdFormat {
    type Error = FormatError;

    fn try_from(spec: OrderIdSpec) -> Result<Self, FormatError> {
        OrderIdFormat::new(&spec.prefix, spec.digits)
    }
}

impl OrderIdFormat {
    pub fn new(prefix: &str, digits: Option<u32>) -> Result<Self, FormatError> {
        Self::check_prefix(prefix).map_err(|message| FormatError {
            key: "prefix",
            message,
        })?;
        if let Some(n) = digits {
            Self::check_digits(n).map_err(|message| FormatError {
                key: "digits",
                message,
            })?;
        }
        Ok(Self {
            prefix: prefix.to_string(),
            digits,
        })
    }

    /// What is wrong with `prefix`, if anything (a file's check reports it beside `digits`'s).
    pub fn check_prefix(prefix: &str) -> Result<(), String> {
        let letters = prefix.strip_suffix('-').unwrap_or(prefix);
        if letters.is_empty()
            || letters.len() > MAX_PREFIX_LETTERS
            || !letters.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(format!(
                "{prefix:?}: 1 to {MAX_PREFIX_LETTERS} letters, optionally followed by `-` (\"SO-\", \"INV\"): what customers write before the digits"
            ));
        }
        Ok(())
    }

    /// What is wrong with `digits`, if anything.
    pub fn check_digits(digits: u32) -> Result<(), String> {
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
            return Err(format!(
                "{digits}: between {MIN_DIGITS} and {MAX_DIGITS} (or left out: any number)"
            ));
        }
        Ok(())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn digits(&self) -> Option<u32> {
        self.digits
    }

    /// The id as the company writes it, for a reference that fits the format ("88140",
    /// "SO88140", "so-88140", "#88140" → "SO-88140"); `None` for one that does not (other
    /// letters, another number of digits).
    pub fn canonical(&self, written: &str) -> Option<String> {
        let (letters, digits) = split(written)?;
        let own = self.prefix.strip_suffix('-').unwrap_or(&self.prefix);
        let letters_fit = letters.is_empty() || letters.eq_ignore_ascii_case(own);
        let digits_fit = self.digits.is_none_or(|n| digits.len() == n as usize);
        (letters_fit && digits_fit).then(|| format!("{}{digits}", self.prefix))
    }
}

/// A written reference as letters and digits: an optional `#`, letters, an optional `-`, and
/// nothing but digits after them. `None` for anything else.
fn split(written: &str) -> Option<(&str, &str)> {
    let s = written.strip_prefix('#').unwrap_or(written);
    let digits_at = s.find(|c: char| c.is_ascii_digit())?;
    let (head, digits) = s.split_at(digits_at);
    let letters = head.strip_suffix('-').unwrap_or(head);
    (letters.bytes().all(|b| b.is_ascii_alphabetic()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some((letters, digits))
}

/// The number an id ends with, when nothing before it is a digit: "SO-88140" and "A-88140"
/// both end with 88140; "2026-88140" names no one number.
fn number(id: &str) -> Option<&str> {
    let head = id.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &id[head.len()..];
    (!digits.is_empty() && !head.bytes().any(|b| b.is_ascii_digit())).then_some(digits)
}

/// An id without what customers leave out or change: `#`, hyphens and case ("so88140" and
/// "SO-88140" are both "SO88140").
fn loose(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The one of `own` (the customer's orders' ids) that `written` means: the one it is exactly;
/// else the only one it is but for `#`, hyphens and case ("R3107" is "R-3107" even beside
/// "GC-3107"); else, for a bare number only, the only one with that number ("88140" is
/// "SO-88140"). Other letters name another id ("RT88140" may be a return, not the order
/// SO-88140), so they are never matched by the number alone. `None` when none or several are.
pub fn among<'a>(written: &str, own: &[&'a str]) -> Option<&'a str> {
    if let Some(exact) = own.iter().find(|id| **id == written) {
        return Some(exact);
    }
    let only = |same: &mut dyn Iterator<Item = &&'a str>| match (same.next(), same.next()) {
        (Some(one), None) => Some(*one),
        _ => None,
    };
    let wanted = loose(written);
    if let Some(one) = only(&mut own.iter().filter(|id| loose(id) == wanted)) {
        return Some(one);
    }
    let bare = written.strip_prefix('#').unwrap_or(written);
    if !bare.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number_wanted = number(bare)?;
    only(&mut own.iter().filter(|id| number(id) == Some(number_wanted)))
}

/// Whether [`resolve`] needs the customer's orders for `written`: not when the declared
/// format settles it, and not for a bare number when nothing is declared. Most systems' ids
/// are plain numbers: reading the customer's orders before every "where is 1001?" would add a
/// call to the order system to each such turn. A company whose ids carry letters declares
/// them (`order_ids`), and "88140" is then its SO-88140 without any read.
pub fn needs_orders(format: Option<&OrderIdFormat>, written: &str) -> bool {
    match format {
        Some(f) => f.canonical(written).is_none(),
        None => !written.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// The order `written` names: the declared format's canonical form when it fits, else the one
/// of `own` it means ([`among`]), else what was written.
pub fn resolve(format: Option<&OrderIdFormat>, written: &str, own: &[&str]) -> String {
    if let Some(canonical) = format.and_then(|f| f.canonical(written)) {
        return canonical;
    }
    among(written, own).unwrap_or(written).to_string()
}

/// Every reference of a message resolved ([`resolve`]); `own` (the customer's orders, read
/// only when some reference [`needs_orders`]) is looked in only for those that need it, so
/// "88130" means the same whether or not the message names another order beside it.
pub fn resolve_all(format: Option<&OrderIdFormat>, refs: &[String], own: &[&str]) -> Vec<String> {
    refs.iter()
        .map(|r| {
            let candidates = if needs_orders(format, r) { own } else { &[] };
            resolve(format, r, candidates)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so() -> OrderIdFormat {
        OrderIdFormat::new("SO-", Some(5)).unwrap()
    }

    #[test]
    fn written_any_way_it_becomes_the_companys_id() {
        for written in [
            "88140", "SO88140", "SO-88140", "#88140", "so-88140", "So88140",
        ] {
            assert_eq!(
                so().canonical(written).as_deref(),
                Some("SO-88140"),
                "{written}"
            );
        }
        // Other letters, another length, not an order number at all: not this format's.
        for written in [
            "A-88140",
            "SB88140",
            "881400",
            "8814",
            "SO-88-140",
            "",
            "SO-",
        ] {
            assert_eq!(so().canonical(written), None, "{written}");
        }
        // A prefix without a hyphen, and any number of digits.
        let inv = OrderIdFormat::new("INV", None).unwrap();
        assert_eq!(inv.canonical("inv-2041").as_deref(), Some("INV2041"));
        assert_eq!(inv.canonical("123456789").as_deref(), Some("INV123456789"));
    }

    #[test]
    fn a_format_customers_could_not_write_is_refused() {
        for (prefix, digits, key) in [
            ("", None, "prefix"),
            ("-", None, "prefix"),
            ("ORDER-", None, "prefix"),
            ("S0-", None, "prefix"),
            ("SO_", None, "prefix"),
            ("SO--", None, "prefix"),
            ("SO-", Some(3), "digits"),
            ("SO-", Some(16), "digits"),
        ] {
            let e = OrderIdFormat::new(prefix, digits).unwrap_err();
            assert_eq!(e.key, key, "{prefix:?} {digits:?}: {e}");
        }
    }

    #[test]
    fn the_one_own_order_with_the_same_number_is_meant() {
        let own = ["SO-88140", "SO-88130"];
        assert_eq!(resolve(None, "88140", &own), "SO-88140");
        assert_eq!(resolve(None, "SO88130", &own), "SO-88130");
        assert_eq!(resolve(None, "#88130", &own), "SO-88130");
        // Exactly one of them as written: that one, even when another shares its number.
        assert_eq!(resolve(None, "1001", &["1001", "SO-1001"]), "1001");
        // Its letters too, but for hyphen and case: they tell two with one number apart.
        assert_eq!(resolve(None, "R3107", &["GC-3107", "R-3107"]), "R-3107");
        assert_eq!(resolve(None, "gc-3107", &["GC-3107", "R-3107"]), "GC-3107");
    }

    #[test]
    fn two_own_orders_with_the_number_or_none_leave_it_as_written() {
        // Ambiguous: the customer is asked about what they wrote, never about a guess.
        assert_eq!(resolve(None, "88140", &["SO-88140", "RT-88140"]), "88140");
        assert_eq!(resolve(None, "77777", &["SO-88140"]), "77777");
        assert_eq!(resolve(None, "88140", &[]), "88140");
        // Digits before the number: no number to compare.
        assert_eq!(resolve(None, "88140", &["2026-88140"]), "88140");
    }

    #[test]
    fn another_customers_order_is_never_picked() {
        // Only the customer's own ids are given: bob's SO-88140 is not among alice's, so
        // alice's "88140" stays as written and the order lookup's ownership check answers.
        let alices = ["SO-10001"];
        assert_eq!(resolve(None, "88140", &alices), "88140");
        // With a declared format the number is rewritten whoever owns it; the lookup that
        // follows still checks that it is hers (as for "SO-88140" written in full).
        assert_eq!(resolve(Some(&so()), "88140", &alices), "SO-88140");
    }

    #[test]
    fn a_declared_format_settles_references_without_the_orders() {
        assert!(!needs_orders(Some(&so()), "88140"));
        assert!(
            needs_orders(Some(&so()), "1001"),
            "4 digits: not the format"
        );
        // Nothing declared: a bare number is looked up as written, letters are matched.
        assert!(!needs_orders(None, "88140"));
        assert!(needs_orders(None, "SO88140"));
        // Outside the format, the own orders still decide; other letters are another id.
        assert_eq!(resolve(Some(&so()), "1001", &["A-1001"]), "A-1001");
        assert_eq!(resolve(Some(&so()), "A-1001", &["1001"]), "A-1001");
        assert_eq!(resolve(None, "RT88140", &["SO-88140"]), "RT88140");
    }

    #[test]
    fn the_format_is_read_from_a_file_and_checked() {
        let f: OrderIdFormat =
            toml::from_str::<toml::Table>("x = { prefix = \"SO-\", digits = 5 }").unwrap()["x"]
                .clone()
                .try_into()
                .unwrap();
        assert_eq!(f, so());
        let bad = toml::from_str::<toml::Table>("x = { prefix = \"SO-\", digits = 2 }").unwrap()
            ["x"]
            .clone()
            .try_into::<OrderIdFormat>()
            .unwrap_err();
        assert!(bad.to_string().contains("digits"), "{bad}");
    }
}
