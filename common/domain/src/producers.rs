//! Trusted producers: systems (a Slack bot, the HR system) recognised by their SQS `SenderId`, each
//! allowed some kinds, and some allowed to act on behalf of people.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, RequestError};
use crate::glob;
use crate::messages::{Kind, QueueRole};

/// One trusted producer, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// A name for audit events and grants (`via`).
    pub name: String,
    /// SQS `SenderId` globs: an IAM user id (`AIDA…`) or a role session (`AROA…:session`, or
    /// `AROA…:*` for any session of the role).
    pub sender_ids: Vec<String>,
    /// Kinds it may send (`user.*` style globs allowed).
    pub kinds: Vec<String>,
    /// Whether it may send `on_behalf_of` a person instead of an ID token.
    #[serde(default)]
    pub on_behalf: bool,
}

impl Producer {
    fn matches(&self, sender_id: &str) -> bool {
        self.sender_ids.iter().any(|p| p.len() <= 256 && glob::matches(p.as_bytes(), sender_id.as_bytes()))
    }

    fn may_send(&self, kind: Kind) -> bool {
        self.kinds.iter().any(|k| glob::matches(k.as_bytes(), kind.as_str().as_bytes()))
    }
}

/// The producers of a deployment.
///
/// With none configured, anyone may send the access kinds with their own ID token (a development
/// setup), and nobody may send directory kinds or act for someone else. Once producers are
/// configured, only they may send, each only its kinds: list people's requests too, for example the
/// requester role's sessions (`AROA…:*`) with the access kinds and without `on_behalf`.
#[derive(Debug, Clone, Default)]
pub struct Producers {
    list: Vec<Producer>,
}

impl Producers {
    pub fn new(list: Vec<Producer>) -> Self {
        Self { list }
    }

    /// The producer a message comes from (`None`: no producers are configured), or
    /// `producer_forbidden` when its sender may not send `kind` (with `on_behalf_of` when
    /// `on_behalf`).
    pub fn admit(
        &self,
        sender_id: Option<&str>,
        kind: Kind,
        on_behalf: bool,
    ) -> Result<Option<&Producer>, RequestError> {
        let refuse = |why: String| Err(RequestError::new(ErrorCode::ProducerForbidden, why));
        if self.list.is_empty() {
            if kind.queue() == QueueRole::Directory {
                return refuse(format!("`{}` is accepted only from a configured producer", kind.as_str()));
            }
            if on_behalf {
                return refuse("only a configured producer allowed to act for people may send on_behalf_of".into());
            }
            return Ok(None);
        }
        let Some(producer) = sender_id.and_then(|id| self.list.iter().find(|p| p.matches(id))) else {
            let who: String = sender_id.unwrap_or("an unknown sender").chars().take(128).collect();
            return refuse(format!("{who} is not a configured producer"));
        };
        if !producer.may_send(kind) {
            return refuse(format!("producer `{}` may not send `{}`", producer.name, kind.as_str()));
        }
        if on_behalf && !producer.on_behalf {
            return refuse(format!("producer `{}` may not act on behalf of people", producer.name));
        }
        Ok(Some(producer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producers() -> Producers {
        Producers::new(vec![
            Producer {
                name: "slack".into(),
                sender_ids: vec!["AROASLACK:*".into()],
                kinds: vec!["grant.*".into(), "credentials.request".into()],
                on_behalf: true,
            },
            Producer {
                name: "hr".into(),
                sender_ids: vec!["AIDAHR".into()],
                kinds: vec!["user.*".into()],
                on_behalf: false,
            },
        ])
    }

    #[test]
    fn producers_send_only_their_kinds_and_only_some_act_for_people() {
        let p = producers();
        let admitted =
            |sender: &str, kind, on_behalf| p.admit(Some(sender), kind, on_behalf).map(|p| p.map(|p| p.name.clone()));
        assert_eq!(admitted("AROASLACK:bot-1", Kind::GrantRequest, true), Ok(Some("slack".into())));
        assert_eq!(admitted("AIDAHR", Kind::UserOffboarded, false), Ok(Some("hr".into())));
        for (sender, kind, on_behalf) in [
            ("AROASLACK:bot-1", Kind::TemplatePut, false),
            ("AROASLACK:bot-1", Kind::UserOffboarded, false),
            ("AIDAHR", Kind::GrantRequest, false),
            ("AIDAHR", Kind::UserOffboarded, true),
            ("AROASOMEONE:alice", Kind::GrantRequest, false),
        ] {
            assert_eq!(
                admitted(sender, kind, on_behalf).unwrap_err().code,
                ErrorCode::ProducerForbidden,
                "{sender} {kind:?}"
            );
        }
        assert!(p.admit(None, Kind::GrantList, false).is_err());
        // None configured: people's own requests only.
        let none = Producers::default();
        assert_eq!(none.admit(Some("anyone"), Kind::GrantRequest, false), Ok(None));
        assert!(none.admit(Some("anyone"), Kind::UserOffboarded, false).is_err());
        assert!(none.admit(Some("anyone"), Kind::GrantRequest, true).is_err());
    }
}
