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

/// The 1-based line of a byte offset in `text` (TOML spans are byte ranges).
pub fn line_of(text: &str, byte: usize) -> usize {
    let end = byte.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
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
    fn lines_count_from_one() {
        let text = "a = 1\nb = 2\nc = 3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, text.find('b').unwrap()), 2);
        assert_eq!(line_of(text, text.len() + 10), 3);
    }
}
