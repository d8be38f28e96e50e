//! Conditions of `branch` steps: a tiny expression language, parsed when the flow is loaded
//! (a typo is a load error with its line, never a surprise in a conversation) and evaluated
//! over the slots and bound fields.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | compare
//! compare := operand [ ("==" | "!=" | "<" | ">" | "<=" | ">=") operand
//!                    | ["not"] "in" "[" operand ("," operand)* "]" ]
//! operand := path | "now" | 'text' | "text" | 12 | 45.99 | 2026-11-24 | true | false | "(" expr ")"
//! ```
//! A path is a slot (`order`) or a bound field (`o.status`). An operand alone is true when it
//! has a value (not absent, not false, not empty text). A comparison with an absent value is
//! false, so `o.promised_by < now` is false for an order without a promised date.

use std::cmp::Ordering;

use crate::money::Money;

use super::value::{compare, Type, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    In(Operand, Vec<Operand>),
    /// True when the operand has a value.
    Present(Operand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(String),
    Now,
    Literal(Value),
    Group(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Where a condition reads its values from at run time.
pub trait Scope {
    fn lookup(&self, path: &str) -> Option<Value>;
    fn now(&self) -> Value;
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == '"' || c == '\'' {
            let end = src[i + 1..]
                .find(c)
                .ok_or_else(|| format!("unterminated text starting at column {}", i + 1))?;
            out.push((start, Tok::Str(src[i + 1..i + 1 + end].to_string())));
            i += end + 2;
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'-') {
                i += 1;
            }
            out.push((start, Tok::Num(src[start..i].to_string())));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push((start, Tok::Word(src[start..i].to_string())));
        } else {
            let two = src.get(i..i + 2).unwrap_or("");
            let sym = ["==", "!=", "<=", ">="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["<", ">", "(", ")", "[", "]", ","]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                });
            match sym {
                Some(s) => {
                    i += s.len();
                    out.push((start, Tok::Sym(s)));
                }
                None => return Err(format!("unexpected `{c}` at column {}", i + 1)),
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.toks.get(self.at).map_or(self.len, |(p, _)| *p) + 1
    }

    fn word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(x)) if x == w) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.sym(s) {
            Ok(())
        } else {
            Err(format!("expected `{s}` at column {}", self.column()))
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.word("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.word("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Tok::Sym("==")) => Some(Op::Eq),
            Some(Tok::Sym("!=")) => Some(Op::Ne),
            Some(Tok::Sym("<")) => Some(Op::Lt),
            Some(Tok::Sym(">")) => Some(Op::Gt),
            Some(Tok::Sym("<=")) => Some(Op::Le),
            Some(Tok::Sym(">=")) => Some(Op::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.at += 1;
            return Ok(Expr::Compare(left, op, self.operand()?));
        }
        let negated = matches!(
            (self.peek(), self.toks.get(self.at + 1)),
            (Some(Tok::Word(n)), Some((_, Tok::Word(i)))) if n == "not" && i == "in"
        );
        if negated {
            self.at += 1;
        }
        if self.word("in") {
            self.expect("[")?;
            let mut list = vec![self.operand()?];
            while self.sym(",") {
                list.push(self.operand()?);
            }
            self.expect("]")?;
            let e = Expr::In(left, list);
            return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
        }
        Ok(Expr::Present(left))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let column = self.column();
        let Some((_, tok)) = self.toks.get(self.at).cloned() else {
            return Err(format!(
                "expected a value at column {column}, found the end"
            ));
        };
        self.at += 1;
        match tok {
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(Operand::Group(Box::new(e)))
            }
            Tok::Str(s) => Ok(Operand::Literal(Value::Text(s))),
            Tok::Num(n) => number(&n)
                .map(Operand::Literal)
                .ok_or_else(|| format!("`{n}` at column {column} is not a number, amount or date")),
            Tok::Word(w) => match w.as_str() {
                "now" => Ok(Operand::Now),
                "true" => Ok(Operand::Literal(Value::Bool(true))),
                "false" => Ok(Operand::Literal(Value::Bool(false))),
                "and" | "or" | "not" | "in" => {
                    Err(format!("expected a value at column {column}, found `{w}`"))
                }
                _ if w.split('.').all(|p| !p.is_empty()) => Ok(Operand::Path(w)),
                _ => Err(format!("`{w}` at column {column} is not a path")),
            },
            Tok::Sym(s) => Err(format!("expected a value at column {column}, found `{s}`")),
        }
    }
}

/// `12` a number, `45.99` an amount (at most two decimals), `2026-11-24` a date.
fn number(n: &str) -> Option<Value> {
    if n.matches('-').count() == 2 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        return time::Date::parse(n, format).ok().map(Value::Date);
    }
    if let Some((whole, frac)) = n.split_once('.') {
        if frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let cents = whole
            .parse::<i64>()
            .ok()?
            .checked_mul(100)?
            .checked_add(format!("{frac:0<2}").parse::<i64>().ok()?)?;
        return Some(Value::Money(Money {
            amount_cents: cents,
            currency: String::new(),
        }));
    }
    n.parse().ok().map(Value::Number)
}

