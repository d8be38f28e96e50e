//! How one language writes the values inside its sentences: money ("$45.99", "45,99 €"), dates
//! ("November 20", "20 de noviembre"), lists ("a, b and c") and yes/no ("sí", "non"). Read from the `[format]` table of
//! `messages/<lang>.toml`; every key is optional and falls back to English, so a bundle written
//! before the table existed says exactly what it said before.
//!
//! Checked at load like the sentences (file, line and key for each problem), so writing a value
//! cannot fail afterwards.

use time::Date;
use toml::de::{DeTable, DeValue};

use super::error::{line_of, BundleError};
use super::messages::{kind, parse_template, Part};
use crate::money::Money;

/// The table's name in a messages file; its keys are not sentences.
pub const TABLE: &str = "format";

const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// One language's way of writing values, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    /// `{symbol}` and `{amount}` (required).
    money: Vec<Part>,
    decimal: String,
    /// May be empty: the language does not group digits.
    thousands: String,
    /// `{day}` (required) and `{month}`.
    date: Vec<Part>,
    months: Vec<String>,
    list_separator: String,
    list_last: String,
    /// A flow's true and false values ("yes"/"no", "sí"/"no", "ja"/"nein").
    yes: String,
    no: String,
}

impl Default for Format {
    /// English, as the bot wrote before languages had a `[format]`.
    fn default() -> Self {
        Format {
            money: vec![Part::Var("symbol".into()), Part::Var("amount".into())],
            decimal: ".".into(),
            thousands: ",".into(),
            date: vec![
                Part::Var("month".into()),
                Part::Text(" ".into()),
                Part::Var("day".into()),
            ],
            months: ENGLISH_MONTHS.iter().map(|m| m.to_string()).collect(),
            list_separator: ", ".into(),
            list_last: " and ".into(),
            yes: "yes".into(),
            no: "no".into(),
        }
    }
}

/// The keys of `[format]`, for "unknown key" errors.
const KEYS: &[&str] = &[
    "money",
    "decimal",
    "thousands",
    "date",
    "months",
    "list_separator",
    "list_last",
    "yes",
    "no",
];

impl Format {
    /// Reads `[format]` (`value`, written at `line`) over the English defaults; a key with a
    /// problem keeps its default and the problem goes to `errors`.
    pub(super) fn parse(
        file: &str,
        text: &str,
        value: &DeValue<'_>,
        line: usize,
        errors: &mut Vec<BundleError>,
    ) -> Format {
        let mut format = Format::default();
        let DeValue::Table(table) = value else {
            let message = format!(
                "must be a table (how values are written), not {}",
                kind(value)
            );
            errors.push(BundleError::new(file, Some(line), TABLE, message));
            return format;
        };
        format.read(file, text, table, errors);
        if format.decimal == format.thousands {
            let line =
                key_line(text, table, "thousands").or_else(|| key_line(text, table, "decimal"));
            errors.push(BundleError::new(
                file,
                line,
                format!("{TABLE}.thousands"),
                format!(
                    "is the same as `decimal` ({:?}): amounts could not be read",
                    format.decimal
                ),
            ));
        }
        format
    }

    fn read(&mut self, file: &str, text: &str, table: &DeTable<'_>, errors: &mut Vec<BundleError>) {
        for (k, v) in table {
            let name = k.get_ref().as_ref();
            let key = format!("{TABLE}.{name}");
            let line = line_of(text, k.span().start);
            let mut problem = |message: String| {
                errors.push(BundleError::new(file, Some(line), key.clone(), message))
            };
            let v = v.get_ref();
            if name == "months" {
                match months(v) {
                    Ok(m) => self.months = m,
                    Err(message) => problem(message),
                }
                continue;
            }
            if !KEYS.contains(&name) {
                problem(unknown_key());
                continue;
            }
            let DeValue::String(s) = v else {
                problem(format!("must be a string, not {}", kind(v)));
                continue;
            };
            let s = s.to_string();
            let result = match name {
                "money" => pattern(&s, &["symbol", "amount"], "amount").map(|p| self.money = p),
                "date" => pattern(&s, &["day", "month"], "day").map(|p| self.date = p),
                "decimal" => non_empty(s, "amounts need a decimal mark").map(|s| self.decimal = s),
                // No grouping is a choice some languages make.
                "thousands" => {
                    self.thousands = s;
                    Ok(())
                }
                "list_separator" => non_empty(s, "lists need something between their items")
                    .map(|s| self.list_separator = s),
                "list_last" => non_empty(s, "lists need a word or mark before their last item")
                    .map(|s| self.list_last = s),
                "yes" => non_empty(s, "a true value needs a word").map(|s| self.yes = s),
                "no" => non_empty(s, "a false value needs a word").map(|s| self.no = s),
                _ => Err(unknown_key()),
            };
            if let Err(message) = result {
                problem(message);
            }
        }
    }

