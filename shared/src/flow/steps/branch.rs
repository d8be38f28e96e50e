//! `branch = [{ if = "<condition>", goto = "<id>" }, ..., { goto = "<id>" }]`: the first arm
//! whose condition holds; none holding goes on to the next step.

use super::Fields;
use crate::flow::condition::{self, Expr};
use crate::flow::engine::{Next, Run};
use crate::flow::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub arms: Vec<Arm>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// `None`: always (only the last arm).
    pub condition: Option<Expr>,
    pub goto: Target,
}

impl Branch {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let line = f.line("branch");
        let Some(toml::Value::Array(raw)) = f.table.remove("branch") else {
            f.error(
                "branch",
                "must be a list of { if = \"...\", goto = \"...\" }",
            );
            return None;
        };
        let mut arms = Vec::new();
        let count = raw.len();
        for (i, arm) in raw.into_iter().enumerate() {
            let toml::Value::Table(mut t) = arm else {
                f.error(
                    "branch",
                    format!("arm {}: must be {{ if = \"...\", goto = \"...\" }}", i + 1),
                );
                continue;
            };
            let goto = match t.remove("goto") {
                Some(toml::Value::String(to)) => Target { to, line },
                _ => {
                    f.error(
                        "branch",
                        format!("arm {}: needs `goto` (a step id or \"end\")", i + 1),
                    );
                    continue;
                }
            };
            let condition = match t.remove("if") {
                None if i + 1 < count => {
                    f.error(
                        "branch",
                        format!("arm {}: only the last arm may leave out `if`", i + 1),
                    );
                    continue;
                }
                None => None,
                Some(toml::Value::String(src)) => match condition::parse(&src) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        f.error("branch", format!("arm {}: `{src}`: {e}", i + 1));
                        continue;
                    }
                },
                Some(_) => {
                    f.error("branch", format!("arm {}: `if` must be text", i + 1));
                    continue;
                }
            };
            for k in t.keys() {
                f.error("branch", format!("arm {}: unknown key `{k}`", i + 1));
            }
            arms.push(Arm { condition, goto });
        }
        if count == 0 {
            f.error("branch", "needs at least one arm");
        }
        Some(Branch { arms })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Next {
        self.arms
            .iter()
            .find(|a| a.condition.as_ref().is_none_or(|c| c.eval(&*r)))
            .map_or(Next::Continue, |a| Next::Goto(a.goto.clone()))
    }
}
