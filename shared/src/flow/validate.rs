//! Checks a parsed flow against its bundle before any customer reaches it; every problem is
//! collected with file, line and key:
//!
//! - messages exist, and every variable a message uses is available at that step on every
//!   path to it (a slot asked for, a field bound, a `vars` entry; a field the system may leave
//!   empty only where a branch has checked it);
//! - slots exist in the bundle and are declared in the flow's `slots`;
//! - operations exist and the bundle allows them; `call` reads one record;
//! - actions exist, get their inputs, and `on` names only their outcomes;
//! - targets name steps; every step is reachable;
//! - no loop can run without a step that waits for the customer (an error: such a flow would
//!   spin within one turn);
//! - conditions name known paths and compare values of compatible types, and a status only
//!   with words it can be;
//! - a flow that says `needs_account = false` reads and writes no customer's records.

use std::collections::{BTreeMap, BTreeSet};

use crate::bot::error::{BundleError, BundleErrors};

use super::actions::Actions;
use super::catalog::{FlowCatalog, Operation};
use super::steps::job::JobSpec;
use super::steps::StepKind;
use super::template::Template;
use super::value::Type;
use super::{Flow, END};

type Names = BTreeSet<String>;

struct Check<'a> {
    flow: &'a Flow,
    catalog: &'a dyn FlowCatalog,
    actions: &'a Actions,
    errors: BundleErrors,
    /// Bound paths (`o.carrier`) the system may leave empty.
    optional: Names,
    /// Bound paths whose value is one of these words (`o.status`).
    words: BTreeMap<String, Vec<String>>,
    /// `into` names of calls that were refused (an unknown operation, …): their fields are
    /// unknown, so what the steps after them use of it is not reported again — the refused
    /// call is the one problem to fix.
    unresolved: Names,
}

impl Check<'_> {
    /// `sub.status` where `sub` is a refused call's binding.
    fn is_unresolved(&self, path: &str) -> bool {
        path.split_once('.')
            .is_some_and(|(into, _)| self.unresolved.contains(into))
    }

    fn error(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(BundleError::new(
            self.flow.file.clone(),
            Some(line),
            key,
            message,
        ));
    }
}

/// Validates `flow`; `Ok` when nothing is wrong.
pub fn validate(
    flow: &Flow,
    catalog: &dyn FlowCatalog,
    actions: &Actions,
) -> Result<(), BundleErrors> {
    let mut c = Check {
        flow,
        catalog,
        actions,
        errors: BundleErrors::default(),
        optional: Names::new(),
        words: BTreeMap::new(),
        unresolved: Names::new(),
    };
    for s in &flow.slots {
        if catalog.slot(s).is_none() && !flow.inputs.contains(s) {
            c.error(1, s, "no such slot in the bundle (bot.toml [slots])");
        }
    }
    if !flow.needs_account {
        no_account(&mut c);
    }
    let bindings = bindings(&mut c);
    let edges = edges(&mut c);
    reachability(&mut c, &edges);
    loops(&mut c, &edges);
    let avail = availability(flow, &bindings, &c.optional, &edges, actions);
    for (i, names) in avail.iter().enumerate() {
        // Unreachable steps are reported as such, not for what they lack.
        if let Some(names) = names {
            check_step(&mut c, i, names, &bindings);
        }
    }
    c.errors.into_result(())
}

/// A flow for people who may have no account (a channel user not linked to a customer yet)
/// must not reach a customer's records: the engine would run it for them. Deliberately strict
/// about `call`: an operation's inputs do not say whose record it reads (an `order_id` is
/// someone's order), so reads go through actions that declare they need no account.
fn no_account(c: &mut Check<'_>) {
    const WHY: &str = "a flow with `needs_account = false` runs for people not known to be a \
                       customer";
    if c.flow.inputs.iter().any(|i| i == super::CUSTOMER_ID) {
        c.error(
            1,
            super::CUSTOMER_ID,
            format!("is a customer's id, and {WHY}"),
        );
    }
    for step in &c.flow.steps {
        let (key, what) = match &step.kind {
            StepKind::Call(call) => (
                call.operation.clone(),
                "`call` reads the company's records, which may be a customer's",
            ),
            StepKind::Action(a) if c.actions.get(&a.name).is_some_and(|x| x.needs_account()) => {
                (a.name.clone(), "this action reads a customer's own records")
            }
            StepKind::Job(job) => match &job.spec {
                JobSpec::Handoff { .. } => continue,
                JobSpec::Refund { .. } => ("job".into(), "a refund is a customer's"),
                JobSpec::Email { .. } => ("job".into(), "the email goes to a customer's address"),
                JobSpec::Connector { .. } => (
                    "job".into(),
                    "a connector write changes the company's records",
                ),
            },
            _ => continue,
        };
        let line = step.line;
        c.error(line, &key, format!("{what}, and {WHY}"));
    }
}