    /// "$45.99", "45,99 €", "1.200 JPY": the amount in the currency's own digits (none for
    /// yen), its sign ($, €, £) or else its ISO code, as `money` places them.
    pub fn money(&self, m: &Money) -> String {
        let code = m.currency.to_ascii_uppercase();
        let symbol = match code.as_str() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            "" => "",
            other => other,
        };
        let amount = self.amount(m);
        let mut out = String::new();
        if m.amount_cents < 0 {
            out.push('-');
        }
        // A code is a word: "JPY 1,200" (no-break space), never "JPY1,200" as `{symbol}{amount}`
        // would glue it.
        let is_code = !symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_alphabetic());
        let mut previous: Option<&Part> = None;
        for part in &self.money {
            if is_code && matches!((previous, part), (Some(Part::Var(_)), Part::Var(_))) {
                out.push('\u{a0}');
            }
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) if v == "amount" => out.push_str(&amount),
                Part::Var(_) => out.push_str(symbol),
            }
            previous = Some(part);
        }
        out.trim().to_string()
    }

    /// The absolute amount with this language's separators: "1,234.50", "1.234,50".
    fn amount(&self, m: &Money) -> String {
        let hundredths = m.amount_cents.unsigned_abs();
        let (whole, fraction) = match m.minor_digits() {
            // Amounts are kept in hundredths; a currency without minor units rounds to whole.
            0 => ((hundredths + 50) / 100, None),
            _ => (hundredths / 100, Some(hundredths % 100)),
        };
        let digits = whole.to_string();
        let mut out = String::new();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(&self.thousands);
            }
            out.push(d);
        }
        if let Some(f) = fraction {
            out.push_str(&self.decimal);
            out.push_str(&format!("{f:02}"));
        }
        out
    }

    /// "November 20", "20 de noviembre", "20. November".
    pub fn date(&self, d: Date) -> String {
        let month = &self.months[usize::from(u8::from(d.month())) - 1];
        let mut out = String::new();
        for part in &self.date {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) if v == "day" => out.push_str(&d.day().to_string()),
                Part::Var(_) => out.push_str(month),
            }
        }
        out
    }

    /// A flow's true or false value as this language says it.
    pub fn truth(&self, value: bool) -> &str {
        if value {
            &self.yes
        } else {
            &self.no
        }
    }

    /// "a, b, c": a few of many, given as examples ("for example: …"), so no `list_last`
    /// (which would say the list is whole).
    pub fn sample<S: AsRef<str>>(&self, items: &[S]) -> String {
        let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        items.join(&self.list_separator)
    }

    /// "a, b and c", "a and b", "a"; nothing for no items: a whole enumeration.
    pub fn list<S: AsRef<str>>(&self, items: &[S]) -> String {
        let mut out = String::new();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(if i + 1 == items.len() {
                    &self.list_last
                } else {
                    &self.list_separator
                });
            }
            out.push_str(item.as_ref());
        }
        out
    }
}

/// The `[format]` of a messages text and its problems in file order, for tests of the code
/// that writes values.
#[cfg(test)]
pub(crate) fn parse_for_test(text: &str) -> (Format, Vec<BundleError>) {
    let root = DeTable::parse(text).expect("a test's TOML parses");
    let mut errors = Vec::new();
    let format = match root.get_ref().iter().find(|(k, _)| k.get_ref() == TABLE) {
        Some((k, v)) => {
            let line = line_of(text, k.span().start);
            Format::parse("es.toml", text, v.get_ref(), line, &mut errors)
        }
        None => Format::default(),
    };
    errors.sort_by_key(|e| e.line);
    (format, errors)
}

fn unknown_key() -> String {
    format!("unknown key (expected one of: {})", KEYS.join(", "))
}

fn key_line(text: &str, table: &DeTable<'_>, key: &str) -> Option<usize> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, _)| line_of(text, k.span().start))
}

/// A pattern using only `allowed` variables, with `required` among them.
fn pattern(s: &str, allowed: &[&str], required: &str) -> Result<Vec<Part>, String> {
    let parts = parse_template(s)?;
    let names: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
    for part in &parts {
        if let Part::Var(v) = part {
            if !allowed.contains(&v.as_str()) {
                return Err(format!(
                    "unknown variable {{{v}}}: this pattern may use {}",
                    names.join(", ")
                ));
            }
        }
    }
    if !parts.contains(&Part::Var(required.into())) {
        return Err(format!(
            "needs {{{required}}}: without it the value is not written"
        ));
    }
    Ok(parts)
}

