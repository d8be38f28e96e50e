//! What is wrong with a bundle, where: every problem names its file, line (when the format has
//! one) and key, and loading collects all of a file's problems instead of stopping at the first,
//! so an operator fixes a file in one pass.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError {
    /// As the operator would open it: the path the bundle was loaded from, joined with the
    /// file's path inside it.
    pub file: String,
    /// 1-based; `None` for problems of a whole file (missing, unreadable).
    pub line: Option<usize>,
    /// The key or field the problem is about (`intents.order_status.flow`, `order.late`), or
    /// empty for the file itself.
    pub key: String,
    pub message: String,
}

impl BundleError {
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems found, in file order; loading fails when it is not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleErrors(pub Vec<BundleError>);

impl BundleErrors {
    pub fn push(&mut self, e: BundleError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found wrong.
    pub fn into_result<T>(self, value: T) -> Result<T, BundleErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for BundleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BundleErrors {}

impl From<BundleError> for BundleErrors {
    fn from(e: BundleError) -> Self {
        Self(vec![e])
    }
}

/// The lines of many offsets in one text: its newlines found once, each line a binary search
/// (a messages file names a line per key; counting from the start for each was most of the
/// time it took to load).
pub struct Lines(Vec<usize>);

impl Lines {
    pub fn new(text: &str) -> Self {
        Self(memchr::memchr_iter(b'\n', text.as_bytes()).collect())
    }

    /// The 1-based line of `byte`, as `line_of` counts it.
    pub fn of(&self, byte: usize) -> usize {
        self.0.partition_point(|&newline| newline < byte) + 1
    }
}

/// The 1-based line of a byte offset in `text` (TOML spans are byte ranges).
pub fn line_of(text: &str, byte: usize) -> usize {
    let end = byte.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The 1-based line where a dotted key path is written in a TOML text
/// (`systems.orders.operations.get_status.path`; a number indexes an array of tables:
/// `steps.2.say`), or of the deepest part of it that is written: a problem with a key that is
/// missing points at the table that should hold it. `None` when the text does not parse or not
/// even the first part is there. Keys holding dots (`fields."total.amount_cents"`) match too.
pub fn line_of_key(text: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
    let mut found = None;
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    let mut i = 0;
    while i < parts.len() {
        if let (Some(DeValue::Array(items)), Ok(n)) = (value, parts[i].parse::<usize>()) {
            let Some(item) = items.get(n) else { break };
            found = Some(line_of(text, item.span().start));
            value = Some(item.get_ref());
            table = match item.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
            i += 1;
            continue;
        }
        let Some(t) = table else { break };
        // The longest run of parts that is one key: `total.amount_cents` before `total`.
        let hit = (i + 1..=parts.len()).rev().find_map(|end| {
            let key = parts[i..end].join(".");
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|kv| (end, kv))
        });
        let Some((end, (k, v))) = hit else { break };
        found = Some(line_of(text, k.span().start));
        value = Some(v.get_ref());
        table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
        i = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_key() {
        let e = BundleError::new(
            "config/bot/messages/en.toml",
            Some(3),
            "order.late",
            "unknown variable {du}",
        );
        assert_eq!(
            e.to_string(),
            "config/bot/messages/en.toml:3: order.late: unknown variable {du}"
        );
        let whole = BundleError::new("bot.toml", None, "", "cannot read: not found");
        assert_eq!(whole.to_string(), "bot.toml: cannot read: not found");
    }

    #[test]
    fn keys_are_found_where_they_are_written() {
        let text = "name = \"shop\"\n\n[systems.orders]\nbase_url = \"x\"\n\n[systems.orders.operations.get]\npath = \"/o\"\nfields.\"total.amount_cents\" = \"/t\"\n\n[[steps]]\nsay = \"a\"\n\n[[steps]]\nsay = \"b\"\n";
        assert_eq!(line_of_key(text, "name"), Some(1));
        assert_eq!(line_of_key(text, "systems.orders.base_url"), Some(4));
        assert_eq!(
            line_of_key(text, "systems.orders.operations.get.path"),
            Some(7)
        );
        assert_eq!(
            line_of_key(
                text,
                "systems.orders.operations.get.fields.total.amount_cents"
            ),
            Some(8)
        );
        assert_eq!(line_of_key(text, "steps.1.say"), Some(14));
        // A key that is not written: its nearest written ancestor.
        assert_eq!(
            line_of_key(text, "systems.orders.operations.get.method"),
            Some(6)
        );
        assert_eq!(line_of_key(text, "nothing.here"), None);
        assert_eq!(line_of_key("not [ toml", "a"), None);
    }

    #[test]
    fn lines_count_from_one() {
        let text = "a = 1\nb = 2\nc = 3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find('b').unwrap()), 2);
        assert_eq!(line_of(text, text.len() + 10), 3);
        let lines = Lines::new(text);
        for byte in 0..text.len() + 10 {
            assert_eq!(lines.of(byte), line_of(text, byte), "byte {byte}");
        }
    }
}