/// Parses a condition; the error says what is wrong and at which column.
pub fn parse(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        at: 0,
        len: src.len(),
    };
    let e = p.or()?;
    if p.at < p.toks.len() {
        return Err(format!("unexpected text at column {}", p.column()));
    }
    Ok(e)
}

impl Expr {
    pub fn eval(&self, scope: &dyn Scope) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(scope) || b.eval(scope),
            Expr::And(a, b) => a.eval(scope) && b.eval(scope),
            Expr::Not(a) => !a.eval(scope),
            Expr::Present(o) => match o.value(scope) {
                None | Some(Value::Bool(false)) => false,
                Some(Value::Text(s)) => !s.is_empty(),
                Some(_) => true,
            },
            Expr::Compare(a, op, b) => {
                let (Some(a), Some(b)) = (a.value(scope), b.value(scope)) else {
                    return false;
                };
                let Some(ord) = compare(&a, &b) else {
                    return false;
                };
                match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Le => ord != Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                }
            }
            Expr::In(a, list) => {
                let Some(a) = a.value(scope) else {
                    return false;
                };
                list.iter().any(|o| {
                    o.value(scope)
                        .is_some_and(|v| compare(&a, &v) == Some(Ordering::Equal))
                })
            }
        }
    }

    /// The paths that surely have a value when the condition holds (a comparison with an
    /// absent value is false), for validation: `if = "order"` makes `order` available.
    pub fn asserts(&self) -> Vec<&str> {
        fn op(o: &Operand) -> Vec<&str> {
            match o {
                Operand::Path(p) => vec![p.as_str()],
                _ => Vec::new(),
            }
        }
        match self {
            Expr::And(a, b) => {
                let mut v = a.asserts();
                v.extend(b.asserts());
                v
            }
            Expr::Present(Operand::Group(e)) => e.asserts(),
            Expr::Present(o) => op(o),
            Expr::Compare(a, _, b) => {
                let mut v = op(a);
                v.extend(op(b));
                v
            }
            Expr::In(a, _) => op(a),
            Expr::Or(..) | Expr::Not(_) => Vec::new(),
        }
    }

    /// Every path compared with a text literal, with the literal (`o.status == 'shipped'`,
    /// `o.status in ['a', 'b']`, either side of `==`), for validation: a word the field can
    /// never be is a typo.
    pub fn compared_words(&self) -> Vec<(&str, &str)> {
        fn text(o: &Operand) -> Option<&str> {
            match o {
                Operand::Literal(Value::Text(t)) => Some(t),
                _ => None,
            }
        }
        let mut out = Vec::new();
        self.visit(&mut |e| match e {
            Expr::Compare(Operand::Path(p), _, b) | Expr::Compare(b, _, Operand::Path(p)) => {
                out.extend(text(b).map(|w| (p.as_str(), w)));
            }
            Expr::In(Operand::Path(p), list) => {
                out.extend(list.iter().filter_map(text).map(|w| (p.as_str(), w)));
            }
            _ => {}
        });
        out
    }

    /// `f` on this expression and every one inside it.
    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Not(a) => a.visit(f),
            Expr::Compare(a, _, b) => {
                for o in [a, b] {
                    if let Operand::Group(e) = o {
                        e.visit(f);
                    }
                }
            }
            Expr::In(a, list) => {
                for o in std::iter::once(a).chain(list) {
                    if let Operand::Group(e) = o {
                        e.visit(f);
                    }
                }
            }
            Expr::Present(Operand::Group(e)) => e.visit(f),
            Expr::Present(_) => {}
        }
    }

    /// Every path the condition reads, for validation.
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |o| {
            if let Operand::Path(p) = o {
                out.push(p.as_str());
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Operand)) {
        let op = |o: &'a Operand, f: &mut dyn FnMut(&'a Operand)| {
            f(o);
            if let Operand::Group(e) = o {
                e.walk(f);
            }
        };
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Not(a) => a.walk(f),
            Expr::Present(a) => op(a, f),
            Expr::Compare(a, _, b) => {
                op(a, f);
                op(b, f);
            }
            Expr::In(a, list) => {
                op(a, f);
                for o in list {
                    op(o, f);
                }
            }
        }
    }

    /// Type problems validation can see: comparing text with a date, ordering text, `now`
    /// against a number. `type_of` knows the paths' types (`None`: unknown, not checked).
    pub fn type_errors(&self, type_of: &dyn Fn(&str) -> Option<Type>) -> Vec<String> {
        let mut out = Vec::new();
        self.check(type_of, &mut out);
        out
    }

    fn check(&self, type_of: &dyn Fn(&str) -> Option<Type>, out: &mut Vec<String>) {
        let ty = |o: &Operand, out: &mut Vec<String>| match o {
            Operand::Path(p) => type_of(p),
            Operand::Now => Some(Type::Time),
            Operand::Literal(v) => Some(v.type_of()),
            Operand::Group(e) => {
                e.check(type_of, out);
                Some(Type::Bool)
            }
        };
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.check(type_of, out);
                b.check(type_of, out);
            }
            Expr::Not(a) => a.check(type_of, out),
            Expr::Present(a) => {
                ty(a, out);
            }
            Expr::Compare(a, op, b) => {
                if let (Some(x), Some(y)) = (ty(a, out), ty(b, out)) {
                    if !x.comparable(y) {
                        out.push(format!("compares {} with {}", x.name(), y.name()));
                    } else if !matches!(op, Op::Eq | Op::Ne) && !x.ordered() {
                        out.push(format!("orders {} values, which have no order", x.name()));
                    }
                }
            }
            Expr::In(a, list) => {
                if let Some(x) = ty(a, out) {
                    for o in list {
                        if let Some(y) = ty(o, out) {
                            if !x.comparable(y) {
                                out.push(format!("looks for {} among {}", x.name(), y.name()));
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Operand {
    fn value(&self, scope: &dyn Scope) -> Option<Value> {
        match self {
            Operand::Path(p) => scope.lookup(p),
            Operand::Now => Some(scope.now()),
            Operand::Literal(v) => Some(v.clone()),
            Operand::Group(e) => Some(Value::Bool(e.eval(scope))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use time::macros::{date, datetime};

    struct Vars(BTreeMap<&'static str, Value>);

    impl Scope for Vars {
        fn lookup(&self, path: &str) -> Option<Value> {
            self.0.get(path).cloned()
        }
        fn now(&self) -> Value {
            Value::Time(datetime!(2026-11-24 12:00 UTC))
        }
    }

    fn vars() -> Vars {
        Vars(BTreeMap::from([
            ("o.status", Value::text("in_transit")),
            (
                "o.promised_by",
                Value::Time(datetime!(2026-11-20 12:00 UTC)),
            ),
            (
                "o.total",
                Value::Money(Money {
                    amount_cents: 4599,
                    currency: "USD".into(),
                }),
            ),
            ("count", Value::Number(3)),
        ]))
    }

    fn holds(src: &str) -> bool {
        parse(src).unwrap().eval(&vars())
    }

    #[test]
    fn evaluates_comparisons_lists_and_logic() {
        assert!(holds(
            "o.status in ['in_transit', 'shipped'] and o.promised_by < now"
        ));
        assert!(holds("o.status == \"in_transit\""));
        assert!(!holds("o.status not in ['in_transit']"));
        assert!(holds("o.total > 45.00 and o.total <= 45.99"));
        assert!(!holds("o.total > 45.99"));
        assert!(holds("count >= 3 and not (count > 3)"));
        assert!(holds("o.promised_by < 2026-11-21 or false"));
        assert!(holds("o.status"));
        // Absent values make comparisons false and their negation true.
        assert!(!holds("o.delivered_at < now"));
        assert!(holds("not o.delivered_at"));
        // Values of other types never compare equal.
        assert!(!holds("count == 'three'"));
    }

    #[test]
    fn syntax_errors_say_where() {
        assert_eq!(
            parse("o.status == ").unwrap_err(),
            "expected a value at column 13, found the end"
        );
        assert!(parse("o.status in ['a'")
            .unwrap_err()
            .contains("expected `]`"));
        assert!(parse("a == 'b").unwrap_err().contains("unterminated"));
        assert!(parse("a ~ b").unwrap_err().contains("unexpected `~`"));
        assert!(parse("a b")
            .unwrap_err()
            .contains("unexpected text at column 3"));
        assert!(parse("x > 1.999").unwrap_err().contains("not a number"));
        assert!(parse("x > 2026-13-01").is_err());
        assert_eq!(
            parse("d == 2026-11-24").unwrap(),
            Expr::Compare(
                Operand::Path("d".into()),
                Op::Eq,
                Operand::Literal(Value::Date(date!(2026 - 11 - 24)))
            )
        );
    }

    #[test]
    fn odd_input_is_an_error_never_a_panic() {
        for src in [
            "",
            "(",
            ")",
            "[",
            "a in [",
            "a in []",
            "not",
            "a ==",
            "é == 'ü'",
            "a == 'é",
            "99999999999999999.99 > a",
            "99999999999999999999 > a",
            "1-2-3 < now",
            "a.",
            ".a",
            "a..b",
            "((((a))))",
            "a == b == c",
            "'unterminated",
            "now now",
        ] {
            let _ = parse(src);
        }
        assert!(parse("99999999999999999.99 > a").is_err());
        assert!(parse("((((a))))").is_ok());
    }

    #[test]
    fn types_are_checked_where_known() {
        let types = |p: &str| match p {
            "o.status" => Some(Type::Text),
            "o.promised_by" => Some(Type::Time),
            _ => None,
        };
        let e = parse("o.status < now or o.promised_by == 'x' or o.promised_by < now or x > 1")
            .unwrap();
        assert_eq!(
            e.type_errors(&types),
            vec!["compares text with time", "compares time with text"]
        );
        let e = parse("o.status > 'a'").unwrap();
        assert_eq!(
            e.type_errors(&types),
            vec!["orders text values, which have no order"]
        );
    }
}