fn non_empty(s: String, why: &str) -> Result<String, String> {
    if s.is_empty() {
        Err(format!("empty: {why}"))
    } else {
        Ok(s)
    }
}

/// Twelve non-empty names, January first.
fn months(v: &DeValue<'_>) -> Result<Vec<String>, String> {
    let DeValue::Array(items) = v else {
        return Err(format!(
            "must be a list of the twelve months' names, not {}",
            kind(v)
        ));
    };
    let mut names = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => names.push(s.to_string()),
            DeValue::String(_) => return Err(format!("month {} is empty", names.len() + 1)),
            other => {
                return Err(format!(
                    "month {} must be a string, not {}",
                    names.len() + 1,
                    kind(other)
                ))
            }
        }
    }
    if names.len() != 12 {
        return Err(format!(
            "has {} names: it needs the twelve months, January first",
            names.len()
        ));
    }
    Ok(names)
}

#[cfg(test)]
pub(crate) mod tests {
    use time::macros::date;

    use super::*;

    use super::parse_for_test as parse;

    fn ok(text: &str) -> Format {
        let (f, errors) = parse(text);
        assert!(errors.is_empty(), "{errors:?}");
        f
    }

    fn money(cents: i64, currency: &str) -> Money {
        Money {
            amount_cents: cents,
            currency: currency.into(),
        }
    }

    const ES: &str = r#"
[format]
money = "{amount} {symbol}"
decimal = ","
thousands = "."
date = "{day} de {month}"
months = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
          "septiembre", "octubre", "noviembre", "diciembre"]
list_separator = ", "
list_last = " y "
"#;

    const FR: &str = "
[format]
money = \"{amount}\u{202f}{symbol}\"
decimal = \",\"
thousands = \"\u{202f}\"
date = \"{day} {month}\"
months = [\"janvier\", \"février\", \"mars\", \"avril\", \"mai\", \"juin\", \"juillet\", \"août\",
          \"septembre\", \"octobre\", \"novembre\", \"décembre\"]
list_last = \" et \"
yes = \"oui\"
no = \"non\"
";

    pub(crate) const DE: &str = r#"
[format]
money = "{amount} {symbol}"
decimal = ","
thousands = "."
date = "{day}. {month}"
months = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
          "September", "Oktober", "November", "Dezember"]
