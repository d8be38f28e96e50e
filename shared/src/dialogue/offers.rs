//! The answers a turn offers as buttons (quick replies), read from where the conversation
//! stands once the bot has spoken: a yes/no question offers yes and no, "which order?" each
//! order listed, a question with `options` its options, "did you mean…?" the two intents.
//! Every label is the bundle's, in the conversation's language; every value is something the
//! understanding reads as that answer, so a value that no longer fits is just text.

use crate::bot::messages::Messages;
use crate::conversation::{DialogueState, QuickReply};
use crate::flow::engine::{Frame, Waiting};
use crate::flow::steps::StepKind;
use crate::flow::SlotType;

use super::Dialogue;

/// The labels of yes and no (`offer.yes`, `offer.no`): also what pressing them says.
pub const YES: &str = "offer.yes";
pub const NO: &str = "offer.no";

impl Dialogue {
    /// What the bot's last message of a turn that left the conversation in `state` offers.
    pub(super) fn offers(&self, messages: &Messages, state: &DialogueState) -> Vec<QuickReply> {
        match state {
            DialogueState::HandoffOffered { .. } => yes_no(messages),
            DialogueState::Clarifying { options, .. } => options
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    let intent = self.known(Some(name))?;
                    Some(QuickReply {
                        label: self.describe(messages, &intent),
                        // "Reply 1 or 2": the number picks it, whatever the label's words.
                        value: (i + 1).to_string(),
                    })
                })
                .collect(),
            DialogueState::Flow(flow) => self.flow_offers(messages, &flow.frame),
            DialogueState::Idle | DialogueState::Retired => Vec::new(),
        }
    }

    fn flow_offers(&self, messages: &Messages, frame: &Frame) -> Vec<QuickReply> {
        match &frame.waiting {
            Some(Waiting::Confirm | Waiting::HandoffOffer { .. }) => yes_no(messages),
            Some(Waiting::Slot { slot }) => {
                let is_order = self
                    .bot
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.kind == SlotType::Order);
                if is_order && !frame.candidates.is_empty() {
                    return order_offers(messages, frame);
                }
                let step = self
                    .bot
                    .flows
                    .get(&frame.flow)
                    .and_then(|f| f.steps.get(frame.step));
                match step.map(|s| &s.kind) {
                    // A button sends its option's number, which the question's text asks
                    // for too ("Reply 1, 2 or 3"): a label's words could read as another
                    // request ("Update my payment method") and interrupt the flow.
                    Some(StepKind::Ask(ask)) if ask.slot == *slot => ask
                        .options
                        .iter()
                        .zip(1..)
                        .map(|(key, n)| QuickReply {
                            label: messages.render(key, &[]),
                            value: n.to_string(),
                        })
                        .collect(),
                    _ => Vec::new(),
                }
            }
            None => Vec::new(),
        }
    }
}

fn yes_no(messages: &Messages) -> Vec<QuickReply> {
    [YES, NO]
        .into_iter()
        .map(|key| {
            let label = messages.render(key, &[]);
            QuickReply {
                value: label.clone(),
                label,
            }
        })
        .collect()
}

/// Each order listed, named as the bot names orders ("#1002 (Desk lamp)"); its number is the
/// answer.
fn order_offers(messages: &Messages, frame: &Frame) -> Vec<QuickReply> {
    frame
        .candidates
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let label = match frame.candidate_items.get(i).filter(|s| !s.is_empty()) {
                Some(item) => messages.render(
                    "order.summary.one_item",
                    &[
                        ("order", id.as_str().into()),
                        ("item", item.as_str().into()),
                    ],
                ),
                None => messages.render("order.summary.plain", &[("order", id.as_str().into())]),
            };
            QuickReply {
                label,
                value: id.clone(),
            }
        })
        .collect()
}
