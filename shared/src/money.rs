//! Amounts in minor units, formatted for people.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount_cents: i64,
    pub currency: String,
}

impl Money {
    /// The amount in major units, "45.99" for 4599: what APIs taking decimal amounts expect.
    pub fn major_units(&self) -> String {
        let sign = if self.amount_cents < 0 { "-" } else { "" };
        let abs = self.amount_cents.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// The digits after the decimal mark people write for this currency: none for yen and
    /// the other ISO 4217 currencies without minor units, two otherwise. (Amounts are kept in
    /// hundredths whatever the currency, so this is about writing them, not storing them.)
    pub fn minor_digits(&self) -> u32 {
        const WHOLE_UNITS: &[&str] = &[
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF", "XPF",
        ];
        if WHOLE_UNITS.contains(&self.currency.to_ascii_uppercase().as_str()) {
            0
        } else {
            2
        }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let symbol = match self.currency.to_ascii_uppercase().as_str() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            _ => "",
        };
        let units = self.major_units();
        if symbol.is_empty() {
            write!(f, "{units} {}", self.currency.to_ascii_uppercase())
        } else {
            match units.strip_prefix('-') {
                Some(abs) => write!(f, "-{symbol}{abs}"),
                None => write!(f, "{symbol}{units}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_minor_units() {
        let m = |c: i64, cur: &str| {
            Money {
                amount_cents: c,
                currency: cur.into(),
            }
            .to_string()
        };
        assert_eq!(m(4599, "usd"), "$45.99");
        assert_eq!(m(5, "EUR"), "€0.05");
        assert_eq!(m(120000, "JPY"), "1200.00 JPY");
        assert_eq!(m(-150, "USD"), "-$1.50");
        let refund = Money {
            amount_cents: -150,
            currency: "USD".into(),
        };
        assert_eq!(refund.major_units(), "-1.50");
    }
}
