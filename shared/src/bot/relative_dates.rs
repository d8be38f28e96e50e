//! Relative dates ("3 days ago", "el martes pasado", "übermorgen"): the one regex that finds
//! every template a words file lists under `[dates]`, and what each of its alternatives means.
//! The templates are parsed and checked with the rest of the file (`words.rs`); this builds
//! their pattern, on first use: neighbouring alternatives write the placeholders and words they
//! have in common once, and a word's accent forms are one alternation, so the pattern is about
//! half as long as one alternative per form and compiles in about half the time.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use super::pattern::{Found, Pattern};
use super::words::{
    alternation, boundary, compile_or_nothing, forms, literal, split_template, List, Piece,
};

/// Relative dates: one regex of every pattern, and what each alternative means (built on
/// first use, as `words::LazyRegex`).
pub struct Relative {
    source: RelativeSource,
    weekdays: Arc<Vec<Vec<String>>>,
    compiled: OnceLock<(Pattern, Vec<Alternative>)>,
}

impl Relative {
    /// Nothing is built yet: see `RelativeSource`.
    pub(super) fn new(source: RelativeSource, weekdays: Arc<Vec<Vec<String>>>) -> Self {
        Self {
            source,
            weekdays,
            compiled: OnceLock::new(),
        }
    }

    pub fn get(&self) -> (&Pattern, &[Alternative]) {
        let (regex, alternatives) = self.compiled.get_or_init(|| {
            let (pattern, metas) = self.source.pattern(&self.weekdays);
            let regex = compile_or_nothing(&pattern);
            let group = |name: String| regex.group_index(&name);
            let alternatives = metas
                .iter()
                .filter_map(|&(i, kind, slots)| {
                    Some(Alternative {
                        group: group(format!("a{i}"))?,
                        kind,
                        n: slots.n.and_then(|j| group(format!("n{j}"))),
                        days: slots.unit.and_then(|j| group(format!("d{j}"))),
                        weeks: slots.unit.and_then(|j| group(format!("w{j}"))),
                        weekday: slots.weekday.and_then(|j| group(format!("wd{j}"))),
                        weekdays: slots.weekday.map(|_| self.weekdays.clone()),
                    })
                })
                .collect();
            (regex, alternatives)
        });
        (regex, alternatives)
    }
}

/// What the relative-date pattern is built from: the templates in the order they are tried and
/// the placeholders' words. Its text is built on first use too, with compiling it: loading a
/// bundle parses every language's words on the cold start's path, and building the text (the
/// shared parts worked out, es ~50 µs) is work for the warm-up thread.
pub(super) struct RelativeSource {
    pub(super) templates: Vec<(String, DateKind)>,
    pub(super) spelled: Vec<(String, String)>,
    pub(super) numbers: Vec<List>,
    pub(super) days: List,
    pub(super) weeks: List,
}

impl RelativeSource {
    fn pattern(&self, weekdays: &[Vec<String>]) -> (String, Vec<(usize, DateKind, Slots)>) {
        let placeholders = Placeholders::new(
            &self.numbers,
            &self.days,
            &self.weeks,
            weekdays,
            &self.spelled,
        );
        let mut items: Vec<Item> = Vec::new();
        for (template, kind) in &self.templates {
            let more = template_items(template, *kind, &self.spelled, items.len());
            items.extend(more);
        }
        let (pattern, metas) = relative_pattern(&items, &placeholders);
        // No pattern at all: a regex that finds nothing (an empty one would match everywhere).
        if pattern.is_empty() {
            ("[^\\s\\S]".to_string(), metas)
        } else {
            (format!(r"(?i)(?:{pattern})"), metas)
        }
    }
}

pub struct Alternative {
    /// A capture group that takes part in a match only when this alternative is the one found
    /// (its words that it shares with no neighbour: the pattern writes the placeholders and
    /// words neighbouring alternatives have in common once).
    pub group: usize,
    pub kind: DateKind,
    /// The groups of its number, day unit, week unit and weekday, when it has them (perhaps
    /// shared with its neighbours).
    pub n: Option<usize>,
    pub days: Option<usize>,
    pub weeks: Option<usize>,
    pub weekday: Option<usize>,
    /// Each weekday's forms, to tell which one matched (Monday first).
    pub weekdays: Option<Arc<Vec<Vec<String>>>>,
}

impl Alternative {
    /// Which of `alternatives` found `c` (a match of their pattern).
    pub fn of<'a>(alternatives: &'a [Alternative], c: &Found) -> Option<&'a Alternative> {
        alternatives.iter().find(|a| c.group(a.group).is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// A day named by a word, this many days from today.
    Days(i64),
    Ago,
    Ahead,
    /// Seven days back (-1) or ahead (1).
    Week(i64),
    LastWeekday,
    NextWeekday,
    /// A weekday alone: the last one before today.
    Weekday,
    /// A phrase holding a day's word that names no day ("guten Morgen", "por la mañana"): it
    /// is matched so that the word in it is not read as a date.
    NoDay,
}

