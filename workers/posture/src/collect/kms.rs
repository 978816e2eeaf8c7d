//! KMS: keys, their state and rotation (KMS.3, KMS.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use portcullis_domain::posture::{KmsKeyFacts, Unreadable};

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// Every key in the region, described, with rotation status for keys that can rotate; keys that
    /// could not be described are returned apart.
    pub(super) async fn read_kms_keys(&self) -> Result<(Vec<KmsKeyFacts>, Vec<Unreadable>), CollectError> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .kms
                    .list_keys()
                    .limit(1000)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| classify("kms:ListKeys", &e))?
            };
            ids.extend(page.keys.unwrap_or_default().into_iter().filter_map(|k| k.key_id));
            match (page.truncated, page.next_marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        let described = futures::stream::iter(ids)
            .map(|id| async move { (self.read_kms_key_kept(&id).await, id) })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let (mut keys, mut unreadable) = (Vec::new(), Vec::new());
        for (got, id) in described {
            match got {
                Ok(Some(k)) => keys.push(k),
                Ok(None) => {} // deleted since it was listed
                Err(e) => unreadable.push(Unreadable {
                    resource: id,
                    error_code: e.code,
                    reason: format!("{}: {}", e.op, e.message),
                }),
            }
        }
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        unreadable.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok((keys, unreadable))
    }

    /// One key, described from what a full scan kept when that is recent enough: then only its
    /// rotation status is read (that can change without the key's description changing).
    async fn read_kms_key_kept(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError> {
        match self.kms_described.kept(key_id) {
            Some(facts) => self.with_rotation(key_id, facts).await,
            None => self.read_kms_key(key_id).await,
        }
    }

    /// One key, read now (`None` when it no longer exists); its description is kept for the full
    /// scans that follow.
    pub(super) async fn read_kms_key(&self, key_id: &str) -> Result<Option<KmsKeyFacts>, CollectError> {
        let described = {
            let _p = self.permit().await;
            self.clients.kms.describe_key().key_id(key_id).send().await
        };
        let meta = match described {
            Ok(out) => match out.key_metadata {
                Some(m) => m,
                None => return Ok(None),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {
                self.kms_described.forget(key_id);
                return Ok(None);
            }
            Err(e) => return Err(classify("kms:DescribeKey", &e)),
        };
        let facts = KmsKeyFacts {
            key_id: meta.key_id.clone(),
            arn: meta.arn.clone().unwrap_or_else(|| meta.key_id.clone()),
            manager: meta.key_manager.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            state: meta.key_state.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            spec: meta.key_spec.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            origin: meta.origin.as_ref().map(|o| o.as_str().to_owned()).unwrap_or_default(),
            rotation_enabled: None,
        };
        self.kms_described.keep(&facts);
        self.with_rotation(key_id, facts).await
    }

    /// `facts` with the key's rotation status when it can rotate (`None`: the key is gone, and
    /// its kept description with it).
    async fn with_rotation(&self, key_id: &str, mut facts: KmsKeyFacts) -> Result<Option<KmsKeyFacts>, CollectError> {
        if facts.can_rotate() {
            match self.rotation_status(key_id).await? {
                Some(enabled) => facts.rotation_enabled = Some(enabled),
                None => {
                    self.kms_described.forget(key_id);
                    return Ok(None);
                }
            }
        }
        Ok(Some(facts))
    }

    /// Whether `key_id` rotates (`None`: the key is gone).
    async fn rotation_status(&self, key_id: &str) -> Result<Option<bool>, CollectError> {
        let _p = self.permit().await;
        match self.clients.kms.get_key_rotation_status().key_id(key_id).send().await {
            Ok(rotation) => Ok(Some(rotation.key_rotation_enabled)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
            Err(e) => Err(classify("kms:GetKeyRotationStatus", &e)),
        }
    }
}

/// Key descriptions kept between full scans, so that a steady full scan makes one call per key
/// that can rotate (its rotation status) plus `ListKeys`. What `DescribeKey` says changes only
/// through calls that are change events (`DisableKey`, `EnableKey`, `ScheduleKeyDeletion`,
/// `CancelKeyDeletion`): the event's own read ([`AwsReader::read_kms_key`]) replaces the kept
/// description, and every description is read again once it is `max_age` old. Only settled states
/// are kept (`Enabled`, `Disabled`, `PendingDeletion`); a key in any other state is described on
/// every scan.
#[derive(Debug, Clone)]
pub(crate) struct KeptDescriptions {
    kept: Arc<Mutex<HashMap<String, (KmsKeyFacts, Instant)>>>,
    max_age: Duration,
}

/// How long a key's description is used before it is read again.
pub(crate) const KMS_DESCRIPTION_MAX_AGE: Duration = Duration::from_secs(3600);

impl KeptDescriptions {
    pub(crate) fn new(max_age: Duration) -> Self {
        Self { kept: Arc::default(), max_age }
    }

    fn kept(&self, key_id: &str) -> Option<KmsKeyFacts> {
        let kept = self.kept.lock().ok()?;
        let (facts, at) = kept.get(key_id)?;
        (at.elapsed() < self.max_age).then(|| facts.clone())
    }

    /// Keep `facts` under the key's id (an event may name the key by its ARN; `ListKeys` by id).
    fn keep(&self, facts: &KmsKeyFacts) {
        let Ok(mut kept) = self.kept.lock() else { return };
        if matches!(facts.state.as_str(), "Enabled" | "Disabled" | "PendingDeletion") {
            kept.insert(facts.key_id.clone(), (facts.clone(), Instant::now()));
        } else {
            kept.remove(&facts.key_id);
        }
    }

    /// Forget the key named `key` (its id or its ARN).
    pub(super) fn forget(&self, key: &str) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.retain(|id, (facts, _)| id != key && facts.arn != key);
        }
    }
}
