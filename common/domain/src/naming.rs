//! Resource names derived from the stack prefix.
//!
//! The CloudFormation template names every resource `<Prefix>-<role>` (moto's CloudFormation returns no
//! stack outputs, and predictable names let many stacks live side by side), and the code derives the
//! same names from `stack.prefix`. Keep this file and `infra/cloudformation/portcullis.yaml` in step.

/// Whether `prefix` is a valid stack prefix: 3–40 of lowercase letters, digits and `-`, starting with
/// a letter.
pub fn is_valid_prefix(prefix: &str) -> bool {
    (3..=40).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The names of one stack's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNames {
    prefix: String,
}

impl StackNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// CloudFormation stack name.
    pub fn stack(&self) -> String {
        self.prefix.clone()
    }
    /// Requests to the access worker.
    pub fn access_queue(&self) -> String {
        format!("{}-access-requests", self.prefix)
    }
    /// Dead letters of the access queue.
    pub fn access_dlq(&self) -> String {
        format!("{}-access-requests-dlq", self.prefix)
    }
    /// EventBridge change events for the posture worker.
    pub fn posture_queue(&self) -> String {
        format!("{}-posture-events", self.prefix)
    }
    /// Dead letters of the posture queue.
    pub fn posture_dlq(&self) -> String {
        format!("{}-posture-events-dlq", self.prefix)
    }
    /// HR events for the directory worker.
    pub fn directory_queue(&self) -> String {
        format!("{}-directory-events", self.prefix)
    }
    /// Dead letters of the directory queue.
    pub fn directory_dlq(&self) -> String {
        format!("{}-directory-events-dlq", self.prefix)
    }
    /// The bus's grant events for the Slack edge (an EventBridge rule fills it).
    pub fn slack_events_queue(&self) -> String {
        format!("{}-slack-events", self.prefix)
    }
    /// Dead letters of the Slack edge's events queue.
    pub fn slack_events_dlq(&self) -> String {
        format!("{}-slack-events-dlq", self.prefix)
    }
    /// The Slack edge's reply queue (matches the default `access.reply_queue_names`).
    pub fn slack_reply_queue(&self) -> String {
        format!("{}-reply-slack", self.prefix)
    }
    /// The single DynamoDB table.
    pub fn table(&self) -> String {
        format!("{}-state", self.prefix)
    }
    /// The Portcullis EventBridge bus (posture violations).
    pub fn event_bus(&self) -> String {
        format!("{}-bus", self.prefix)
    }
    /// The broker role in the stack's own account.
    pub fn broker_role(&self) -> String {
        format!("{}-broker", self.prefix)
    }
    /// ARN globs of every resource the stack owns that a session could reach: its queues, table,
    /// bus, archive and rules, and its roles. No template may grant them
    /// ([`crate::guardrails::Guardrails`]), and the broker role's ceiling denies them too.
    pub fn own_resources(&self) -> Vec<String> {
        let p = &self.prefix;
        vec![
            format!("arn:*:sqs:*:*:{p}-*"),
            format!("arn:*:dynamodb:*:*:table/{p}-*"),
            format!("arn:*:events:*:*:event-bus/{p}-*"),
            format!("arn:*:events:*:*:archive/{p}-*"),
            format!("arn:*:events:*:*:rule/{p}-*"),
            format!("arn:*:iam::*:role/{p}-*"),
        ]
    }

    /// The role requesters assume with their ID token (`AssumeRoleWithWebIdentity`).
    pub fn requester_role(&self) -> String {
        format!("{}-requester", self.prefix)
    }
    /// Prefix of per-requester reply queues (`<prefix>-reply-<sub>`).
    pub fn reply_queue_prefix(&self) -> String {
        format!("{}-reply-", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("portcullis-local"));
        assert!(!is_valid_prefix("Portcullis"));
        assert!(!is_valid_prefix("p"));
        assert!(!is_valid_prefix("1abc"));
        assert_eq!(StackNames::new("p-x").access_dlq(), "p-x-access-requests-dlq");
    }
}
