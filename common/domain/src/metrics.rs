//! Every metric Portcullis exports, declared once: its OTLP instrument name, the name Prometheus shows
//! after the collector's translation, its instrument, unit, labels and meaning.
//!
//! The workers build their instruments from these declarations (`portcullis_runtime::telemetry`),
//! `docs/metrics.md` is generated from them (`make schemas`; a test fails when it drifts), and
//! `infra/prometheus/check.sh` reads that table: an alert rule or dashboard panel that names a metric
//! not declared here fails `make test`.

/// What kind of OTLP instrument a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrument {
    Counter,
    Gauge,
    Histogram,
}

impl Instrument {
    pub fn as_str(self) -> &'static str {
        match self {
            Instrument::Counter => "counter",
            Instrument::Gauge => "gauge",
            Instrument::Histogram => "histogram",
        }
    }
}

/// One metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// The OTLP instrument name.
    pub name: &'static str,
    /// The name Prometheus shows (counters end in `_total`; a histogram's series add `_bucket`,
    /// `_sum` and `_count`).
    pub prometheus: &'static str,
    pub instrument: Instrument,
    /// UCUM unit (`s`, `%`, `{message}`), or empty.
    pub unit: &'static str,
    /// The labels (Prometheus spelling) of its series, besides the job's own.
    pub labels: &'static [&'static str],
    pub description: &'static str,
    /// The worker that exports it: `access`, `posture`, or `every worker`.
    pub exported_by: &'static str,
}

impl Metric {
    /// Every series name Prometheus shows for it.
    pub fn series_names(&self) -> Vec<String> {
        match self.instrument {
            Instrument::Histogram => {
                ["_bucket", "_sum", "_count"].iter().map(|s| format!("{}{s}", self.prometheus)).collect()
            }
            _ => vec![self.prometheus.to_owned()],
        }
    }
}