/// Binding name -> its fields' types, from every `call` and `action` with `into`.
fn bindings(c: &mut Check<'_>) -> BTreeMap<String, Vec<(String, Type)>> {
    let mut out: BTreeMap<String, Vec<(String, Type)>> = BTreeMap::new();
    for step in &c.flow.steps {
        let (into, fields) = match &step.kind {
            StepKind::Call(call) => {
                let fields = match c.catalog.operation(&call.operation) {
                    Operation::Allowed {
                        fields: Some(fields),
                        optional,
                        words,
                        inputs,
                    } => {
                        if let Some(into) = &call.into {
                            let path = |f: &String| format!("{into}.{f}");
                            c.optional.extend(optional.iter().map(path));
                            c.words
                                .extend(words.iter().map(|(f, w)| (path(f), w.clone())));
                        }
                        check_inputs(
                            c,
                            step.line,
                            &call.operation,
                            &inputs,
                            call.with.keys(),
                            &[],
                        );
                        fields
                    }
                    refused => {
                        let why = match refused {
                            Operation::Unknown => {
                                "no such operation (not built in, and no connector file declares it)"
                                    .to_string()
                            }
                            Operation::NotAllowed => {
                                "not allowed: add it to bot.toml [connectors] operations".into()
                            }
                            _ => "`call` reads one record; lists are read by actions, writes are jobs"
                                .into(),
                        };
                        c.error(step.line, &call.operation, why);
                        c.unresolved.extend(call.into.clone());
                        continue;
                    }
                };
                (&call.into, fields)
            }
            StepKind::Action(a) => match c.actions.get(&a.name) {
                Some(action) => {
                    if let Some(into) = &a.into {
                        c.optional
                            .extend(action.may_be_empty().iter().map(|f| format!("{into}.{f}")));
                    }
                    (
                        &a.into,
                        action
                            .binds()
                            .iter()
                            .map(|(n, t)| (n.to_string(), *t))
                            .collect(),
                    )
                }
                None => {
                    let known: Vec<&str> = c.actions.names().collect();
                    c.error(
                        step.line,
                        &a.name,
                        format!("no such action (known: {})", known.join(", ")),
                    );
                    continue;
                }
            },
            _ => continue,
        };
        if let Some(into) = into {
            if into.contains('.') || into.is_empty() {
                c.error(step.line, into, "`into` is a plain name");
            }
            out.entry(into.clone()).or_default().extend(fields);
        }
    }
    out
}

/// Where a step may go: the next step (`None`: the end), whether what the step defines
/// holds there, and what a branch's condition guarantees.
struct Edge {
    to: Option<usize>,
    carries: bool,
    adds: Names,
}

type Edges = Vec<Vec<Edge>>;

fn edges(c: &mut Check<'_>) -> Edges {
    let n = c.flow.steps.len();
    let mut all = Vec::with_capacity(n);
    for (i, step) in c.flow.steps.iter().enumerate() {
        let mut out = Vec::new();
        let edge = |to, carries, adds| Edge { to, carries, adds };
        if step.kind.falls_through() {
            match &step.next {
                None => out.push(edge((i + 1 < n).then_some(i + 1), true, Names::new())),
                Some(t) if t.to == END => out.push(edge(None, true, Names::new())),
                Some(t) => match c.flow.index_of(t) {
                    Some(j) => out.push(edge(Some(j), true, Names::new())),
                    None => c.error(t.line, &t.to, "no step has this id"),
                },
            }
        }
        // A read that found nothing (or failed) bound nothing.
        let defines_on_targets = !matches!(step.kind, StepKind::Call(_));
        let guarantees: Vec<Names> = match &step.kind {
            StepKind::Branch(b) => b
                .arms
                .iter()
                .map(|a| {
                    a.condition
                        .iter()
                        .flat_map(|e| e.asserts())
                        .map(str::to_string)
                        .collect()
                })
                .collect(),
            _ => Vec::new(),
        };
        for (k, t) in step.kind.targets().into_iter().enumerate() {
            let adds = guarantees.get(k).cloned().unwrap_or_default();
            if t.to == END {
                out.push(edge(None, defines_on_targets, adds));
                continue;
            }
            match c.flow.index_of(t) {
                Some(j) => out.push(edge(Some(j), defines_on_targets, adds)),
                None => c.error(t.line, &t.to, "no step has this id"),
            }
        }
        all.push(out);
    }
    all
}

