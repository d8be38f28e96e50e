//! Who may do what: every access decision of the chat API is made here, from the caller's role
//! and the resource's owner, and tested as one table.
//!
//! Tenants need no rule of their own: every key is built from the caller's tenant
//! (`T#<tenant>#...`), so another tenant's items cannot even be named. What remains is the role
//! and, for customers, ownership. A customer asking for someone else's conversation or order
//! gets the same answer as for one that does not exist, so ids cannot be probed.

use crate::auth::{Principal, Role};
use crate::problem::ApiError;

/// What a caller is trying to do. `owner` is the customer the resource belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Send a chat message as the customer (`POST /v1/messages`).
    SendAsCustomer,
    /// Read a conversation's messages, or continue it.
    ReadConversation { owner: &'a str },
    /// List a customer's conversations.
    ListConversations { owner: &'a str },
    /// Take a conversation over from the bot, hand it back, or resolve it.
    TakeOver,
    /// Read the tenant's handoff queue (`GET /v1/handoffs`).
    ListHandoffs,
    /// Write into a conversation as the team.
    ReplyAsAgent,
    /// Delete everything the bot remembers of a customer.
    EraseCustomer,
    /// Learn about an order (the dialogue's lookups).
    SeeOrder { owner: &'a str },
}

/// Why an action was refused; each maps to the status the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The caller's role may not do this at all (403).
    Role,
    /// The resource is not the caller's: answered as if it did not exist (404).
    Hidden,
}

pub fn check(who: &Principal, action: Action<'_>) -> Result<(), Denial> {
    let own = |owner: &str| owner == who.customer_id;
    match (who.role, action) {
        (Role::Customer, Action::SendAsCustomer) => Ok(()),

        // A channel user not linked to a customer yet has an id that is the channel's (a phone
        // number), never a customer's: whatever an order's owner, it is not theirs to see.
        (Role::Customer, Action::SeeOrder { .. }) if !who.verified => Err(Denial::Hidden),
        (Role::Agent | Role::Admin, Action::SendAsCustomer) => Err(Denial::Role),

        (Role::Customer, Action::ReadConversation { owner } | Action::SeeOrder { owner }) => {
            if own(owner) {
                Ok(())
            } else {
                Err(Denial::Hidden)
            }
        }
        // Listing names its customer explicitly, so refusing it reveals nothing.
        (Role::Customer, Action::ListConversations { owner }) => {
            if own(owner) {
                Ok(())
            } else {
                Err(Denial::Role)
            }
        }
        (
            Role::Agent | Role::Admin,
            Action::ReadConversation { .. }
            | Action::ListConversations { .. }
            | Action::SeeOrder { .. }
            | Action::TakeOver
            | Action::ListHandoffs
            | Action::ReplyAsAgent,
        ) => Ok(()),
        (Role::Customer, Action::TakeOver | Action::ListHandoffs | Action::ReplyAsAgent) => {
            Err(Denial::Role)
        }

        (Role::Admin, Action::EraseCustomer) => Ok(()),
        (Role::Customer | Role::Agent, Action::EraseCustomer) => Err(Denial::Role),
    }
}

/// [`check`] as the API's error: 403 naming the roles that may, or the resource's 404.
pub fn require(who: &Principal, action: Action<'_>, missing: &str) -> Result<(), ApiError> {
    check(who, action).map_err(|denial| match denial {
        Denial::Hidden => ApiError::NotFound(missing.to_string()),
        Denial::Role => {
            tracing::info!(role = who.role.as_str(), ?action, "access denied");
            ApiError::Forbidden(format!(
                "a {} token may not {}",
                who.role.as_str(),
                describe(action)
            ))
        }
    })
}

fn describe(action: Action<'_>) -> &'static str {
    match action {
        Action::SendAsCustomer => "send messages as a customer (agents reply with agent-messages)",
        Action::ReadConversation { .. } => "read this conversation",
        Action::ListConversations { .. } => "list another customer's conversations",
        Action::TakeOver => "take over, release or resolve a conversation (agents and admins only)",
        Action::ListHandoffs => "read the handoff queue (agents and admins only)",
        Action::ReplyAsAgent => "reply as an agent (agents and admins only)",
        Action::EraseCustomer => "erase a customer (admins only)",
        Action::SeeOrder { .. } => "see this order",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(role: Role) -> Principal {
        Principal {
            tenant: "acme".into(),
            customer_id: "alice".into(),
            role,
            locale: None,
            verified: true,
        }
    }

    #[test]
    fn the_rules_as_a_table() {
        use Action::*;
        use Role::*;
        let ok = Ok(());
        let role = Err(Denial::Role);
        let hidden = Err(Denial::Hidden);
        #[rustfmt::skip]
        let table: &[(Role, Action, Result<(), Denial>)] = &[
            (Customer, SendAsCustomer, ok),
            (Agent,    SendAsCustomer, role),
            (Admin,    SendAsCustomer, role),

            (Customer, ReadConversation { owner: "alice" }, ok),
            (Customer, ReadConversation { owner: "bob" },   hidden),
            (Agent,    ReadConversation { owner: "bob" },   ok),
            (Admin,    ReadConversation { owner: "bob" },   ok),

            (Customer, SeeOrder { owner: "alice" }, ok),
            (Customer, SeeOrder { owner: "bob" },   hidden),
            (Agent,    SeeOrder { owner: "bob" },   ok),

            (Customer, ListConversations { owner: "alice" }, ok),
            (Customer, ListConversations { owner: "bob" },   role),
            (Agent,    ListConversations { owner: "bob" },   ok),
            (Admin,    ListConversations { owner: "bob" },   ok),

            (Customer, TakeOver, role),
            (Agent,    TakeOver, ok),
            (Admin,    TakeOver, ok),

            (Customer, ListHandoffs, role),
            (Agent,    ListHandoffs, ok),
            (Admin,    ListHandoffs, ok),

            (Customer, ReplyAsAgent, role),
            (Agent,    ReplyAsAgent, ok),
            (Admin,    ReplyAsAgent, ok),

            (Customer, EraseCustomer, role),
            (Agent,    EraseCustomer, role),
            (Admin,    EraseCustomer, ok),
        ];
        for (r, action, want) in table {
            assert_eq!(check(&who(*r), *action), *want, "{r:?} {action:?}");
        }
    }

    #[test]
    fn an_unverified_channel_user_sees_no_order_even_one_named_for_them() {
        let stranger = Principal::unverified("acme", "whatsapp:15550001111");
        let see = |owner| check(&stranger, Action::SeeOrder { owner });
        assert_eq!(see("whatsapp:15550001111"), Err(Denial::Hidden));
        assert_eq!(see("alice"), Err(Denial::Hidden));
        // Their own conversation is theirs all the same: it is filed under the channel's id.
        let own = Action::ReadConversation {
            owner: "whatsapp:15550001111",
        };
        assert_eq!(check(&stranger, own), Ok(()));
    }

    #[test]
    fn denials_become_403_or_404() {
        let e = require(&who(Role::Agent), Action::EraseCustomer, "x").unwrap_err();
        assert_eq!(e.status(), 403);
        let e = require(
            &who(Role::Customer),
            Action::ReadConversation { owner: "bob" },
            "no such conversation",
        )
        .unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(e.to_string(), "no such conversation");
    }
}