/// Which numbered groups an alternative's placeholders are read from (`n{j}`, `d{j}`/`w{j}`,
/// `wd{j}`): its own, or those of the neighbours it shares them with.
#[derive(Clone, Copy, Default)]
struct Slots {
    n: Option<usize>,
    unit: Option<usize>,
    weekday: Option<usize>,
}

/// A relative-date template cut for the pattern: its words, each with the forms customers type
/// it in, the spaces between them and its placeholders.
#[derive(Clone, PartialEq)]
enum Token {
    Word(Vec<String>),
    Space,
    Var(String),
}

/// One alternative of the relative-date pattern: a template, or one form of a template whose
/// forms differ in more than one word (mixing those words' forms would find phrases the words
/// file does not list).
struct Item {
    id: usize,
    kind: DateKind,
    tokens: Vec<Token>,
}

impl Item {
    fn has_no_placeholder(&self) -> bool {
        !self.tokens.iter().any(|t| matches!(t, Token::Var(_)))
    }
}

/// What the placeholders stand for: their patterns, and the words they match (for their word
/// boundaries, and to tell whether they match one way).
struct Placeholders {
    numbers: String,
    days: String,
    weeks: String,
    weekdays: String,
    number_forms: Vec<String>,
    unit_forms: Vec<String>,
    weekday_forms: Vec<String>,
    /// When the number, the unit and the weekday match at most one way where they start (see
    /// `matches_one_way`).
    one_way_when: [OneWayWhen; 3],
}

/// When a placeholder matches at most one way where it starts.
#[derive(Clone, Copy)]
struct OneWayWhen {
    /// When a space must follow it: none of its words holds a space.
    space_follows: bool,
    /// Whatever follows: none of its words begins another either.
    always: bool,
}

impl Placeholders {
    fn new(
        numbers: &[List],
        days: &[String],
        weeks: &[String],
        weekdays: &[Vec<String>],
        spelled: &[(String, String)],
    ) -> Self {
        let all_forms = |list: &[String]| -> Vec<String> {
            list.iter().flat_map(|w| forms(w, spelled)).collect()
        };
        let number_forms = all_forms(&numbers.concat());
        let (day_forms, week_forms) = (all_forms(days), all_forms(weeks));
        let weekday_forms: Vec<String> = weekdays.iter().flatten().cloned().collect();
        let folded_days: HashSet<String> = day_forms.iter().map(|w| fold(w)).collect();
        let units_apart = !week_forms.iter().any(|w| folded_days.contains(&fold(w)));
        let unit_forms = [day_forms, week_forms].concat();
        let one_way_when = [
            OneWayWhen {
                space_follows: no_spaces(&number_forms),
                always: false,
            },
            OneWayWhen {
                space_follows: units_apart && no_spaces(&unit_forms),
                always: units_apart && prefix_free(&unit_forms),
            },
            OneWayWhen {
                space_follows: no_spaces(&weekday_forms),
                always: prefix_free(&weekday_forms),
            },
        ];
        Self {
            numbers: alternation(numbers.iter().flatten(), spelled),
            days: alternation(days, spelled),
            weeks: alternation(weeks, spelled),
            weekdays: alternation(weekdays.iter().flatten(), &[]),
            number_forms,
            unit_forms,
            weekday_forms,
            one_way_when,
        }
    }

    fn pattern(&self, name: &str, j: usize) -> String {
        let Placeholders {
            numbers,
            days,
            weeks,
            weekdays,
            ..
        } = self;
        match name {
            "n" => format!(r"(?P<n{j}>[0-9]{{1,3}}|{numbers})"),
            "unit" => format!(r"(?:(?P<d{j}>{days})|(?P<w{j}>{weeks}))"),
            "weekday" => format!(r"(?P<wd{j}>{weekdays})"),
            _ => String::new(),
        }
    }