fn reachability(c: &mut Check<'_>, edges: &Edges) {
    let n = c.flow.steps.len();
    let mut seen = vec![false; n];
    let mut todo = vec![0];
    while let Some(i) = todo.pop() {
        if i >= n || seen[i] {
            continue;
        }
        seen[i] = true;
        todo.extend(edges[i].iter().filter_map(|e| e.to));
    }
    for (i, s) in c.flow.steps.iter().enumerate() {
        if !seen[i] {
            let key = s.id.clone().unwrap_or_else(|| s.kind.name().to_string());
            c.error(s.line, &key, "unreachable: no step leads here");
        }
    }
}

/// A cycle through steps none of which waits would run forever in one turn.
fn loops(c: &mut Check<'_>, edges: &Edges) {
    let steps = &c.flow.steps;
    // 0 new, 1 on the path, 2 done.
    let mut mark = vec![0u8; steps.len()];
    let mut found = BTreeSet::new();
    fn dfs(
        i: usize,
        steps: &[super::Step],
        edges: &Edges,
        mark: &mut [u8],
        found: &mut BTreeSet<usize>,
    ) {
        mark[i] = 1;
        for e in &edges[i] {
            let Some(j) = e.to else { continue };
            if steps[j].kind.waits() {
                continue;
            }
            match mark[j] {
                0 => dfs(j, steps, edges, mark, found),
                1 => {
                    found.insert(j);
                }
                _ => {}
            }
        }
        mark[i] = 2;
    }
    for i in 0..steps.len() {
        if mark[i] == 0 && !steps[i].kind.waits() {
            dfs(i, steps, edges, &mut mark, &mut found);
        }
    }
    for i in found {
        let s = &steps[i];
        let key = s.id.clone().unwrap_or_else(|| s.kind.name().to_string());
        c.error(
            s.line,
            &key,
            "a loop through here never asks the customer anything: it would run forever",
        );
    }
}

/// What a step makes available to the steps after it: slot names and `binding.field` paths
/// (not those the system may leave empty: a branch on one makes it available on its arm).
fn defines(
    step: &StepKind,
    bindings: &BTreeMap<String, Vec<(String, Type)>>,
    optional: &Names,
    actions: &Actions,
) -> Names {
    let mut out = Names::new();
    let bound = |into: &Option<String>, out: &mut Names| {
        if let Some(into) = into {
            for (f, _) in bindings.get(into).into_iter().flatten() {
                let path = format!("{into}.{f}");
                if !optional.contains(&path) {
                    out.insert(path);
                }
            }
        }
    };
    match step {
        StepKind::Ask(a) => {
            out.insert(a.slot.clone());
        }
        StepKind::Call(call) => bound(&call.into, &mut out),
        StepKind::Action(a) => {
            bound(&a.into, &mut out);
            if let Some(action) = actions.get(&a.name) {
                out.extend(action.fills().iter().map(|s| s.to_string()));
            }
        }
        _ => {}
    }
    out
}

/// What is surely available on entering each step (`None`: unreachable).
fn availability(
    flow: &Flow,
    bindings: &BTreeMap<String, Vec<(String, Type)>>,
    optional: &Names,
    edges: &Edges,
    actions: &Actions,
) -> Vec<Option<Names>> {
    let n = flow.steps.len();
    // What each step defines, once: the fixed point below visits every step several times.
    let defined: Vec<Names> = flow
        .steps
        .iter()
        .map(|s| defines(&s.kind, bindings, optional, actions))
        .collect();
    // The sets hold borrowed names while the fixed point makes, joins and compares them (a
    // flow's validation was mostly copying strings), owned ones only in the answer.
    let mut avail: Vec<Option<BTreeSet<&str>>> = vec![None; n];
    if n == 0 {
        return Vec::new();
    }
    avail[0] = Some(flow.inputs.iter().map(String::as_str).collect());
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            let Some(in_set) = avail[i].clone() else {
                continue;
            };
            let mut out_set = in_set.clone();
            out_set.extend(defined[i].iter().map(String::as_str));
            for e in &edges[i] {
                let Some(j) = e.to else { continue };
                let mut given = if e.carries {
                    out_set.clone()
                } else {
                    in_set.clone()
                };
                given.extend(e.adds.iter().map(String::as_str));
                let next = match &avail[j] {
                    None => given,
                    Some(have) => have.intersection(&given).copied().collect(),
                };
                if avail[j].as_ref() != Some(&next) {
                    avail[j] = Some(next);
                    changed = true;
                }
            }
        }
    }
    avail
        .into_iter()
        .map(|names| names.map(|names| names.into_iter().map(str::to_string).collect()))
        .collect()
}

