//! The conversational moves the dialogue interprets itself, in the bundle's words: small talk,
//! a yes or no that answers nothing, asking for a person, things the bot is not for, and
//! "did you want to: 1. … 2. …?" when the classifier is torn between two intents.

use crate::bot::messages::{Messages, Value as MsgValue};
use crate::conversation::{DialogueState, Slots};
use crate::nlu::{Intent, Move, Understanding};

use super::{carried_order, flag_for_agent, Dialogue, Turn};

/// What the bot can help with, said after greetings and whenever it could not help.
pub const HELP: &str = "move.help";
pub const OUT_OF_SCOPE: &str = "move.out_of_scope";
const ACKNOWLEDGE: &str = "chat.acknowledge";
const NOTHING_ELSE: &str = "chat.nothing_else";
const WAITING_FOR_TEAM: &str = "chat.waiting_for_team";
const HANDED_OFF: &str = "handoff.done";
const ALREADY_HANDED_OFF: &str = "handoff.already";
const LANGUAGE_NAME: &str = "language.name";
/// `intent.<name>`: how an intent is named in "did you want to: 1. … 2. …?".
pub const INTENT_NAME: &str = "intent.";
const UNSUPPORTED_LANGUAGE: &str = "language.unsupported";
/// What the team is told a handoff after `language.unsupported` was for.
const UNSUPPORTED_REASON: &str = "language";

impl Dialogue {
    pub(super) async fn move_(
        &self,
        turn: &mut Turn<'_>,
        mv: Move,
        slots: &Slots,
        u: &Understanding,
    ) {
        match mv {
            Move::Greet => self.with_help(turn, "chat.greet", &[]),
            // Once a person has been asked for, "thanks" and "ok" are about that wait.
            Move::Thanks | Move::Acknowledge | Move::Affirm if slots.handoff_requested => {
                self.say(turn, WAITING_FOR_TEAM, &[])
            }
            Move::Thanks => self.with_help(turn, "chat.thanks", &[]),
            Move::Goodbye => self.with_help(turn, "chat.goodbye", &[]),
            Move::Human => self.handoff(turn, Move::Human.name(), slots.order_id.clone()),
            // Nothing was asked: "ok", "got it", "yes" take in what was said, and "no" (to
            // "anything else?") closes; neither is a failure to understand.
            Move::Affirm | Move::Acknowledge => self.with_help(turn, ACKNOWLEDGE, &[]),
            Move::Deny => self.with_help(turn, NOTHING_ELSE, &[]),
            Move::OutOfScope => {
                let out_of_scope = turn.messages.render(OUT_OF_SCOPE, &[]);
                self.with_help(
                    turn,
                    "fallback.out_of_scope",
                    &[("out_of_scope", out_of_scope.into())],
                )
            }
            Move::Unknown => match (&u.unsure_between, carried_order(u, slots)) {
                (Some((a, b)), _) => self.clarify(turn, a, b, u),
                // "1002", "and the other one?": the order the conversation is about, or what
                // the bundle says a bare order number asks.
                (None, Some(id)) => {
                    let topic = self
                        .known(slots.topic.as_deref())
                        .or_else(|| self.bot.order_number_intent.clone());
                    match topic {
                        Some(topic) => self.about_order(turn, topic, &id, u, "").await,
                        None => self.fallback(turn, "fallback.didnt_catch"),
                    }
                }
                (None, None) => self.fallback(turn, "fallback.didnt_catch"),
            },
        }
    }

    /// A message in a language the bundle does not speak: which languages it does, each named
    /// in itself ("English, español, français and Deutsch"), and a person offered.
    pub(super) fn unsupported_language(&self, turn: &mut Turn<'_>) {
        let names: Vec<String> = self
            .bot
            .languages
            .iter()
            .filter_map(|l| self.bot.messages(l))
            .map(|m| m.render(LANGUAGE_NAME, &[]))
            .collect();
        self.say(
            turn,
            UNSUPPORTED_LANGUAGE,
            &[("languages", MsgValue::List(names))],
        );
        turn.out.state = DialogueState::HandoffOffered {
            reason: UNSUPPORTED_REASON.to_string(),
        };
    }

    /// A sentence with `{help}`: what the bot can help with.
    fn with_help(&self, turn: &mut Turn<'_>, key: &str, vars: &[(&str, MsgValue)]) {
        let help = turn.messages.render(HELP, &[]);
        let mut vars = vars.to_vec();
        vars.push(("help", help.into()));
        self.say(turn, key, &vars);
    }

    /// Not understood, or not something the bot can do: the sentence and what it can do.
    pub(super) fn fallback(&self, turn: &mut Turn<'_>, key: &str) {
        turn.fallback = key != "fallback.cant_help";
        self.with_help(turn, key, &[]);
    }

    /// What an intent is called to the customer: in the conversation's language
    /// (`intent.<name>`); the first language may name it by its description alone.
    pub(super) fn describe(&self, messages: &Messages, i: &Intent) -> String {
        let key = format!("{INTENT_NAME}{}", i.name());
        if messages.vars_of(&key).is_some() {
            return messages.render(&key, &[]);
        }
        self.bot
            .intent(i)
            .map_or_else(String::new, |d| d.description.clone())
    }

    fn clarify(&self, turn: &mut Turn<'_>, a: &Intent, b: &Intent, u: &Understanding) {
        let (first, second) = (
            self.describe(&turn.messages, a),
            self.describe(&turn.messages, b),
        );
        self.say(
            turn,
            "fallback.clarify",
            &[("first", first.into()), ("second", second.into())],
        );
        turn.out.state = DialogueState::Clarifying {
            options: vec![a.name().to_string(), b.name().to_string()],
            order_refs: u.order_refs.clone(),
        };
    }

    /// "Can I talk to a person?": the conversation is flagged and the team notified, once.
    pub(super) fn handoff(&self, turn: &mut Turn<'_>, reason: &str, order_id: Option<String>) {
        if turn.out.slots.handoff_requested {
            return self.say(turn, ALREADY_HANDED_OFF, &[]);
        }
        flag_for_agent(turn, reason, order_id);
        self.say(turn, HANDED_OFF, &[]);
    }
}