    fn edge(&self, name: &str, first: bool) -> &'static str {
        let ends = |forms: &[String]| forms.iter().map(|w| end_char(w, first)).collect();
        let ends: Vec<Option<char>> = match name {
            "n" => [ends(&self.number_forms), vec![Some('0')]].concat(),
            "unit" => ends(&self.unit_forms),
            "weekday" => ends(&self.weekday_forms),
            _ => return "",
        };
        boundary(ends)
    }

    /// Whether the placeholder matches at most one way where it starts, so that alternatives
    /// beginning with it can share it without changing which one wins. A number's digits and a
    /// unit's "day" beside "days" match more than one way unless a space must follow; a word
    /// listed as both a day and a week unit always does (its two groups).
    fn matches_one_way(&self, name: &str, space_follows: bool) -> bool {
        let when = match name {
            "n" => self.one_way_when[0],
            "unit" => self.one_way_when[1],
            "weekday" => self.one_way_when[2],
            _ => return false,
        };
        when.always || (space_follows && when.space_follows)
    }
}

fn end_char(word: &str, first: bool) -> Option<char> {
    if first {
        word.chars().next()
    } else {
        word.chars().last()
    }
}

/// Letters as case-insensitive matching compares them ("ſ" as "s"); where it errs, it finds two
/// words alike that are not, which only keeps them apart in the pattern.
fn fold(word: &str) -> String {
    word.to_uppercase().to_lowercase()
}

/// Words without spaces, which all end where a space starts.
fn no_spaces(forms: &[String]) -> bool {
    !forms.iter().any(|w| w.contains(char::is_whitespace))
}

/// Whether none of the words begins another, so that at most one matches where it starts.
fn prefix_free(forms: &[String]) -> bool {
    let folded: Vec<String> = forms.iter().map(|w| fold(w)).collect();
    folded
        .iter()
        .all(|a| !a.is_empty() && !folded.iter().any(|b| b != a && b.starts_with(a.as_str())))
}

/// The template as tokens, each word with the forms `forms_of` gives it.
fn tokenize(template: &str, forms_of: impl Fn(&str) -> Vec<String>) -> Vec<Token> {
    let mut out = Vec::new();
    for piece in split_template(template) {
        match piece {
            Piece::Var(v) => out.push(Token::Var(v.to_string())),
            Piece::Text(t) => {
                for (k, word) in t.split(' ').enumerate() {
                    if k > 0 {
                        out.push(Token::Space);
                    }
                    if !word.is_empty() {
                        out.push(Token::Word(forms_of(word)));
                    }
                }
            }
        }
    }
    out
}

/// The phrases tokens stand for, in the order of their forms, when at most one of their words
/// has more than one form (the forms of two such words would be mixed).
fn spelled_out(tokens: &[Token]) -> Option<Vec<String>> {
    let counts: Vec<usize> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(f) if f.len() > 1 => Some(f.len()),
            _ => None,
        })
        .collect();
    if counts.len() > 1 {
        return None;
    }
    let phrase = |form: usize| -> String {
        tokens
            .iter()
            .map(|t| match t {
                Token::Word(f) => f[form.min(f.len() - 1)].clone(),
                Token::Space => " ".to_string(),
                Token::Var(v) => format!("{{{v}}}"),
            })
            .collect()
    };
    Some(
        (0..counts.first().copied().unwrap_or(1))
            .map(phrase)
            .collect(),
    )
}

/// A template's alternatives: one whose varying word is written in all its forms at once, or,
/// when that would not be the forms `forms` makes of it, one per form as written.
fn template_items(
    template: &str,
    kind: DateKind,
    spelled: &[(String, String)],
    first_id: usize,
) -> Vec<Item> {
    let all = forms(template, spelled);
    let tokens = tokenize(template, |w| forms(w, spelled));
    if spelled_out(&tokens).as_ref() == Some(&all) {
        return vec![Item {
            id: first_id,
            kind,
            tokens,
        }];
    }
    all.iter()
        .enumerate()
        .map(|(k, form)| Item {
            id: first_id + k,
            kind,
            tokens: tokenize(form, |w| vec![w.to_string()]),
        })
        .collect()
}

/// The relative-date alternatives as one pattern (in their order, so which one wins where
/// several match stays as listed) and where each one's groups are. Neighbours that have a
/// placeholder in common share it, with what surrounds it, and neighbours without one share
/// their common words: compiling costs about the pattern's length, and the copies of the
/// number, unit and weekday alternations in every alternative (and in every form of it) were
/// most of it (Spanish, first compile: 2,516 characters, 1.8 ms; shared, 1,294 and 1.0 ms).
fn relative_pattern(
    items: &[Item],
    placeholders: &Placeholders,
) -> (String, Vec<(usize, DateKind, Slots)>) {
    let mut branches = Vec::new();
    let mut metas = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        let mut ends = (0, 0);
        while end < items.len() {
            let (p, s) = shared(&items[start..=end], placeholders);
            let tokens = &items[start].tokens;
            let mut both = tokens[..p].iter().chain(&tokens[tokens.len() - s..]);
            // Alternatives with a placeholder share one (its copies are what costs, and sharing
            // only words could keep a run from sharing it); those without share their words.
            let worth = if items[start..=end].iter().all(Item::has_no_placeholder) {
                both.any(|t| t != &Token::Space)
            } else {
                both.any(|t| matches!(t, Token::Var(_)))
            };
            if !worth {
                break;
            }
            ends = (p, s);
            end += 1;
        }
        let run = &items[start..end];
        branches.push(render_run(run, ends, placeholders));
        metas.extend(run_slots(run, ends));
        start = end;
    }
    (branches.join("|"), metas)
}