list_last = " und "
"#;

    #[test]
    fn english_by_default() {
        let en = Format::default();
        assert_eq!(en.money(&money(4599, "usd")), "$45.99");
        assert_eq!(en.money(&money(123450, "USD")), "$1,234.50");
        assert_eq!(en.money(&money(-150, "USD")), "-$1.50");
        assert_eq!(en.money(&money(5, "EUR")), "€0.05");
        assert_eq!(en.money(&money(100, "GBP")), "£1.00");
        assert_eq!(en.money(&money(4599, "")), "45.99");
        assert_eq!(en.date(date!(2026 - 11 - 20)), "November 20");
        assert_eq!(en.date(date!(2026 - 01 - 03)), "January 3");
        assert_eq!(en.list(&["a", "b", "c"]), "a, b and c");
        assert_eq!(en.list(&["a", "b"]), "a and b");
        assert_eq!(en.list(&["a"]), "a");
        assert_eq!(en.list::<&str>(&[]), "");
        assert_eq!((en.truth(true), en.truth(false)), ("yes", "no"));
        // An empty table is English too.
        assert_eq!(ok("[format]\n"), en);
    }

    #[test]
    fn spanish() {
        let es = ok(ES);
        assert_eq!(es.money(&money(4599, "EUR")), "45,99 €");
        assert_eq!(es.money(&money(123450, "EUR")), "1.234,50 €");
        assert_eq!(es.money(&money(123456789, "EUR")), "1.234.567,89 €");
        assert_eq!(es.money(&money(-150, "EUR")), "-1,50 €");
        assert_eq!(es.money(&money(4599, "USD")), "45,99 $");
        assert_eq!(es.date(date!(2026 - 11 - 20)), "20 de noviembre");
        assert_eq!(es.list(&["a", "b", "c"]), "a, b y c");
        assert_eq!(es.list(&["a", "b"]), "a y b");
        // Examples out of many are no whole list: no "y".
        assert_eq!(es.sample(&["a", "b", "c"]), "a, b, c");
    }

    #[test]
    fn french_with_narrow_no_break_spaces() {
        let fr = ok(FR);
        assert_eq!(fr.money(&money(4599, "EUR")), "45,99\u{202f}€");
        assert_eq!(fr.money(&money(123450, "EUR")), "1\u{202f}234,50\u{202f}€");
        assert_eq!(fr.date(date!(2026 - 11 - 20)), "20 novembre");
        assert_eq!(fr.date(date!(2026 - 08 - 01)), "1 août");
        // `list_separator` left out: the English default.
        assert_eq!(fr.list(&["a", "b", "c"]), "a, b et c");
        assert_eq!((fr.truth(true), fr.truth(false)), ("oui", "non"));
    }

    #[test]
    fn german() {
        let de = ok(DE);
        assert_eq!(de.money(&money(4599, "EUR")), "45,99 €");
        assert_eq!(de.money(&money(123450, "EUR")), "1.234,50 €");
        assert_eq!(de.date(date!(2026 - 11 - 20)), "20. November");
        assert_eq!(de.date(date!(2026 - 03 - 02)), "2. März");
        assert_eq!(de.list(&["a", "b", "c"]), "a, b und c");
    }

    #[test]
    fn yen_has_no_minor_units_and_a_code_is_a_word() {
        let en = Format::default();
        // Amounts are kept in hundredths: 120000 is ¥1200.
        assert_eq!(en.money(&money(120000, "JPY")), "JPY\u{a0}1,200");
        assert_eq!(en.money(&money(120050, "jpy")), "JPY\u{a0}1,201");
        assert_eq!(ok(DE).money(&money(120000, "JPY")), "1.200 JPY");
        assert_eq!(en.money(&money(4599, "CHF")), "CHF\u{a0}45.99");
        assert_eq!(ok(ES).money(&money(4599, "CHF")), "45,99 CHF");
    }

    #[test]
    fn bad_values_name_their_line_and_key() {
        let text = r#"[format]
money = "{amount} {currency}"
date = "{month}"
months = ["Jan", "Feb"]
decimal = ""
list_last = 3
colour = "red"
list_separator = ", "
"#;
        let (f, errors) = parse(text);
        let found: Vec<(Option<usize>, &str)> =
            errors.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            found,
            [
                (Some(2), "format.money"),
                (Some(3), "format.date"),
                (Some(4), "format.months"),
                (Some(5), "format.decimal"),
                (Some(6), "format.list_last"),
                (Some(7), "format.colour"),
            ],
            "{errors:?}"
        );
        assert!(
            errors[0].message.contains("unknown variable {currency}"),
            "{}",
            errors[0]
        );
        assert!(errors[1].message.contains("needs {day}"), "{}", errors[1]);
        assert!(errors[2].message.contains("has 2 names"), "{}", errors[2]);
        assert!(errors[3].message.contains("empty"), "{}", errors[3]);
        assert!(errors[4].message.contains("not a number"), "{}", errors[4]);
        assert!(errors[5].message.contains("unknown key"), "{}", errors[5]);
        assert_eq!(errors[0].to_string().split(':').next(), Some("es.toml"));
        // What was wrong kept its English default; what was right was read.
        assert_eq!(f.money(&money(4599, "USD")), "$45.99");
        assert_eq!(f.list(&["a", "b"]), "a and b");
    }

    #[test]
    fn more_bad_values() {
        let (_, e) = parse("[format]\nmoney = \"{symbol}\"\n");
        assert!(e[0].message.contains("needs {amount}"), "{e:?}");
        let (_, e) = parse("[format]\nmonths = [\"a\", \"\", \"c\"]\n");
        assert!(e[0].message.contains("month 2 is empty"), "{e:?}");
        let (_, e) = parse("[format]\nmonths = \"January\"\n");
        assert!(e[0].message.contains("must be a list"), "{e:?}");
        let (_, e) = parse("[format]\ndate = \"{day\"\n");
        assert!(e[0].message.contains("unclosed"), "{e:?}");
        let (_, e) = parse("[format]\ndecimal = \",\"\nthousands = \",\"\n");
        assert_eq!(
            (e[0].line, e[0].key.as_str()),
            (Some(3), "format.thousands")
        );
        let (_, e) = parse("[format]\nyes = \"\"\nno = false\n");
        assert_eq!((e[0].line, e[0].key.as_str()), (Some(2), "format.yes"));
        assert!(e[0].message.contains("needs a word"), "{e:?}");
        assert!(e[1].message.contains("must be a string"), "{e:?}");
        let (_, e) = parse("format = \"de\"\n");
        assert_eq!((e[0].line, e[0].key.as_str()), (Some(1), "format"));
        assert!(e[0].message.contains("must be a table"), "{e:?}");
    }
}