macro_rules! metrics {
    ($( $(#[$doc:meta])* $konst:ident = $name:literal => $prom:literal, $inst:ident, $unit:literal,
        [$($label:literal),*], $by:literal, $desc:literal; )*) => {
        $( $(#[$doc])* pub const $konst: Metric = Metric {
            name: $name,
            prometheus: $prom,
            instrument: Instrument::$inst,
            unit: $unit,
            labels: &[$($label),*],
            description: $desc,
            exported_by: $by,
        }; )*

        /// Every metric, in documentation order.
        pub const ALL: &[Metric] = &[$($konst),*];
    };
}

metrics! {
    // The message pipeline (every worker).
    MESSAGES_RECEIVED = "portcullis_messages_received" => "portcullis_messages_received_total", Counter,
        "{message}", ["queue"], "every worker", "Messages received from a queue.";
    MESSAGES_PROCESSED = "portcullis_messages_processed" => "portcullis_messages_processed_total", Counter,
        "{message}", ["queue", "kind", "outcome"], "every worker",
        "Messages handled, by kind and outcome (`ok`, `rejected`, `retry`, `abandoned` when the visibility lease could not be kept).";
    MESSAGES_FAILED = "portcullis_messages_failed" => "portcullis_messages_failed_total", Counter,
        "{message}", ["queue", "kind", "code"], "every worker",
        "Messages that failed, by kind and error code (`retry` for a retried failure).";
    MESSAGES_DEAD_LETTERED = "portcullis_messages_dead_lettered" => "portcullis_messages_dead_lettered_total",
        Counter, "{message}", ["queue", "code"], "every worker",
        "Messages moved to the dead-letter queue, by error code.";
    QUEUE_ERRORS = "portcullis_queue_errors" => "portcullis_queue_errors_total", Counter, "{error}",
        ["queue", "operation"], "every worker", "Failed SQS calls, by operation.";
    HANDLER_DURATION = "portcullis_handler_duration" => "portcullis_handler_duration_seconds", Histogram, "s",
        ["queue", "kind", "outcome"], "every worker", "Time to handle one message.";

    // Access.
    CREDENTIALS_ISSUED = "portcullis_credentials_issued" => "portcullis_credentials_issued_total", Counter,
        "{credential}", ["cloud_account_id"], "access", "Temporary credentials issued, by account.";
    GRANTS_CREATED = "portcullis_grants_created" => "portcullis_grants_created_total", Counter, "{grant}",
        ["cloud_account_id", "template"], "access",
        "Grants created (pending, active or break-glass), by account and template.";
    SESSION_POLICY_CHARS = "portcullis_session_policy_chars" => "portcullis_session_policy_chars", Histogram,
        "{char}", ["cloud_account_id"], "access", "Characters in composed session policies (STS accepts 2,048).";
    PACKED_POLICY_SIZE = "portcullis_packed_policy_size_percent" => "portcullis_packed_policy_size_percent",
        Histogram, "%", ["cloud_account_id"], "access",
        "STS `PackedPolicySize`: percent of the packed session policy and tags limit used.";
    BREAK_GLASS_UNREVIEWED = "portcullis_break_glass_unreviewed_grants" => "portcullis_break_glass_unreviewed_grants",
        Gauge, "{grant}", ["overdue"], "access",
        "Break-glass grants whose review is owed; `overdue=\"true\"`: past their `review_due`. Every replica counts the same table: take the `max`.";

    // Posture: the seed dashboard's gauges, by their original names (docs/posture.md, "The seed gauges").
    SEED_CLOUDTRAIL_LOGGING = "aws_cloudtrail_logging_enabled" => "aws_cloudtrail_logging_enabled", Gauge, "",
        ["cloud_account_id", "cloud_region"], "posture",
        "1 when CloudTrail.1 passes (a healthy multi-region trail logs every management event), else 0.";
    SEED_GUARDDUTY_HIGH = "aws_guardduty_high_findings" => "aws_guardduty_high_findings", Gauge, "",
        ["cloud_account_id", "cloud_region"], "posture",
        "Active (non-archived) GuardDuty findings of severity 7 or more; -1 when no detector is enabled.";
    SEED_ACCESS_KEY_AGE = "aws_iam_access_key_max_age_days" => "aws_iam_access_key_max_age_days", Gauge, "",
        ["cloud_account_id", "cloud_region"], "posture",
        "Age in whole days of the oldest active IAM access key (0 when none).";
    SEED_KMS_ROTATION = "aws_kms_rotation_all_enabled" => "aws_kms_rotation_all_enabled", Gauge, "",
        ["cloud_account_id", "cloud_region"], "posture",
        "1 when KMS.4 passes (every rotatable customer managed key rotates), else 0.";

    // Posture: one series per control of the catalog.
    CONTROL_STATUS = "portcullis_posture_control_status" => "portcullis_posture_control_status", Gauge, "",
        ["cloud_account_id", "cloud_region", "control_id"], "posture",
        "Control status: 1 pass, 0 fail, -1 unknown.";
    FAILING_RESOURCES = "portcullis_posture_failing_resources" => "portcullis_posture_failing_resources", Gauge,
        "{resource}", ["cloud_account_id", "cloud_region", "control_id"], "posture",
        "Resources failing the control (the evidence item names them).";
    GUARDDUTY_FINDINGS = "portcullis_posture_guardduty_findings" => "portcullis_posture_guardduty_findings",
        Gauge, "{finding}", ["cloud_account_id", "cloud_region", "severity"], "posture",
        "Active GuardDuty findings by severity band (`high` 7.0-8.9, `critical` 9.0-10).";
    OLDEST_ACCESS_KEY_CREATED = "portcullis_posture_iam_oldest_access_key_created_timestamp_seconds"
        => "portcullis_posture_iam_oldest_access_key_created_timestamp_seconds", Gauge, "s",
        ["cloud_account_id", "cloud_region"], "posture",
        "Creation time of the oldest active IAM access key (compute ages in PromQL).";
    SCAN_LAST_SUCCESS = "portcullis_posture_scan_last_success_timestamp_seconds"
        => "portcullis_posture_scan_last_success_timestamp_seconds", Gauge, "s",
        ["cloud_account_id", "cloud_region", "control_id"], "posture",
        "When the control was last measured (pass or fail).";
    SCAN_ERRORS = "portcullis_posture_scan_errors" => "portcullis_posture_scan_errors_total", Counter, "{error}",
        ["cloud_account_id", "cloud_region", "control_id", "error_code"], "posture",
        "Controls that could not be measured (and, for GuardDuty.1, findings statistics that could not be read), by control and error code.";
    EVENTS_RECEIVED = "portcullis_posture_events_received" => "portcullis_posture_events_received_total", Counter,
        "{event}", ["cloud_account_id", "cloud_region", "source", "event_name"], "posture",
        "Change events received from EventBridge, by source and event name.";
    VIOLATIONS_PUBLISHED = "portcullis_posture_violations_published"
        => "portcullis_posture_violations_published_total", Counter, "{event}",
        ["cloud_account_id", "cloud_region", "control_id"], "posture",
        "`Posture Violation` events put on the Portcullis bus.";
    SCAN_DURATION = "portcullis_posture_scan_duration" => "portcullis_posture_scan_duration_seconds", Histogram,
        "s", ["cloud_account_id", "cloud_region", "trigger"], "posture",
        "Wall time of one scan of an account and region (`trigger`: `scheduled` or `event`).";
}

/// `docs/metrics.md`.
pub fn reference() -> String {
    let mut out = String::from(
        "# Portcullis metrics\n\n\
         Generated from `common/domain/src/metrics.rs` (`make schemas`); a test fails when this file drifts, and\n\
         `infra/prometheus/check.sh` refuses an alert rule or dashboard panel that names a metric not listed here.\n\n\
         Workers push over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`); the names below are what Prometheus shows after the\n\
         collector's translation (dots in labels become underscores, counters end in `_total`, a histogram adds\n\
         `_bucket`, `_sum` and `_count`). Every series also carries `service_name` and `service_instance_id`:\n\
         replicas export their own series, so aggregate across instances. Failing resources and users are never labels.\n\n\
         | Prometheus name | type | unit | labels | exported by | meaning |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in ALL {
        let unit = if m.unit.is_empty() { "-".to_owned() } else { format!("`{}`", m.unit) };
        let labels: Vec<String> = m.labels.iter().map(|l| format!("`{l}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | {unit} | {} | {} | {} |\n",
            m.prometheus,
            m.instrument.as_str(),
            labels.join(", "),
            m.exported_by,
            m.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_follow_the_naming_rules() {
        let mut seen = BTreeSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} declared twice", m.name);
            assert!(m.name.starts_with("portcullis_") || m.name.starts_with("aws_"), "{}", m.name);
            assert!(m.prometheus.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            match m.instrument {
                Instrument::Counter => assert_eq!(m.prometheus, format!("{}_total", m.name), "{}", m.name),
                _ if m.unit == "s" => assert!(m.prometheus.ends_with("_seconds"), "{}: base unit in the name", m.name),
                _ => assert!(m.prometheus.starts_with(m.name), "{}", m.name),
            }
            assert!(m.description.ends_with('.'), "{}: a sentence", m.name);
        }
    }

    /// docs/metrics.md is [`reference`] (`make schemas` writes it).
    #[test]
    fn the_metrics_reference_matches_the_declarations() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md");
        let expected = reference();
        if std::env::var_os("PORTCULLIS_BLESS_SCHEMAS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == expected, "docs/metrics.md drifted from common/domain/src/metrics.rs; run `make schemas`");
    }
}