/// How many tokens a run of alternatives can write once at its start and at its end. The
/// start only while it matches one way (`(a)(b|c)` tries b and c after a's first way, `ab|ac`
/// tries c after every way of a); the end always (`(a|b)c` is `ac|bc`).
fn shared(run: &[Item], placeholders: &Placeholders) -> (usize, usize) {
    let first = &run[0].tokens;
    let shortest = run.iter().map(|i| i.tokens.len()).min().unwrap_or(0);
    let same = |at: &dyn Fn(&[Token]) -> &Token| run.iter().all(|i| at(&i.tokens) == at(first));
    let mut p = 0;
    while p < shortest && same(&|t| &t[p]) {
        let space_follows = run
            .iter()
            .all(|i| i.tokens.get(p + 1) == Some(&Token::Space));
        if !token_matches_one_way(&first[p], placeholders, space_follows) {
            break;
        }
        p += 1;
    }
    let mut s = 0;
    while p + s < shortest && same(&|t| &t[t.len() - 1 - s]) {
        s += 1;
    }
    // An alternative that is all shared takes its word boundary from a shared token, which must
    // then be the same in all its forms.
    let bare = run.iter().any(|i| i.tokens.len() == p + s);
    let edge_ok = match (p, s) {
        (0, 0) => true,
        (_, 0) => uniform_edge(&first[p - 1], false, placeholders).is_some(),
        (0, _) => uniform_edge(&first[first.len() - s], true, placeholders).is_some(),
        _ => true,
    };
    if bare && !edge_ok {
        return (0, 0);
    }
    (p, s)
}

/// Whether a token matches at most one way where it starts (`Placeholders::matches_one_way`
/// for a placeholder): a space does, and a word whose forms end where a following space
/// starts, or of one form, or none of whose forms begins another.
fn token_matches_one_way(token: &Token, placeholders: &Placeholders, space_follows: bool) -> bool {
    match token {
        Token::Space => true,
        Token::Word(forms) => {
            (space_follows && no_spaces(forms)) || forms.len() == 1 || prefix_free(forms)
        }
        Token::Var(name) => placeholders.matches_one_way(name, space_follows),
    }
}

/// The word boundary at a token's start (`first`) or end, when all its forms have the same.
fn uniform_edge(token: &Token, first: bool, placeholders: &Placeholders) -> Option<&'static str> {
    match token {
        Token::Space => Some(""),
        Token::Var(name) => Some(placeholders.edge(name, first)),
        Token::Word(forms) => {
            let edges: Vec<&str> = forms
                .iter()
                .map(|w| boundary([end_char(w, first)]))
                .collect();
            edges.iter().all(|e| *e == edges[0]).then_some(edges[0])
        }
    }
}

/// A run of alternatives: what they share written once around an alternation of the rest of
/// each, in its own group.
fn render_run(run: &[Item], (p, s): (usize, usize), placeholders: &Placeholders) -> String {
    let first = &run[0].tokens;
    let j = run[0].id;
    let head = render_tokens(&first[..p], placeholders, j, true, false);
    let tail = render_tokens(&first[first.len() - s..], placeholders, j, false, true);
    let own: Vec<String> = run
        .iter()
        .map(|item| {
            let rest = &item.tokens[p..item.tokens.len() - s];
            let mut body = render_tokens(rest, placeholders, item.id, p == 0, s == 0);
            if rest.is_empty() {
                if p == 0 && s > 0 {
                    body.push_str(
                        uniform_edge(&first[first.len() - s], true, placeholders).unwrap_or(""),
                    );
                }
                if s == 0 && p > 0 {
                    body.push_str(uniform_edge(&first[p - 1], false, placeholders).unwrap_or(""));
                }
            }
            format!("(?P<a{}>{body})", item.id)
        })
        .collect();
    if own.len() == 1 {
        format!("{head}{}{tail}", own[0])
    } else {
        format!("{head}(?:{}){tail}", own.join("|"))
    }
}

