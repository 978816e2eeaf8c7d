//! KMS controls.

use serde::{Deserialize, Serialize};

use super::{ControlId, ControlResult, Unreadable, verdict};

// ------------------------------------------------------------------ KMS.3 / KMS.4

/// One KMS key, from `DescribeKey` (and `GetKeyRotationStatus` when it can rotate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKeyFacts {
    pub key_id: String,
    pub arn: String,
    /// `CUSTOMER` or `AWS`.
    pub manager: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// `SYMMETRIC_DEFAULT`, `RSA_2048`, `HMAC_256`, ...
    pub spec: String,
    /// `AWS_KMS`, `EXTERNAL`, `AWS_CLOUDHSM`, `EXTERNAL_KEY_STORE`.
    pub origin: String,
    /// Rotation status, read only for keys that can rotate.
    pub rotation_enabled: Option<bool>,
}

impl KmsKeyFacts {
    /// Whether KMS.4 applies: customer managed, enabled, symmetric, AWS_KMS origin. Other keys
    /// (asymmetric, HMAC, imported, custom key store) cannot rotate automatically.
    pub fn can_rotate(&self) -> bool {
        self.manager == "CUSTOMER"
            && self.state == "Enabled"
            && self.spec == "SYMMETRIC_DEFAULT"
            && self.origin == "AWS_KMS"
    }
}

impl KmsKeyFacts {
    /// Whether KMS.3 fails: a customer managed key scheduled for deletion, including a multi-Region
    /// primary waiting for its replicas to be deleted first (`PendingReplicaDeletion`).
    pub fn pending_deletion(&self) -> bool {
        self.manager == "CUSTOMER" && matches!(self.state.as_str(), "PendingDeletion" | "PendingReplicaDeletion")
    }
}

/// KMS.4: every rotatable key has rotation on. KMS.3: no customer key is pending deletion. Keys
/// that could not be described still leave a failure of the others standing.
pub fn evaluate_kms(keys: &[KmsKeyFacts], unreadable: &[Unreadable]) -> (ControlResult, ControlResult) {
    let not_rotating: Vec<String> =
        keys.iter().filter(|k| k.can_rotate() && k.rotation_enabled != Some(true)).map(|k| k.arn.clone()).collect();
    let n = not_rotating.len();
    let rotation =
        verdict(ControlId::Kms4, not_rotating, unreadable, format!("{n} customer managed key(s) do not rotate"));
    let pending: Vec<String> = keys.iter().filter(|k| k.pending_deletion()).map(|k| k.arn.clone()).collect();
    let n = pending.len();
    let deletion =
        verdict(ControlId::Kms3, pending, unreadable, format!("{n} customer managed key(s) are pending deletion"));
    (rotation, deletion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::posture::controls::Status;

    #[test]
    fn only_rotatable_keys_count_for_kms4() {
        let key = |id: &str, spec: &str, origin: &str, state: &str, rotation: Option<bool>| KmsKeyFacts {
            key_id: id.into(),
            arn: format!("arn:aws:kms:us-east-1:123456789012:key/{id}"),
            manager: "CUSTOMER".into(),
            state: state.into(),
            spec: spec.into(),
            origin: origin.into(),
            rotation_enabled: rotation,
        };
        let keys = vec![
            key("ok", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(true)),
            key("norot", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(false)),
            key("rsa", "RSA_2048", "AWS_KMS", "Enabled", None),
            key("hmac", "HMAC_256", "AWS_KMS", "Enabled", None),
            key("imported", "SYMMETRIC_DEFAULT", "EXTERNAL", "Enabled", None),
            key("disabled", "SYMMETRIC_DEFAULT", "AWS_KMS", "Disabled", Some(false)),
            key("dying", "SYMMETRIC_DEFAULT", "AWS_KMS", "PendingDeletion", None),
            // A multi-Region primary scheduled for deletion while its replicas remain.
            key("mrk-dying", "SYMMETRIC_DEFAULT", "AWS_KMS", "PendingReplicaDeletion", None),
            KmsKeyFacts { manager: "AWS".into(), ..key("aws", "SYMMETRIC_DEFAULT", "AWS_KMS", "Enabled", Some(false)) },
        ];
        let (rotation, deletion) = evaluate_kms(&keys, &[]);
        assert_eq!(rotation.status, Status::Fail);
        assert_eq!(rotation.failing_resources, vec!["arn:aws:kms:us-east-1:123456789012:key/norot"]);
        assert_eq!(
            deletion.failing_resources,
            vec!["arn:aws:kms:us-east-1:123456789012:key/dying", "arn:aws:kms:us-east-1:123456789012:key/mrk-dying"]
        );
        let (rotation, deletion) = evaluate_kms(&keys[..1], &[]);
        assert_eq!((rotation.status, deletion.status), (Status::Pass, Status::Pass));
        // A key that cannot be described leaves the others' failures standing, and a pass open.
        let denied = Unreadable {
            resource: "k-denied".into(),
            error_code: ErrorCode::AccessDenied,
            reason: "kms:DescribeKey: AccessDeniedException".into(),
        };
        let (rotation, deletion) = evaluate_kms(&keys, std::slice::from_ref(&denied));
        assert_eq!((rotation.status, deletion.status), (Status::Fail, Status::Fail));
        assert!(rotation.reason.unwrap().contains("k-denied"));
        let (rotation, _) = evaluate_kms(&keys[..1], std::slice::from_ref(&denied));
        assert_eq!((rotation.status, rotation.error_code), (Status::Unknown, Some(ErrorCode::AccessDenied)));
    }
}
