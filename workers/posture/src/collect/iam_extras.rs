//! IAM server certificates (IAM.26), their end of validity read from the certificate body, and IAM
//! Access Analyzer's analyzers (IAM.28).

use chrono::{DateTime, Utc};
use futures::StreamExt;
use portcullis_domain::ErrorCode;
use portcullis_domain::posture::Unreadable;
use portcullis_domain::posture::controls::{AnalyzerFacts, ServerCertificateFacts};

use super::{AwsReader, classify};
use crate::ports::CollectError;

/// The end of validity (`notAfter`) of a PEM X.509 certificate.
pub fn certificate_not_after(pem: &str) -> Result<DateTime<Utc>, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let seconds = cert.validity().not_after.timestamp();
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("notAfter {seconds} is out of range"))
}

impl AwsReader {
    /// Every server certificate stored in IAM, with `notAfter` from its body (`GetServerCertificate`,
    /// concurrently within the scan's bound); those whose body cannot be read or parsed, apart.
    pub(super) async fn read_server_certificates(
        &self,
    ) -> Result<(Vec<ServerCertificateFacts>, Vec<Unreadable>), CollectError> {
        let mut listed: Vec<(String, String)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .iam
                    .list_server_certificates()
                    .max_items(1000)
                    .set_marker(marker.take())
                    .send()
                    .await
                    .map_err(|e| classify("iam:ListServerCertificates", &e))?
            };
            for m in page.server_certificate_metadata_list() {
                listed.push((m.server_certificate_name().to_owned(), m.arn().to_owned()));
            }
            match page.marker().filter(|m| page.is_truncated() && !m.is_empty()) {
                Some(m) => marker = Some(m.to_owned()),
                None => break,
            }
        }
        let read = futures::stream::iter(listed)
            .map(|(name, arn)| async move {
                let out = {
                    let _p = self.permit().await;
                    self.clients.iam.get_server_certificate().server_certificate_name(&name).send().await
                };
                let not_after = match out {
                    Ok(out) => match out.server_certificate() {
                        Some(c) => certificate_not_after(c.certificate_body())
                            .map_err(|why| (ErrorCode::ReadFailed, format!("the certificate body: {why}"))),
                        None => Err((ErrorCode::ReadFailed, "iam:GetServerCertificate returned no certificate".into())),
                    },
                    Err(e) => {
                        let e = classify("iam:GetServerCertificate", &e);
                        Err((e.code, format!("{}: {}", e.op, e.message)))
                    }
                };
                match not_after {
                    Ok(not_after) => Ok(ServerCertificateFacts { arn, not_after }),
                    Err((error_code, reason)) => Err(Unreadable { resource: arn, error_code, reason }),
                }
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        let (mut certificates, mut unreadable) = (Vec::new(), Vec::new());
        for r in read {
            match r {
                Ok(c) => certificates.push(c),
                Err(u) => unreadable.push(u),
            }
        }
        certificates.sort_by(|a, b| a.arn.cmp(&b.arn));
        Ok((certificates, unreadable))
    }

    /// Every IAM Access Analyzer analyzer of the region, of any type (pages of up to 100).
    pub(super) async fn read_access_analyzers(&self) -> Result<Vec<AnalyzerFacts>, CollectError> {
        let mut analyzers = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = {
                let _p = self.permit().await;
                self.clients
                    .accessanalyzer
                    .list_analyzers()
                    .max_results(100)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("access-analyzer:ListAnalyzers", &e))?
            };
            for a in page.analyzers() {
                analyzers.push(AnalyzerFacts {
                    arn: a.arn().to_owned(),
                    analyzer_type: a.r#type().as_str().to_owned(),
                    status: a.status().as_str().to_owned(),
                });
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(analyzers),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid from 2020-01-01 to 2021-01-01 (generated with Python's
    /// `cryptography`, the emulator's own dependency).
    const EXPIRED_2021: &str = include_str!("testdata/expired-2021.pem");

    #[test]
    fn not_after_is_read_from_the_certificate_body() {
        let not_after = certificate_not_after(EXPIRED_2021).unwrap();
        assert_eq!(not_after.to_rfc3339(), "2021-01-01T00:00:00+00:00");
        assert!(certificate_not_after("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(certificate_not_after("not a certificate").is_err());
    }
}
