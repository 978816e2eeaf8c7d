//! The access worker's own metrics, recorded in one place.

use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge};
use portcullis_domain::AccountId;
use portcullis_domain::grant::Grant;
use portcullis_domain::metrics;
use portcullis_runtime::telemetry::instruments;

/// Access pipeline metrics.
#[derive(Debug, Clone)]
pub struct AccessMetrics {
    credentials_issued: Counter<u64>,
    grants_created: Counter<u64>,
    policy_size: Histogram<u64>,
    packed_policy_size: Histogram<u64>,
    /// The last count of break-glass grants awaiting review: (all, overdue); none before the first.
    reviews_owed: Arc<Mutex<Option<(u64, u64)>>>,
    _reviews_owed_gauge: ObservableGauge<u64>,
}

impl AccessMetrics {
    pub fn new(meter: &Meter) -> Self {
        let reviews_owed: Arc<Mutex<Option<(u64, u64)>>> = Arc::default();
        let observed = reviews_owed.clone();
        let reviews_owed_gauge = instruments::u64_gauge(meter, &metrics::BREAK_GLASS_UNREVIEWED)
            .with_callback(move |gauge| {
                if let Some((all, overdue)) = *observed.lock().unwrap_or_else(|p| p.into_inner()) {
                    gauge.observe(all.saturating_sub(overdue), &[KeyValue::new("overdue", "false")]);
                    gauge.observe(overdue, &[KeyValue::new("overdue", "true")]);
                }
            })
            .build();
        Self {
            reviews_owed,
            _reviews_owed_gauge: reviews_owed_gauge,
            credentials_issued: instruments::counter(meter, &metrics::CREDENTIALS_ISSUED),
            grants_created: instruments::counter(meter, &metrics::GRANTS_CREATED),
            policy_size: instruments::u64_histogram(
                meter,
                &metrics::SESSION_POLICY_CHARS,
                vec![256.0, 512.0, 1024.0, 1536.0, 1792.0, 2048.0],
            ),
            packed_policy_size: instruments::u64_histogram(
                meter,
                &metrics::PACKED_POLICY_SIZE,
                vec![10.0, 25.0, 50.0, 75.0, 90.0, 100.0],
            ),
        }
    }
}

impl AccessMetrics {
    pub(crate) fn grant_created(&self, grant: &Grant) {
        self.grants_created.add(
            1,
            &[
                KeyValue::new("cloud.account.id", grant.account.to_string()),
                KeyValue::new("template", grant.template.to_string()),
            ],
        );
    }

    pub(crate) fn credentials_issued(&self, account: &AccountId, policy_chars: usize, packed: Option<i32>) {
        let attrs = [KeyValue::new("cloud.account.id", account.to_string())];
        self.credentials_issued.add(1, &attrs);
        self.policy_size.record(u64::try_from(policy_chars).unwrap_or(u64::MAX), &attrs);
        if let Some(p) = packed {
            self.packed_policy_size.record(u64::try_from(p).unwrap_or(0), &attrs);
        }
    }
}

impl AccessMetrics {
    /// Break-glass grants whose review is owed: `all` of them, `overdue` of those past their due time.
    pub(crate) fn reviews_owed(&self, all: u64, overdue: u64) {
        *self.reviews_owed.lock().unwrap_or_else(|p| p.into_inner()) = Some((all, overdue));
    }
}