/// Tokens as a pattern, placeholders in groups numbered `j`, with the word boundary at the
/// first token's start and at the last one's end when asked.
fn render_tokens(
    tokens: &[Token],
    placeholders: &Placeholders,
    j: usize,
    start: bool,
    end: bool,
) -> String {
    let last = tokens.len().saturating_sub(1);
    let mut out = String::new();
    for (k, token) in tokens.iter().enumerate() {
        let (start, end) = (start && k == 0, end && k == last);
        match token {
            Token::Space => out.push_str(r"\s+"),
            Token::Word(forms) => out.push_str(&word_forms(forms, start, end)),
            Token::Var(name) => {
                if start {
                    out.push_str(placeholders.edge(name, true));
                }
                out.push_str(&placeholders.pattern(name, j));
                if end {
                    out.push_str(placeholders.edge(name, false));
                }
            }
        }
    }
    out
}

/// A word in all its forms, the letters they share written once ("pr(?:ó|o)ximo"), each form
/// with its own word boundary where theirs differ ("übermorgen" has none, "ubermorgen" one).
fn word_forms(forms: &[String], start: bool, end: bool) -> String {
    let edge = |w: &str, first: bool, asked: bool| {
        if asked {
            boundary([end_char(w, first)])
        } else {
            ""
        }
    };
    // Most words have one form: nothing to share (bundle load builds every language's).
    if let [word] = forms {
        let (s, e) = (edge(word, true, start), edge(word, false, end));
        return format!("{s}{}{e}", literal(word));
    }
    let starts: Vec<&str> = forms.iter().map(|w| edge(w, true, start)).collect();
    let ends: Vec<&str> = forms.iter().map(|w| edge(w, false, end)).collect();
    let (same_start, same_end) = (
        starts.iter().all(|e| *e == starts[0]),
        ends.iter().all(|e| *e == ends[0]),
    );
    let chars: Vec<Vec<char>> = forms.iter().map(|w| w.chars().collect()).collect();
    let shortest = chars.iter().map(Vec::len).min().unwrap_or(0);
    let common = |at: &dyn Fn(&[char]) -> char| chars.iter().all(|c| at(c) == at(&chars[0]));
    let mut lead = 0;
    while lead < shortest && common(&|c| c[lead]) {
        lead += 1;
    }
    let mut trail = 0;
    while lead + trail < shortest && common(&|c| c[c.len() - 1 - trail]) {
        trail += 1;
    }
    let text = |c: &[char]| literal(&c.iter().collect::<String>());
    let first = &chars[0];
    let middles: Vec<String> = chars
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (s, e) = (
                if same_start { "" } else { starts[k] },
                if same_end { "" } else { ends[k] },
            );
            format!("{s}{}{e}", text(&c[lead..c.len() - trail]))
        })
        .collect();
    let middle = if middles.len() == 1 {
        middles[0].clone()
    } else {
        format!("(?:{})", middles.join("|"))
    };
    format!(
        "{}{}{middle}{}{}",
        if same_start { starts[0] } else { "" },
        text(&first[..lead]),
        text(&first[first.len() - trail..]),
        if same_end { ends[0] } else { "" },
    )
}

