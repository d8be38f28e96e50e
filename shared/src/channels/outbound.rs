//! What a channel conversation sends: every message the customer may see (the bot's, an agent's;
//! never an internal note) is queued for delivery by the same commit that writes it, as an
//! outbox item. So a reply exists in the channel exactly when it exists in the conversation,
//! whichever function wrote it (a turn, a job's answer, an agent's reply in the console).

use crate::conversation::{Conversation, Message, Role};
use crate::jobs::{Delivery, Job, JobKind};

/// The delivery of `messages`, written to `conversation`: one job for all the customer may see
/// of them, in order (none when there is nothing to send or no channel).
pub fn deliveries(conversation: &Conversation, messages: &[Message]) -> Vec<Job> {
    if conversation.channel.is_none() {
        return Vec::new();
    }
    let visible: Vec<&Message> = messages
        .iter()
        .filter(|m| matches!(m.role, Role::Bot | Role::Agent) && !m.internal)
        .collect();
    let Some(first) = visible.first() else {
        return Vec::new();
    };
    vec![Job::new(
        &conversation.key,
        &conversation.customer_id,
        JobKind::ChannelDeliver {
            epoch: (conversation.created_at.unix_timestamp_nanos() / 1_000_000) as i64,
            seq: first.seq,
            messages: visible
                .iter()
                .map(|m| Delivery {
                    text: m.text.clone(),
                    quick_replies: m.quick_replies.clone(),
                })
                .collect(),
        },
    )
    .in_language(conversation.slots.language.clone())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::message::{Content, Inbound, Provider};
    use crate::channels::party::ChannelParty;
    use crate::conversation::ConversationKey;

    #[test]
    fn only_what_the_customer_may_see_is_sent_and_only_in_a_channel() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let key = ConversationKey {
            tenant: "t".into(),
            id: "01JCHANNELTEST000000000000".into(),
        };
        let mut c = Conversation::new(key, "guest_1".into(), now);
        let note = Message {
            internal: true,
            ..Message::new(3, Role::Bot, "for agents", now)
        };
        let messages = vec![
            Message::new(1, Role::Customer, "hi", now),
            Message::new(2, Role::Bot, "hello", now),
            note,
            Message::new(4, Role::Agent, "Ann here", now),
        ];
        assert!(deliveries(&c, &messages).is_empty());
        let inbound = Inbound {
            message_id: "m1".into(),
            user: "15550001111".into(),
            business: None,
            phone: None,
            language: None,
            sent_at: None,
            content: Content::Text { text: "hi".into() },
        };
        c.channel = Some(ChannelParty::new("whatsapp", Provider::Whatsapp, &inbound));
        let jobs = deliveries(&c, &messages);
        assert_eq!(jobs.len(), 1, "one job, the messages in order");
        let JobKind::ChannelDeliver { seq, messages, .. } = &jobs[0].kind else {
            unreachable!()
        };
        let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!((*seq, texts), (2, vec!["hello", "Ann here"]));
    }
}
