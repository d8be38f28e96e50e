//! A refund job: checked against the order as it is now, paid once, confirmed.
//!
//! The payments call is the one step that cannot be taken back, and the one a retry must never
//! repeat: the provider's idempotency key covers a retry within its window (Stripe keeps keys
//! 24 hours), not a dead-letter redrive after it. So its receipt goes into the effect's ledger
//! entry right after the call, and every later delivery (a retry, a takeover after a crash, a
//! redrive) confirms from the receipt without calling again.

use time::OffsetDateTime;

use super::handlers::{conversation_of, customer_of, follow_ups};
use super::{Append, Done, Fulfillment, JobError, Started};
use crate::bot::messages::{Messages, Value};
use crate::connectors::RefundReceipt;
use crate::conversation::ConversationKey;
use crate::jobs::{Job, JobKind};
use crate::metrics;
use crate::money::Money;
use crate::refunds;
use crate::store::{EffectOutcome, StoreError};

impl Fulfillment {
    pub(super) async fn refund(
        &self,
        s: &Started<'_>,
        order_id: &str,
        amount: &Money,
    ) -> Result<Done, JobError> {
        let job = s.job;
        let key = conversation_of(job)?;
        let receipt = match &s.lease.receipt {
            Some(kept) => {
                tracing::info!(job_key = %job.key, "refund paid by an earlier delivery; confirming it from its receipt");
                serde_json::from_str::<RefundReceipt>(kept).map_err(|e| {
                    StoreError::Corrupt(format!("the receipt kept for {}: {e}", job.key))
                })?
            }
            None => {
                self.check_refund(job, order_id, amount).await?;
                let receipt = self
                    .systems
                    .payments
                    .refund(order_id, amount, &job.key)
                    .await?;
                self.keep_receipt(s, &receipt).await;
                receipt
            }
        };
        match self.confirm_refund(s, key, order_id, &receipt).await {
            Err(e) if !e.is_transient() => self.refund_unconfirmed(s, order_id, &receipt, &e).await,
            other => other,
        }
    }

    /// What was true when the refund was offered, read again: the order is the customer's,
    /// still one the bot refunds, and covers the amount quoted then.
    async fn check_refund(
        &self,
        job: &Job,
        order_id: &str,
        amount: &Money,
    ) -> Result<(), JobError> {
        let customer = customer_of(job)?;
        let order = self.systems.orders.order(order_id).await?;
        refunds::check(order.as_ref(), customer, amount, OffsetDateTime::now_utc()).map_err(|r| {
            tracing::warn!(job_key = %job.key, refusal = r.code(), "refund refused before paying");
            r.into()
        })
    }

    /// Keeps the receipt with the effect. Not kept (the ledger unavailable, or the lease lost to
    /// another delivery) the job goes on: its commit completes the effect all the same, and a
    /// delivery after a failed commit asks the payments API again under the same key, within
    /// its window as retries are.
    async fn keep_receipt(&self, s: &Started<'_>, receipt: &RefundReceipt) {
        let kept = match serde_json::to_string(receipt) {
            Ok(json) => {
                self.ledger
                    .record_receipt(&s.job.tenant, &s.job.key, s.token(), &json)
                    .await
            }
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        };
        if let Err(e) = kept {
            tracing::warn!(job_key = %s.job.key, error = %e, "refund paid; its receipt could not be kept");
        }
    }

    /// Posts the confirmation and completes the effect, starting the confirmation email.
    async fn confirm_refund(
        &self,
        s: &Started<'_>,
        key: ConversationKey,
        order_id: &str,
        receipt: &RefundReceipt,
    ) -> Result<Done, JobError> {
        // Started by the same transaction that completes the refund.
        let email = confirmation_email(&self.messages(s.job), order_id, receipt);
        let jobs = follow_ups(s.job, &key, vec![email])?;
        let text = self
            .messages(s.job)
            .render("refund.issued", &receipt_vars(order_id, receipt));
        let mut a = Append::text(key, text);
        a.jobs = jobs;
        let reported = order_id.to_string();
        // Told here, so a return visit does not announce it again.
        a.update = Some(Box::new(move |c| {
            if !c.slots.refunds_reported.contains(&reported) {
                c.slots.refunds_reported.push(reported.clone());
            }
        }));
        self.append(s, a, EffectOutcome::Done).await
    }

    /// A refund that was paid but could not be confirmed in the conversation (its record
    /// unreadable): it happened, so it completes as done and is never paid again. The customer
    /// still gets the confirmation email, their record of the money, and the chat tells them it
    /// was issued when they come back (it reads the ledger). The team gets no handoff: there is
    /// nothing about the refund for a person to do, and a note that a refund failed invites a
    /// second one by hand; the error line and `RefundUnconfirmed` are for whoever runs the stack.
    pub(super) async fn refund_unconfirmed(
        &self,
        s: &Started<'_>,
        order_id: &str,
        receipt: &RefundReceipt,
        e: &JobError,
    ) -> Result<Done, JobError> {
        let job = s.job;
        tracing::error!(job_key = %job.key, error = %e, reference = %receipt.id, "refund paid; its confirmation could not be posted; completed as done");
        metrics::count("RefundUnconfirmed", &[]);
        let jobs = match job.conversation_key() {
            Some(key) => {
                let email = confirmation_email(&self.messages(s.job), order_id, receipt);
                follow_ups(job, &key, vec![email]).unwrap_or_default()
            }
            None => Vec::new(),
        };
        self.finish_with(s, EffectOutcome::Done, jobs).await
    }
}

fn confirmation_email(m: &Messages, order_id: &str, receipt: &RefundReceipt) -> JobKind {
    let vars = receipt_vars(order_id, receipt);
    JobKind::EmailConfirmation {
        purpose: "refund".into(),
        order_id: order_id.to_string(),
        subject: m.render("email.refund.subject", &vars),
        text: m.render("email.refund.text", &vars),
    }
}

fn receipt_vars<'a>(order_id: &str, receipt: &RefundReceipt) -> [(&'a str, Value); 3] {
    [
        ("order", order_id.into()),
        ("amount", (&receipt.amount).into()),
        ("reference", receipt.id.as_str().into()),
    ]
}
