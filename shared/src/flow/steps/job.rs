//! `job = "<kind>"`: starts a write through fulfillment (the engine never writes itself).
//!
//! ```toml
//! job = "refund"      order = "{o.id}"  amount = "{o.total}"
//! job = "email"       purpose = "refund"  order = "{o.id}"  subject = "<key>"  text = "<key>"
//! job = "handoff"     reason = "..."  order = "{order}"          # order optional
//! job = "connector"   operation = "system.op"  inputs = { ... }  key = "<idempotency template>"
//! ```

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::engine::{Effect, FlowJob, HostError, Next, Run};
use crate::flow::template::Template;
use crate::flow::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub spec: JobSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobSpec {
    Refund {
        order: Template,
        amount: Template,
    },
    Email {
        purpose: String,
        order: Template,
        subject: String,
        text: String,
        vars: BTreeMap<String, Template>,
    },
    Handoff {
        reason: String,
        order: Option<Template>,
    },
    Connector {
        operation: String,
        inputs: BTreeMap<String, Template>,
        key: Template,
    },
}

pub const JOB_KINDS: &[&str] = &["refund", "email", "handoff", "connector"];

fn need(f: &mut Fields<'_>, key: &str, job: &str) -> Option<Template> {
    if !f.table.contains_key(key) {
        f.error(key, format!("a `{job}` job needs `{key}`"));
        return None;
    }
    f.template(key)
}

impl Job {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let kind = f.required("job", "job")?;
        let spec = match kind.as_str() {
            "refund" => {
                let order = need(f, "order", "refund");
                let amount = need(f, "amount", "refund");
                JobSpec::Refund {
                    order: order?,
                    amount: amount?,
                }
            }
            "email" => {
                let purpose = f.required("purpose", "job");
                let order = need(f, "order", "email");
                let subject = f.required("subject", "job");
                let text = f.required("text", "job");
                JobSpec::Email {
                    purpose: purpose?,
                    order: order?,
                    subject: subject?,
                    text: text?,
                    vars: f.templates("vars"),
                }
            }
            "handoff" => JobSpec::Handoff {
                reason: f.required("reason", "job")?,
                order: f.template("order"),
            },
            "connector" => {
                let operation = f.required("operation", "job");
                let inputs = f.templates("inputs");
                let key = need(f, "key", "connector");
                JobSpec::Connector {
                    operation: operation?,
                    inputs,
                    key: key?,
                }
            }
            other => {
                f.error(
                    "job",
                    format!("unknown job `{other}`: one of {}", JOB_KINDS.join(", ")),
                );
                return None;
            }
        };
        Some(Job { spec })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Result<Next, HostError> {
        // Order ids and idempotency keys are read by systems: exact values, not "November 27".
        let text = |r: &Run<'_>, t: &Template| -> Result<String, HostError> {
            Ok(r.render_exact(t)?.exact())
        };
        let job = match &self.spec {
            JobSpec::Refund { order, amount } => FlowJob::Refund {
                order_id: text(r, order)?,
                amount: match r.render(amount)? {
                    Value::Money(m) if !m.currency.is_empty() => m,
                    other => {
                        return Err(HostError::Failed(format!(
                            "a refund's amount must be money with its currency, not {other}"
                        )))
                    }
                },
            },
            JobSpec::Email {
                purpose,
                order,
                subject,
                text: body,
                vars,
            } => FlowJob::Email {
                purpose: purpose.clone(),
                order_id: text(r, order)?,
                subject_key: subject.clone(),
                text_key: body.clone(),
                vars: r.vars(vars),
            },
            JobSpec::Handoff { reason, order } => FlowJob::Handoff {
                reason: reason.clone(),
                order_id: match order {
                    Some(t) => Some(text(r, t)?),
                    None => None,
                },
            },
            JobSpec::Connector {
                operation,
                inputs,
                key,
            } => FlowJob::Connector {
                operation: operation.clone(),
                inputs: r.inputs(inputs)?,
                idempotency_key: text(r, key)?,
            },
        };
        r.effects.push(Effect::StartJob(job));
        Ok(Next::Continue)
    }
}

#[cfg(test)]
mod tests {
    use crate::flow::engine::FlowJob;
    use crate::flow::value::{Record, Value};
    use crate::jobs::{connector_write_key, JobKind};

    #[test]
    fn a_connector_job_is_a_connector_write_for_fulfillment() {
        let inputs = Record::from([("subscription_id".to_string(), Value::text("sub_1"))]);
        let job = FlowJob::Connector {
            operation: "boxes.pause_box".into(),
            inputs: inputs.clone(),
            idempotency_key: "pause:sub_1".into(),
        };
        let kind = job.job_kind().expect("fulfillment runs it");
        assert_eq!(
            kind,
            JobKind::ConnectorWrite {
                operation: "boxes.pause_box".into(),
                inputs,
                idempotency_key: "pause:sub_1".into(),
            }
        );
        // On the wire and back, the inputs keep their types; the key is the tenant's.
        let wire = serde_json::to_string(&kind).unwrap();
        assert!(wire.contains("\"type\":\"connector.write\""), "{wire}");
        assert_eq!(serde_json::from_str::<JobKind>(&wire).unwrap(), kind);
        assert_eq!(
            kind.idempotency_key("t", Some("conversation")),
            connector_write_key("t", "boxes.pause_box", "pause:sub_1")
        );
    }
}
