//! When the bot refunds an order: the rule the chat flow offers a refund by, and the checks the
//! refund job makes again, against the order as it is then, before any money moves.
//!
//! The offer and the payment are apart in time (a "yes" can come days later, a job can be
//! redriven after a day on the dead-letter queue) and the job carries what was quoted at offer
//! time; what was true then (late, this customer's, this total) is read again.

use time::OffsetDateTime;

use crate::connectors::Order;
use crate::money::Money;

/// Whether the bot offers a refund of this order (its whole total): it is running late.
pub fn offered(order: &Order, now: OffsetDateTime) -> bool {
    order.is_late(now)
}

/// Why a refund job refused to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such order, or not the customer's: told apart to nobody, so that a job cannot probe
    /// other customers' order numbers.
    #[error("the order is not the customer's (or does not exist)")]
    NotTheirs,
    /// It no longer meets the rule the refund was offered by (delivered or cancelled since).
    #[error("the order no longer qualifies for a refund")]
    NoLongerOffered,
    /// More than the order's total, another currency, or nothing at all.
    #[error("the amount does not fit the order's total")]
    AmountNotCovered,
}

impl Refusal {
    /// A word for the team's handoff reason; the customer's sentence is the message
    /// `refund.refused.<code>`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotTheirs => "not_theirs",
            Refusal::NoLongerOffered => "no_longer_offered",
            Refusal::AmountNotCovered => "amount_not_covered",
        }
    }
}

/// The checks before paying: the order (as the orders system has it now) is the customer's,
/// is still one the bot offers a refund of, and covers the amount (same currency, more than
/// nothing, at most its total).
pub fn check(
    order: Option<&Order>,
    customer_id: &str,
    amount: &Money,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    let order = order
        .filter(|o| o.customer_id == customer_id)
        .ok_or(Refusal::NotTheirs)?;
    if !offered(order, now) {
        return Err(Refusal::NoLongerOffered);
    }
    let covered = amount.currency.eq_ignore_ascii_case(&order.total.currency)
        && amount.amount_cents > 0
        && amount.amount_cents <= order.total.amount_cents;
    if !covered {
        return Err(Refusal::AmountNotCovered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::OrderStatus;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-10 12:00 UTC);

    fn late_order() -> Order {
        Order {
            id: "1002".into(),
            customer_id: "alice".into(),
            status: OrderStatus::InTransit,
            placed_at: datetime!(2026-03-01 12:00 UTC),
            promised_by: Some(datetime!(2026-03-08 12:00 UTC)),
            delivered_at: None,
            carrier: None,
            tracking_url: None,
            total: usd(4599),
            items: vec![],
            payment_ref: None,
        }
    }

    fn usd(cents: i64) -> Money {
        Money {
            amount_cents: cents,
            currency: "USD".into(),
        }
    }

    #[test]
    fn a_late_order_of_the_customers_is_refunded_up_to_its_total() {
        let o = late_order();
        assert!(offered(&o, NOW));
        assert_eq!(check(Some(&o), "alice", &usd(4599), NOW), Ok(()));
        assert_eq!(check(Some(&o), "alice", &usd(100), NOW), Ok(()));
        let lower = Money {
            amount_cents: 4599,
            currency: "usd".into(),
        };
        assert_eq!(check(Some(&o), "alice", &lower, NOW), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        let o = late_order();
        assert_eq!(
            check(None, "alice", &usd(100), NOW),
            Err(Refusal::NotTheirs)
        );
        assert_eq!(
            check(Some(&o), "mallory", &usd(100), NOW),
            Err(Refusal::NotTheirs)
        );
        let mut delivered = late_order();
        delivered.status = OrderStatus::Delivered;
        assert_eq!(
            check(Some(&delivered), "alice", &usd(100), NOW),
            Err(Refusal::NoLongerOffered)
        );
        let mut cancelled = late_order();
        cancelled.status = OrderStatus::Cancelled;
        assert_eq!(
            check(Some(&cancelled), "alice", &usd(100), NOW),
            Err(Refusal::NoLongerOffered)
        );
        for amount in [
            usd(4600),
            usd(0),
            usd(-100),
            Money {
                amount_cents: 100,
                currency: "EUR".into(),
            },
        ] {
            assert_eq!(
                check(Some(&o), "alice", &amount, NOW),
                Err(Refusal::AmountNotCovered),
                "{amount:?}"
            );
        }
    }
}
