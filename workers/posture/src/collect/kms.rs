//! KMS: keys, their state and rotation (KMS.3, KMS.4).

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
            .map(|id| async move { (self.read_kms_key(&id).await, id) })
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

    /// One key (`None` when it no longer exists).
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
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => return Err(classify("kms:DescribeKey", &e)),
        };
        let mut facts = KmsKeyFacts {
            key_id: meta.key_id.clone(),
            arn: meta.arn.clone().unwrap_or_else(|| meta.key_id.clone()),
            manager: meta.key_manager.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default(),
            state: meta.key_state.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            spec: meta.key_spec.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            origin: meta.origin.as_ref().map(|o| o.as_str().to_owned()).unwrap_or_default(),
            rotation_enabled: None,
        };
        if facts.can_rotate() {
            let _p = self.permit().await;
            let rotation = self
                .clients
                .kms
                .get_key_rotation_status()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| classify("kms:GetKeyRotationStatus", &e))?;
            facts.rotation_enabled = Some(rotation.key_rotation_enabled);
        }
        Ok(Some(facts))
    }
}
