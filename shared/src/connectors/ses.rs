//! Email through Amazon SES (API v2): the adapter the deployed `fulfillment` uses. SES keeps no
//! idempotency key, so "one email per job" rests on the job's effect ledger alone.

use crate::io_clock::IoFutureExt;
use async_trait::async_trait;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};

use super::{ConnectorError, EmailPort};

const SYSTEM: &str = "email";

pub struct SesEmail {
    client: aws_sdk_sesv2::Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesEmail {
    /// `from` must be an identity verified in SES; `configuration_set` (optional) routes
    /// bounces, complaints and delivery events where the operator wants them.
    pub fn new(
        client: aws_sdk_sesv2::Client,
        from: String,
        configuration_set: Option<String>,
    ) -> Self {
        Self {
            client,
            from,
            configuration_set,
        }
    }
}

fn utf8(text: &str) -> Result<Content, ConnectorError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| ConnectorError::Malformed {
            system: SYSTEM,
            detail: e.to_string(),
        })
}

/// A message tag value allows only `[A-Za-z0-9_-]` (at most 256 characters): the job key is
/// mapped into that alphabet so a bounce or complaint event can be traced back to its job.
fn tag_value(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// Throttling, quotas and a paused account are worth retrying later (a paused account ends in
/// the DLQ, ready for a redrive once it is fixed); what SES refuses outright is not.
fn classify(err: SdkError<SendEmailError>) -> ConnectorError {
    // SES names the addresses it refuses ("identities failed the check ... alice@...").
    let detail = crate::redact::redact(&DisplayErrorContext(&err).to_string()).into_owned();
    match &err {
        SdkError::ServiceError(service) => match service.err() {
            SendEmailError::TooManyRequestsException(_)
            | SendEmailError::LimitExceededException(_)
            | SendEmailError::SendingPausedException(_)
            | SendEmailError::AccountSuspendedException(_) => ConnectorError::Unavailable {
                system: SYSTEM,
                detail,
            },
            SendEmailError::MessageRejected(_)
            | SendEmailError::BadRequestException(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::NotFoundException(_) => ConnectorError::Rejected {
                system: SYSTEM,
                status: service.raw().status().as_u16(),
                detail,
            },
            _ => {
                let status = service.raw().status().as_u16();
                if status >= 500 || status == 429 {
                    ConnectorError::Unavailable {
                        system: SYSTEM,
                        detail,
                    }
                } else {
                    ConnectorError::Rejected {
                        system: SYSTEM,
                        status,
                        detail,
                    }
                }
            }
        },
        // Timeouts, connection failures, unreadable responses: the request may not have
        // reached SES, or its answer did not reach us.
        _ => ConnectorError::Unavailable {
            system: SYSTEM,
            detail,
        },
    }
}

#[async_trait]
impl EmailPort for SesEmail {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError> {
        let message = Message::builder()
            .subject(utf8(subject)?)
            .body(Body::builder().text(utf8(text)?).build())
            .build();
        let tag = MessageTag::builder()
            .name("job")
            .value(tag_value(idempotency_key))
            .build()
            .map_err(|e| ConnectorError::Malformed {
                system: SYSTEM,
                detail: e.to_string(),
            })?;
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .email_tags(tag)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .io()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::tag_value;

    #[test]
    fn job_keys_become_valid_tag_values() {
        assert_eq!(
            tag_value("email:default:refund:1004"),
            "email_default_refund_1004"
        );
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }
}
