//! The job queue on SQS FIFO: each job's envelope (group = conversation, deduplication id = the
//! job's key), sent in batches of up to ten.

use crate::io_clock::IoFutureExt;
use async_trait::async_trait;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchRequestEntry};

use super::{Envelope, Job, JobQueue, QueueError};
use crate::relay::{RelayQueue, SendOutcome, BATCH_MAX};

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

fn queue_error<E: std::error::Error + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// What SQS says of a message it will refuse every time: a fault in the message itself.
const MESSAGE_FAULTS: [&str; 5] = [
    "InvalidMessageContents",
    "InvalidParameterValue",
    "MessageTooLong",
    "InvalidAttributeName",
    "InvalidAttributeValue",
];

/// Whether SQS will refuse this entry every time. SenderFault says the caller is to blame, which
/// takes in the message itself but also the caller's rate and its key (throttling, KMS
/// refusals), which pass. So only the codes that name the message count: an unknown one is
/// retried, holding its group (the relay's iterator-age alarm says so) rather than skipping
/// every item while, say, a key is disabled.
fn refused_for_good(failed: &BatchResultErrorEntry) -> bool {
    failed.sender_fault()
        && MESSAGE_FAULTS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(failed.code()))
}

/// One outcome per entry sent (entry ids are their indexes), from what SQS reported: an entry in
/// `successful`, in `failed`, or in neither (not known to be sent, so retried).
fn outcomes(entries: usize, out: &SendMessageBatchOutput) -> Vec<SendOutcome> {
    let mut outcomes = vec![
        SendOutcome::Refused {
            permanent: false,
            code: "NotReported".into(),
            message: "SQS did not report on this message".into(),
        };
        entries
    ];
    let slot = |id: &str| id.parse::<usize>().ok().filter(|&i| i < entries);
    for sent in out.successful() {
        if let Some(i) = slot(sent.id()) {
            outcomes[i] = SendOutcome::Sent;
        }
    }
    // An entry reported both ways (never expected) counts as failed.
    for failed in out.failed() {
        if let Some(i) = slot(failed.id()) {
            outcomes[i] = SendOutcome::Refused {
                permanent: refused_for_good(failed),
                code: failed.code().to_string(),
                message: failed.message().unwrap_or_default().to_string(),
            };
        }
    }
    outcomes
}

#[async_trait]
impl RelayQueue for SqsJobQueue {
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Result<Vec<SendOutcome>, QueueError> {
        debug_assert!(envelopes.len() <= BATCH_MAX);
        let entries = envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&e.body)
                    .message_group_id(&e.group_id)
                    .message_deduplication_id(&e.dedup_id)
                    .build()
                    .map_err(|err| QueueError(err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .io()
            .await
            .map_err(queue_error)?;
        Ok(outcomes(envelopes.len(), &out))
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let envelopes = jobs
            .iter()
            .map(Job::envelope)
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in envelopes.chunks(BATCH_MAX) {
            let refs: Vec<&Envelope> = chunk.iter().collect();
            for outcome in self.send_batch(&refs).await? {
                if let SendOutcome::Refused { code, message, .. } = outcome {
                    return Err(QueueError(format!(
                        "SQS refused the message: {code} {message}"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::SendMessageBatchResultEntry;

    fn sent(id: &str) -> SendMessageBatchResultEntry {
        SendMessageBatchResultEntry::builder()
            .id(id)
            .message_id(format!("m-{id}"))
            .md5_of_message_body("0")
            .build()
            .unwrap()
    }

    fn failed(id: &str, sender_fault: bool, code: &str) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id(id)
            .sender_fault(sender_fault)
            .code(code)
            .message("refused")
            .build()
            .unwrap()
    }

    fn refused(permanent: bool, code: &str) -> SendOutcome {
        SendOutcome::Refused {
            permanent,
            code: code.into(),
            message: "refused".into(),
        }
    }

    #[test]
    fn every_entry_has_the_outcome_sqs_reported_and_an_unreported_one_is_not_sent() {
        let out = SendMessageBatchOutput::builder()
            .successful(sent("0"))
            .failed(failed("1", true, "InvalidMessageContents"))
            .failed(failed("2", false, "InternalError"))
            .successful(sent("4"))
            // Ids SQS never got from us are ignored.
            .successful(sent("9"))
            .successful(sent("x"))
            .build()
            .unwrap();
        assert_eq!(
            outcomes(5, &out),
            [
                SendOutcome::Sent,
                refused(true, "InvalidMessageContents"),
                refused(false, "InternalError"),
                SendOutcome::Refused {
                    permanent: false,
                    code: "NotReported".into(),
                    message: "SQS did not report on this message".into(),
                },
                SendOutcome::Sent,
            ]
        );
    }

    #[test]
    fn only_a_fault_in_the_message_itself_is_permanent() {
        for (sender_fault, code, permanent) in [
            (true, "InvalidMessageContents", true),
            (true, "InvalidParameterValue", true),
            (true, "RequestThrottled", false),
            (true, "ThrottlingException", false),
            (true, "KMS.DisabledException", false),
            (true, "KMS.ThrottlingException", false),
            (true, "KmsAccessDenied", false),
            (true, "AccessDenied", false),
            (true, "messagetoolong", true),
            (false, "InvalidMessageContents", false),
            (false, "InternalError", false),
            (false, "ServiceUnavailable", false),
        ] {
            assert_eq!(
                refused_for_good(&failed("0", sender_fault, code)),
                permanent,
                "{code} (SenderFault {sender_fault})"
            );
        }
    }
}
