//! Named actions: the steps that truly need code, called from a flow by name
//! (`action = "list_recent_orders"`). One file per action; to add one, write a type that
//! implements [`Action`] in a new file here and add it to [`Actions::builtin`]. Validation
//! knows from the trait what an action takes, binds, fills, says and how it can end.

mod list_recent_orders;
/// What "recent" means wherever orders are picked from: the list "which order?" shows.
pub use list_recent_orders::{MAX_CHOICES, RECENT_DAYS};
mod match_product;
mod payment_choice;
mod refund_news;
mod refund_state;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::engine::{Effect, FlowHost, HostError, Understood};
use super::value::{Record, Type};

/// What an action is given.
pub struct ActionCx<'a> {
    /// The step's `with`, rendered.
    pub inputs: Record,
    pub host: &'a dyn FlowHost,
    pub now: OffsetDateTime,
    /// The message, if no slot has taken it yet ("my last order").
    pub input: Option<&'a Understood>,
    pub candidates: &'a [String],
}

/// What an action did.
#[derive(Debug, Default)]
pub struct Done {
    /// One of the action's [`Action::outcomes`]: where the step's `on` sends the flow.
    pub outcome: &'static str,
    /// Bound under the step's `into`.
    pub record: Record,
    /// Slots it filled (of [`Action::fills`]).
    pub fills: Record,
    pub says: Vec<Effect>,
    /// Orders it listed, for "the second one".
    pub candidates: Option<Vec<String>>,
    /// What each listed order holds, in the same order, for "the mouse one".
    pub candidate_items: Vec<String>,
    /// The day each listed order was placed, in the same order, for "the one from last week".
    pub candidate_placed: Vec<time::Date>,
}

#[async_trait]
pub trait Action: Send + Sync {
    fn name(&self) -> &'static str;
    /// Inputs it needs in `with`.
    fn inputs(&self) -> &'static [&'static str];
    fn outcomes(&self) -> &'static [&'static str];
    /// Fields it binds under `into`.
    fn binds(&self) -> &'static [(&'static str, Type)] {
        &[]
    }
    /// Fields of [`Action::binds`] it may leave out (a product's price, when the inventory
    /// has none): like a system's optional fields, a flow uses one only where a branch has
    /// checked it.
    fn may_be_empty(&self) -> &'static [&'static str] {
        &[]
    }
    /// Bundle slots it may fill.
    fn fills(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether it reads or decides on a customer's own records (orders, refunds): a flow that
    /// uses it then needs an account (`Flow::needs_account`). True unless an action says
    /// otherwise, for the same reason flows default to it: an oversight must not expose data.
    fn needs_account(&self) -> bool {
        true
    }
    /// Message keys it says itself, with the variables it gives them.
    fn says(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[]
    }
    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError>;
}

/// The actions flows may call, by name.
#[derive(Clone)]
pub struct Actions(BTreeMap<&'static str, Arc<dyn Action>>);

impl Actions {
    pub fn builtin() -> Self {
        let all: Vec<Arc<dyn Action>> = vec![
            Arc::new(list_recent_orders::ListRecentOrders),
            Arc::new(match_product::MatchProduct),
            Arc::new(payment_choice::PaymentChoice),
            Arc::new(refund_news::RefundNews),
            Arc::new(refund_state::RefundStateAction),
        ];
        Actions(all.into_iter().map(|a| (a.name(), a)).collect())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}

/// A text input, or a clear failure naming it (validation makes sure it is given).
fn text_input<'a>(cx: &'a ActionCx<'_>, name: &str) -> Result<&'a str, HostError> {
    cx.inputs
        .get(name)
        .and_then(|v| v.as_text())
        .ok_or_else(|| HostError::Failed(format!("input {name} must be text")))
}

/// The conversation's list of refunds asked for in it (`Slots::refunds_requested`).
pub const REFUNDS_REQUESTED: &str = "refunds_requested";

/// Whether `order`'s refund was asked for in this conversation.
fn asked_here(host: &dyn FlowHost, order: &str) -> bool {
    host.conversation_list(REFUNDS_REQUESTED)
        .iter()
        .any(|o| o == order)
}