/// The message variables a step can give: slots, bound fields by their own name, `vars`.
fn message_vars(names: &Names, extra: &BTreeMap<String, Template>) -> BTreeSet<String> {
    names
        .iter()
        .map(|p| p.rsplit('.').next().unwrap_or(p).to_string())
        .chain(extra.keys().cloned())
        .collect()
}

/// `given` names only inputs the operation takes, and every required one but `supplied`.
fn check_inputs<'a>(
    c: &mut Check<'_>,
    line: usize,
    operation: &str,
    wanted: &[(String, bool)],
    given: impl Iterator<Item = &'a String>,
    supplied: &[&str],
) {
    let given: Vec<&String> = given.collect();
    for g in &given {
        if !wanted.iter().any(|(w, _)| w == *g) {
            let names: Vec<&str> = wanted.iter().map(|(w, _)| w.as_str()).collect();
            c.error(
                line,
                g,
                format!(
                    "{operation} takes no such input (it takes: {})",
                    names.join(", ")
                ),
            );
        }
    }
    for (w, required) in wanted {
        if *required && !supplied.contains(&w.as_str()) && !given.contains(&w) {
            c.error(line, operation, format!("needs input `{w}`"));
        }
    }
}

fn check_step(
    c: &mut Check<'_>,
    i: usize,
    names: &Names,
    bindings: &BTreeMap<String, Vec<(String, Type)>>,
) {
    let step = &c.flow.steps[i];
    let line = step.line;
    let templates = |c: &mut Check<'_>, ts: &mut dyn Iterator<Item = &Template>| {
        for t in ts {
            let missing: Vec<&str> = t
                .paths()
                .into_iter()
                .filter(|p| !names.contains(*p) && !c.is_unresolved(p))
                .collect();
            for p in missing {
                if c.optional.contains(p) {
                    c.error(
                        line,
                        p,
                        format!("the system may leave it empty: branch on it first (if = \"{p}\")"),
                    );
                } else {
                    c.error(line, p, "not available here: no step before this one fills or binds it on every path");
                }
            }
        }
    };
    let message = |c: &mut Check<'_>, key: &str, extra: &BTreeMap<String, Template>| match c
        .catalog
        .message_vars(key)
    {
        None => c.error(line, key, "no such message"),
        // A refused call's fields are unknown: which variables it would give is too.
        Some(_) if !c.unresolved.is_empty() => {}
        Some(vars) => {
            let have = message_vars(names, extra);
            for v in vars.iter().filter(|v| !have.contains(*v)) {
                // A field bound here that the system may leave empty, by the same name.
                let unchecked = c.optional.iter().find(|p| {
                    p.rsplit_once('.').is_some_and(|(b, f)| {
                        f == v.as_str() && names.iter().any(|n| n.starts_with(&format!("{b}.")))
                    })
                });
                let why = match unchecked {
                    Some(p) => format!(
                        "uses {{{v}}}, which the system may leave empty: branch on it before this step (if = \"{p}\")"
                    ),
                    None if have.is_empty() => {
                        format!("uses {{{v}}}, which this step does not have (it has none)")
                    }
                    None => {
                        let have: Vec<&str> = have.iter().map(String::as_str).collect();
                        format!(
                            "uses {{{v}}}, which this step does not have (it has: {})",
                            have.join(", ")
                        )
                    }
                };
                c.error(line, key, why);
            }
        }
    };
    match &step.kind {
        StepKind::Ask(a) => {
            if c.catalog.slot(&a.slot).is_none() {
                c.error(
                    line,
                    &a.slot,
                    "no such slot in the bundle (bot.toml [slots])",
                );
            } else if !c.flow.slots.contains(&a.slot) {
                c.error(
                    line,
                    &a.slot,
                    "declare the slots a flow asks for in its `slots`",
                );
            }
            templates(c, &mut a.vars.values());
            if let Some(key) = &a.prompt {
                message(c, key, &a.vars);
            }
            // A button's label is said as it is: no variables.
            for key in &a.options {
                message(c, key, &BTreeMap::new());
            }
        }
        StepKind::Call(call) => templates(c, &mut call.with.values()),
        StepKind::Say(s) => {
            templates(c, &mut s.vars.values());
            message(c, &s.key, &s.vars);
        }
        StepKind::Confirm(s) => {
            templates(c, &mut s.vars.values());
            message(c, &s.key, &s.vars);
        }
        StepKind::Job(j) => match &j.spec {
            JobSpec::Refund { order, amount } => templates(c, &mut [order, amount].into_iter()),
            JobSpec::Email {
                order,
                subject,
                text,
                vars,
                ..
            } => {
                templates(c, &mut std::iter::once(order).chain(vars.values()));
                message(c, subject, vars);
                message(c, text, vars);
            }
            JobSpec::Handoff { order, .. } => templates(c, &mut order.iter()),
            JobSpec::Connector {
                operation,
                inputs,
                key,
            } => {
                templates(c, &mut inputs.values().chain([key]));
                match c.catalog.operation(operation) {
                    Operation::Unknown => c.error(line, operation, "no such operation"),
                    Operation::NotAllowed => c.error(
                        line,
                        operation,
                        "not allowed: add it to bot.toml [connectors] operations",
                    ),
                    // The job's `key` is the idempotency key.
                    Operation::Allowed { inputs: wanted, .. } => check_inputs(
                        c,
                        line,
                        operation,
                        &wanted,
                        inputs.keys(),
                        &[crate::connectors::catalog::IDEMPOTENCY_KEY],
                    ),
                }
            }
        },
        StepKind::Action(a) => {
            templates(c, &mut a.with.values());
            let Some(action) = c.actions.get(&a.name).cloned() else {
                return; // reported with the bindings
            };
            for input in action.inputs() {
                if !a.with.contains_key(*input) {
                    c.error(line, &a.name, format!("needs `{input}` in `with`"));
                }
            }
            for (outcome, t) in &a.on {
                if !action.outcomes().contains(&outcome.as_str()) {
                    c.error(
                        t.line,
                        outcome,
                        format!(
                            "{} ends in one of: {}",
                            a.name,
                            action.outcomes().join(", ")
                        ),
                    );
                }
            }
            for slot in action.fills() {
                if c.catalog.slot(slot).is_none() {
                    c.error(
                        line,
                        slot,
                        format!("{} fills this slot; the bundle has none", a.name),
                    );
                }
            }
            for (key, gives) in action.says() {
                match c.catalog.message_vars(key) {
                    None => c.error(line, key, format!("no such message ({} says it)", a.name)),
                    Some(vars) => {
                        for v in vars.iter().filter(|v| !gives.contains(&v.as_str())) {
                            c.error(
                                line,
                                key,
                                format!("uses {{{v}}}, which {} does not give", a.name),
                            );
                        }
                    }
                }
            }
        }
        StepKind::Branch(b) => {
            let type_of = |p: &str| -> Option<Type> {
                match p.split_once('.') {
                    Some((b, f)) => bindings
                        .get(b)?
                        .iter()
                        .find(|(n, _)| n == f)
                        .map(|(_, t)| *t),
                    None => c.catalog.slot(p).map(|s| s.value_type()),
                }
            };
            let mut problems = Vec::new();
            for arm in &b.arms {
                let Some(cond) = &arm.condition else { continue };
                for p in cond.paths() {
                    let known = c.flow.inputs.iter().any(|i| i == p)
                        || match p.split_once('.') {
                            Some(_) => type_of(p).is_some(),
                            None => c.flow.slots.iter().any(|s| s == p),
                        };
                    if !known && !c.is_unresolved(p) {
                        problems.push((
                            p.to_string(),
                            "no slot or bound field has this name".to_string(),
                        ));
                    }
                }
                for e in cond.type_errors(&type_of) {
                    problems.push((arm.goto.to.clone(), format!("condition {e}")));
                }
                for (p, word) in cond.compared_words() {
                    let Some(known) = c.words.get(p) else {
                        continue;
                    };
                    if !known.iter().any(|k| k == word) {
                        problems.push((
                            p.to_string(),
                            format!("is never '{word}': it is one of {}", known.join(", ")),
                        ));
                    }
                }
            }
            for (key, msg) in problems {
                c.error(line, &key, msg);
            }
        }
        StepKind::Handoff(_) | StepKind::Goto(_) | StepKind::End(_) => {}
    }
}
