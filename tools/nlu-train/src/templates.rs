//! The training templates in `config/bot/examples/en/` (format in its README): parsing, and
//! expansion into example sentences by seeded sampling.

use std::collections::BTreeSet;
use std::path::Path;

use switchboard::nlu::Intent;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Choice(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Sample values for each placeholder, in the shapes customers write them.
fn values(slot: &str) -> Option<&'static [&'static str]> {
    Some(match slot {
        "order" => &[
            "1002",
            "#1002",
            "#48213",
            "A-10021",
            "SB1002",
            "551209874413377",
            "00007612094",
            "ord-77310",
            "#9912",
            "2024-5511",
        ],
        "email" => &[
            "alice@example.com",
            "bob.chen@mail.test",
            "j.doe+shop@company.org",
        ],
        "phone" => &["+1 415 555 0101", "(415) 555-0102", "+44 20 7946 0958"],
        "amount" => &["$45.99", "20 dollars", "€30", "$120", "£7.50", "USD 12"],
        "date" => &[
            "yesterday",
            "last week",
            "Nov 20",
            "11/02",
            "two days ago",
            "monday",
        ],
        "product" => &[
            "wireless mouse",
            "desk lamp",
            "headphones",
            "yoga mat",
            "running shoes",
            "water bottle",
            "espresso grinder",
            "phone case",
            "usb-c cable",
            "laptop stand",
        ],
        "city" => &["Paris", "Tokyo", "Chicago", "Madrid", "Berlin"],
        "country" => &["Canada", "Germany", "Mexico", "Japan"],
        _ => return None,
    })
}

fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(name, _)| name))
}

/// Parses one template line.
pub fn parse(line: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        let (text, after) = rest.split_at(open);
        if text.contains('}') {
            return Err(format!("a '}}' without its '{{' in {line:?}"));
        }
        let close = after
            .find('}')
            .ok_or_else(|| format!("a '{{' without its '}}' in {line:?}"))?;
        let inner = &after[1..close];
        if inner.contains('{') {
            return Err(format!("nested braces in {line:?}"));
        }
        if !text.is_empty() {
            parts.push(Part::Text(text.to_string()));
        }
        parts.push(Part::Choice(inner.split('|').map(str::to_string).collect()));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("a '}}' without its '{{' in {line:?}"));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    for name in placeholders(line) {
        if values(name).is_none() {
            return Err(format!("unknown placeholder <{name}> in {line:?}"));
        }
    }
    Ok(Template { parts })
}

fn tidy(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Template {
    /// A stable number for this template's text (FNV-1a over its parts): with the intent's name
    /// and the seed it seeds the template's own sampling, so adding, removing or moving one
    /// template leaves every other template's examples as they were.
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes.iter().chain(&[0x1f]) {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for p in &self.parts {
            match p {
                Part::Text(t) => {
                    eat(b"text");
                    eat(t.as_bytes());
                }
                Part::Choice(c) => {
                    eat(b"choice");
                    c.iter().for_each(|a| eat(a.as_bytes()));
                }
            }
        }
        h
    }

    /// How many sentences the alternatives make (placeholders not counted), saturating.
    pub fn combinations(&self) -> u64 {
        self.parts.iter().fold(1u64, |n, p| match p {
            Part::Text(_) => n,
            Part::Choice(c) => n.saturating_mul(c.len() as u64),
        })
    }

    fn render(&self, mut pick: impl FnMut(usize) -> usize, rng: &mut fastrand::Rng) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Choice(c) => out.push_str(&c[pick(c.len())]),
            }
        }
        let mut filled = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(open) = rest.find('<') {
            filled.push_str(&rest[..open]);
            match rest[open + 1..].split_once('>') {
                Some((name, after)) if values(name).is_some() => {
                    let v = values(name).expect("checked");
                    filled.push_str(v[rng.usize(..v.len())]);
                    rest = after;
                }
                _ => {
                    filled.push('<');
                    rest = &rest[open + 1..];
                }
            }
        }
        filled.push_str(rest);
        tidy(&filled)
    }

    /// Up to `n` distinct sentences: every one when there are no more than `n`, otherwise a
    /// seeded random draw.
    pub fn sample(&self, n: usize, rng: &mut fastrand::Rng) -> Vec<String> {
        let total = self.combinations();
        let mut out: Vec<String> = Vec::new();
        if total <= n as u64 {
            for mut index in 0..total {
                let s = self.render(
                    |len| {
                        let i = (index % len as u64) as usize;
                        index /= len as u64;
                        i
                    },
                    rng,
                );
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            return out;
        }
        let mut attempts = 0;
        while out.len() < n && attempts < n * 20 {
            attempts += 1;
            let mut fill = rng.fork();
            let s = self.render(|len| rng.usize(..len), &mut fill);
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

/// Every `<intent>.txt` in `dir`, parsed, by file name; a file whose name is not in `intents`
/// (the bundle's intent files) is an error.
pub fn load_dir(
    dir: &Path,
    intents: &BTreeSet<String>,
) -> Result<Vec<(Intent, Vec<Template>)>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !intents.contains(stem) {
            return Err(format!(
                "{}: no intent is called {stem:?} (no intents/{stem}.toml)",
                path.display()
            ));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let templates = text
            .lines()
            .enumerate()
            .map(|(n, l)| (n + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(n, l)| parse(l).map_err(|e| format!("{}:{n}: {e}", path.display())))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((Intent::new(stem), templates));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_optional_parts_and_placeholders() {
        let t = parse("{where is|where's} my {order|package}{| please}").unwrap();
        assert_eq!(t.combinations(), 8);
        let mut rng = fastrand::Rng::with_seed(7);
        let all = t.sample(100, &mut rng);
        assert_eq!(all.len(), 8);
        assert!(all.contains(&"where's my package please".to_string()));
        assert!(
            all.contains(&"where is my order".to_string()),
            "no double space: {all:?}"
        );

        let t = parse("track order <order>").unwrap();
        let s = t.sample(1, &mut rng);
        assert!(
            s[0].starts_with("track order ") && !s[0].contains('<'),
            "{s:?}"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_line() {
        for bad in ["{a|b", "a|b}", "{a|{b}}", "x <nothing>"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn sampling_is_seeded_and_bounded() {
        let t = parse("{a|b|c|d} {e|f|g|h} {i|j|k|l}").unwrap();
        let same = parse("{a|b|c|d} {e|f|g|h} {i|j|k|l}").unwrap();
        assert_eq!(t.fingerprint(), same.fingerprint());
        assert_ne!(
            t.fingerprint(),
            parse("{a|b|c|d} {e|f|g|h} {i|j|k}").unwrap().fingerprint()
        );
        assert_ne!(
            parse("{a}").unwrap().fingerprint(),
            parse("a").unwrap().fingerprint()
        );
        let one = t.sample(10, &mut fastrand::Rng::with_seed(1));
        let again = t.sample(10, &mut fastrand::Rng::with_seed(1));
        assert_eq!(one.len(), 10);
        assert_eq!(one, again);
    }

    #[test]
    fn examples_need_an_intent() {
        let dir = std::env::temp_dir().join(format!("nlu-train-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("greet.txt"), "{hi|hello}\n# a comment\n").unwrap();
        let known: BTreeSet<String> = ["greet".to_string()].into();
        let loaded = load_dir(&dir, &known).unwrap();
        assert_eq!(loaded[0].0.name(), "greet");
        assert_eq!(loaded[0].1.len(), 1);
        let e = load_dir(&dir, &BTreeSet::new()).unwrap_err();
        assert!(e.contains("no intent is called \"greet\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
