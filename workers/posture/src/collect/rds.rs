//! RDS DB instances (RDS.2, RDS.3, RDS.13) and EFS file systems (EFS.1): one paginated describe
//! call per region each.

use portcullis_domain::posture::controls::{DbInstanceFacts, FileSystemFacts};

use super::{AwsReader, classify};
use crate::ports::CollectError;

impl AwsReader {
    /// Every DB instance of the region (pages of up to 100).
    pub(super) async fn read_db_instances(&self) -> Result<Vec<DbInstanceFacts>, CollectError> {
        let mut instances = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .rds
                    .describe_db_instances()
                    .max_records(100)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("rds:DescribeDBInstances", &e))?
            };
            for i in page.db_instances() {
                let arn = match (i.db_instance_arn(), i.db_instance_identifier()) {
                    (Some(arn), _) => arn.to_owned(),
                    (None, id) => {
                        format!("arn:aws:rds:{}:{}:db:{}", self.region, self.account_id, id.unwrap_or_default())
                    }
                };
                instances.push(DbInstanceFacts {
                    arn,
                    publicly_accessible: i.publicly_accessible().unwrap_or(false),
                    storage_encrypted: i.storage_encrypted().unwrap_or(false),
                    auto_minor_version_upgrade: i.auto_minor_version_upgrade().unwrap_or(false),
                });
            }
            match page.marker().filter(|m| !m.is_empty()) {
                Some(m) => marker = Some(m.to_owned()),
                None => return Ok(instances),
            }
        }
    }

    /// Every EFS file system of the region (pages of up to 100).
    pub(super) async fn read_file_systems(&self) -> Result<Vec<FileSystemFacts>, CollectError> {
        let mut file_systems = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .efs
                    .describe_file_systems()
                    .max_items(100)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("elasticfilesystem:DescribeFileSystems", &e))?
            };
            for f in page.file_systems() {
                let arn = match f.file_system_arn() {
                    Some(arn) => arn.to_owned(),
                    None => format!(
                        "arn:aws:elasticfilesystem:{}:{}:file-system/{}",
                        self.region,
                        self.account_id,
                        f.file_system_id()
                    ),
                };
                file_systems.push(FileSystemFacts { arn, encrypted: f.encrypted().unwrap_or(false) });
            }
            match page.next_marker().filter(|m| !m.is_empty()) {
                Some(m) => marker = Some(m.to_owned()),
                None => return Ok(file_systems),
            }
        }
    }
}