/// Where each alternative of a run reads its placeholders: the run's groups for those it
/// shares, its own for the others.
fn run_slots(run: &[Item], (p, s): (usize, usize)) -> Vec<(usize, DateKind, Slots)> {
    run.iter()
        .map(|item| {
            let mut slots = Slots::default();
            let len = item.tokens.len();
            for (k, token) in item.tokens.iter().enumerate() {
                let j = if k < p || k >= len - s {
                    run[0].id
                } else {
                    item.id
                };
                match token {
                    Token::Var(v) if v == "n" => slots.n = Some(j),
                    Token::Var(v) if v == "unit" => slots.unit = Some(j),
                    Token::Var(v) if v == "weekday" => slots.weekday = Some(j),
                    _ => {}
                }
            }
            (item.id, item.kind, slots)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::words::{default_words, lower, without_accents};

    /// A relative date as read: its text, kind, number, whether its unit is weeks, and weekday
    /// (Monday 0).
    type Read = (String, DateKind, Option<i64>, Option<bool>, Option<usize>);

    fn relative_dates(lang: &str, text: &str) -> Vec<Read> {
        let words = default_words(lang).unwrap().unwrap();
        let (pattern, alternatives) = words.relative.get();
        pattern
            .captures_iter(text)
            .map(|c| {
                let alt = Alternative::of(alternatives, &c).unwrap();
                let group = |g: Option<usize>| g.and_then(|g| c.group(g));
                let weekday = group(alt.weekday).map(|w| {
                    let w = without_accents(&lower(w));
                    let all = alt.weekdays.as_ref().unwrap();
                    all.iter().position(|forms| forms.contains(&w)).unwrap()
                });
                (
                    text[c.range()].to_string(),
                    alt.kind,
                    group(alt.n).and_then(|n| words.number(n)),
                    group(alt.n).map(|_| group(alt.weeks).is_some()),
                    weekday,
                )
            })
            .collect()
    }

    /// Pins what each language's relative dates read as, with and without accents, in capitals,
    /// numbers as digits and words, weekdays alone and with a word, and where a phrase that
    /// names no day or a longer pattern wins.
    #[test]
    fn relative_dates_as_the_words_files_list_them() {
        use DateKind::*;
        let d = |t: &str, k, n, weeks, wd| (t.to_string(), k, n, weeks, wd);
        let cases = [
            (
                "en",
                "Ordered 3 days ago, due in TWO weeks; last Friday or Next monday? Yesterday",
                vec![
                    d("3 days ago", Ago, Some(3), Some(false), None),
                    d("in TWO weeks", Ahead, Some(2), Some(true), None),
                    d("last Friday", LastWeekday, None, None, Some(4)),
                    d("Next monday", NextWeekday, None, None, Some(0)),
                    d("Yesterday", Days(-1), None, None, None),
                ],
            ),
            (
                "es",
                "el martes pasado, EL PROXIMO SÁBADO, el sabado que viene, el Miércoles, \
                 hace dos semanas, dentro de 3 días, por la mañana, Pasado Manana, la última semana",
                vec![
                    d("el martes pasado", LastWeekday, None, None, Some(1)),
                    d("EL PROXIMO SÁBADO", NextWeekday, None, None, Some(5)),
                    d("el sabado que viene", NextWeekday, None, None, Some(5)),
                    d("el Miércoles", Weekday, None, None, Some(2)),
                    d("hace dos semanas", Ago, Some(2), Some(true), None),
                    d("dentro de 3 días", Ahead, Some(3), Some(false), None),
                    d("por la mañana", NoDay, None, None, None),
                    d("Pasado Manana", Days(2), None, None, None),
                    d("la última semana", Week(-1), None, None, None),
                ],
            ),
            (
                "fr",
                "Il y a deux jours, ca fait 3 semaines, ça fait une semaine, d'ici 2 jours, \
                 mardi dernier, Vendredi PROCHAIN, lundi, APRÈS-DEMAIN, apres demain",
                vec![
                    d("Il y a deux jours", Ago, Some(2), Some(false), None),
                    d("ca fait 3 semaines", Ago, Some(3), Some(true), None),
                    d("ça fait une semaine", Ago, Some(1), Some(true), None),
                    d("d'ici 2 jours", Ahead, Some(2), Some(false), None),
                    d("mardi dernier", LastWeekday, None, None, Some(1)),
                    d("Vendredi PROCHAIN", NextWeekday, None, None, Some(4)),
                    d("lundi", Weekday, None, None, Some(0)),
                    d("APRÈS-DEMAIN", Days(2), None, None, None),
                    d("apres demain", Days(2), None, None, None),
                ],
            ),
            (
                "de",
                "Guten Morgen! vor zwei Tagen, in 3 Wochen, am Dienstag, am nächsten Freitag, \
                 naechsten Montag, letzten SONNTAG, Übermorgen, uebermorgen, nächste Woche",
                vec![
                    d("Guten Morgen", NoDay, None, None, None),
                    d("vor zwei Tagen", Ago, Some(2), Some(false), None),
                    d("in 3 Wochen", Ahead, Some(3), Some(true), None),
                    d("am Dienstag", Weekday, None, None, Some(1)),
                    d("am nächsten Freitag", NextWeekday, None, None, Some(4)),
                    d("naechsten Montag", NextWeekday, None, None, Some(0)),
                    d("letzten SONNTAG", LastWeekday, None, None, Some(6)),
                    d("Übermorgen", Days(2), None, None, None),
                    d("uebermorgen", Days(2), None, None, None),
                    d("nächste Woche", Week(1), None, None, None),
                ],
            ),
        ];
        for (lang, text, want) in cases {
            assert_eq!(relative_dates(lang, text), want, "{lang}");
        }
        // A word glued to a date's word is no date ("mañanas", "xheute").
        assert!(relative_dates("es", "las mañanas").is_empty());
        assert!(relative_dates("de", "xheute").is_empty());
    }

    /// What words.rs built before neighbouring alternatives shared anything (commit d8ad181):
    /// one alternative per form of each template, every placeholder written out in it. Plainly
    /// right and twice as long: the shared pattern must find what it finds.
    fn unshared(relative: &Relative) -> (Pattern, Vec<Alternative>) {
        let source = &relative.source;
        let spelled = &source.spelled;
        let number_words = alternation(source.numbers.iter().flatten(), spelled);
        let days = alternation(&source.days, spelled);
        let weeks = alternation(&source.weeks, spelled);
        let weekday_names = alternation(relative.weekdays.iter().flatten(), &[]);
        let number_forms: Vec<String> = source
            .numbers
            .iter()
            .flatten()
            .flat_map(|w| forms(w, spelled))
            .chain(["0".to_string()])
            .collect();
        let unit_forms: Vec<String> = source
            .days
            .iter()
            .chain(&source.weeks)
            .flat_map(|w| forms(w, spelled))
            .collect();
        let weekday_forms: Vec<String> = relative.weekdays.iter().flatten().cloned().collect();
        let edge = |piece: Option<&Piece>, first: bool| -> &'static str {
            let pick = |w: &str| end_char(w, first);
            match piece {
                Some(Piece::Text(t)) => boundary([pick(t)]),
                Some(Piece::Var("n")) => boundary(number_forms.iter().map(|w| pick(w))),
                Some(Piece::Var("unit")) => boundary(unit_forms.iter().map(|w| pick(w))),
                Some(Piece::Var("weekday")) => boundary(weekday_forms.iter().map(|w| pick(w))),
                _ => "",
            }
        };
        let mut pattern = String::new();
        let mut metas = Vec::new();
        let mut i = 0;
        for (template, kind) in &source.templates {
            for form in forms(template, spelled) {
                if !pattern.is_empty() {
                    pattern.push('|');
                }
                let pieces = split_template(&form);
                let (start, end) = (edge(pieces.first(), true), edge(pieces.last(), false));
                let mut body = String::new();
                let mut has = (false, false, false);
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => body.push_str(&literal(t)),
                        Piece::Var("n") => {
                            has.0 = true;
                            body.push_str(&format!(r"(?P<n{i}>[0-9]{{1,3}}|{number_words})"));
                        }
                        Piece::Var("unit") => {
                            has.1 = true;
                            body.push_str(&format!(r"(?:(?P<d{i}>{days})|(?P<w{i}>{weeks}))"));
                        }
                        Piece::Var("weekday") => {
                            has.2 = true;
                            body.push_str(&format!(r"(?P<wd{i}>{weekday_names})"));
                        }
                        Piece::Var(_) => {}
                    }
                }
                pattern.push_str(&format!("{start}(?P<a{i}>{body}){end}"));
                metas.push((i, *kind, has));
                i += 1;
            }
        }
        let regex = Pattern::new(&format!(r"(?i)(?:{pattern})")).unwrap();
        let group = |name: String| regex.group_index(&name);
        let alternatives = metas
            .iter()
            .map(|&(i, kind, has)| Alternative {
                group: group(format!("a{i}")).unwrap(),
                kind,
                n: has.0.then(|| group(format!("n{i}"))).flatten(),
                days: has.1.then(|| group(format!("d{i}"))).flatten(),
                weeks: has.1.then(|| group(format!("w{i}"))).flatten(),
                weekday: has.2.then(|| group(format!("wd{i}"))).flatten(),
                weekdays: has.2.then(|| relative.weekdays.clone()),
            })
            .collect();
        (regex, alternatives)
    }

    /// A match as compared: its span, kind, number's text, whether a day and a week unit
    /// matched, and the weekday's text.
    type Seen<'t> = (
        std::ops::Range<usize>,
        DateKind,
        Option<&'t str>,
        (bool, bool),
        Option<&'t str>,
    );

    fn seen<'t>(
        pattern: &'t Pattern,
        alternatives: &[Alternative],
        text: &'t str,
    ) -> Vec<Seen<'t>> {
        pattern
            .captures_iter(text)
            .map(|c| {
                let alt = Alternative::of(alternatives, &c)
                    .unwrap_or_else(|| panic!("no alternative's group in {text:?}"));
                let group = |g: Option<usize>| g.and_then(|g| c.group(g));
                (
                    c.range(),
                    alt.kind,
                    group(alt.n),
                    (group(alt.days).is_some(), group(alt.weeks).is_some()),
                    group(alt.weekday),
                )
            })
            .collect()
    }

    fn pick<'a>(rng: &mut fastrand::Rng, list: &'a [String]) -> &'a str {
        &list[rng.usize(..list.len())]
    }

    /// Text made of a words file's own date words: its templates filled in (numbers as digits
    /// and words, every unit and weekday), their words loose and cut short, between fillers and
    /// odd separators, in random case, with accents dropped, respelled or added.
    struct Texts<'a> {
        rng: fastrand::Rng,
        source: &'a RelativeSource,
        weekdays: Vec<String>,
        loose: Vec<String>,
    }

    impl<'a> Texts<'a> {
        fn new(relative: &'a Relative, seed: u64) -> Self {
            let source = &relative.source;
            let weekdays: Vec<String> = relative.weekdays.iter().flatten().cloned().collect();
            let mut loose: Vec<String> = source
                .templates
                .iter()
                .flat_map(|(t, _)| split_template(t))
                .filter_map(|p| match p {
                    Piece::Text(t) => Some(t),
                    Piece::Var(_) => None,
                })
                .flat_map(|t| t.split(' '))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            loose.extend(source.numbers.iter().flatten().cloned());
            loose.extend(source.days.iter().chain(&source.weeks).cloned());
            loose.extend(weekdays.iter().cloned());
            Self {
                rng: fastrand::Rng::with_seed(seed),
                source,
                weekdays,
                loose,
            }
        }

        fn number(&mut self) -> String {
            match self.rng.u8(..4) {
                0 => self.rng.u32(..10).to_string(),
                1 => self.rng.u32(..10_000).to_string(),
                _ => pick(&mut self.rng, &self.source.numbers.concat()).to_string(),
            }
        }

        fn filled(&mut self) -> String {
            let k = self.rng.usize(..self.source.templates.len());
            let template = self.source.templates[k].0.clone();
            let mut out = String::new();
            for piece in split_template(&template) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Var("n") => out.push_str(&self.number()),
                    Piece::Var("unit") => {
                        let units = [&self.source.days[..], &self.source.weeks].concat();
                        out.push_str(pick(&mut self.rng, &units));
                    }
                    Piece::Var(_) => out.push_str(pick(&mut self.rng, &self.weekdays)),
                }
            }
            out
        }

        fn piece(&mut self) -> String {
            let mut piece = match self.rng.u8(..10) {
                0..=4 => self.filled(),
                5..=7 => pick(&mut self.rng, &self.loose).to_string(),
                8 => self.number(),
                _ => ["x", "a", "le", "am", "de", "ß", "é", "0", "y", "'"][self.rng.usize(..10)]
                    .to_string(),
            };
            if self.rng.u8(..4) == 0 {
                let all = forms(&piece, &self.source.spelled);
                piece = pick(&mut self.rng, &all).to_string();
            }
            if self.rng.u8(..8) == 0 {
                let accented = |c: char| match c {
                    'a' => 'á',
                    'e' => 'é',
                    'o' => 'ö',
                    'u' => 'ü',
                    'n' => 'ñ',
                    c => c,
                };
                piece = piece
                    .chars()
                    .map(|c| if self.rng.bool() { accented(c) } else { c })
                    .collect();
            }
            if self.rng.u8(..8) == 0 {
                let keep = piece.chars().count().saturating_sub(1);
                piece = piece.chars().take(keep).collect();
            }
            match self.rng.u8(..6) {
                0 => piece.to_uppercase(),
                1 => piece
                    .chars()
                    .map(|c| {
                        if self.rng.bool() {
                            c.to_uppercase().collect::<String>()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect(),
                _ => piece,
            }
        }

        fn text(&mut self) -> String {
            const BETWEEN: [&str; 10] = [" ", " ", " ", "  ", ", ", "", "-", "'", ". ", "\n"];
            let mut out = String::new();
            for k in 0..self.rng.usize(1..6) {
                if k > 0 {
                    out.push_str(BETWEEN[self.rng.usize(..BETWEEN.len())]);
                }
                out.push_str(&self.piece());
            }
            out
        }
    }

    /// The shared pattern finds what one alternative per form with every placeholder written
    /// out finds, in each shipped words file: sharing changes the pattern's length, not what it
    /// reads.
    #[test]
    fn the_shared_pattern_finds_what_the_unshared_one_does() {
        // Enough to meet every template in many forms; matching is most of the test's time
        // (debug build, ~0.4 s for the four languages).
        const TEXTS: usize = 2000;
        for (seed, lang) in ["en", "es", "fr", "de"].into_iter().enumerate() {
            let words = default_words(lang).unwrap().unwrap();
            let (new, new_alternatives) = words.relative.get();
            let (old, old_alternatives) = unshared(&words.relative);
            let mut texts = Texts::new(&words.relative, 7 + seed as u64);
            let mut found = 0;
            for _ in 0..TEXTS {
                let text = texts.text();
                let want = seen(&old, &old_alternatives, &text);
                assert_eq!(seen(new, new_alternatives, &text), want, "{lang}: {text:?}");
                found += usize::from(!want.is_empty());
            }
            // Most texts hold a date: the comparison is not of nothing with nothing.
            assert!(
                found > TEXTS / 2,
                "{lang}: {found} of {TEXTS} texts hold a date"
            );
        }
    }
}
