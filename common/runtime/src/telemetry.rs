//! Logs, metrics and traces.
//!
//! `tracing` always logs to stderr (text or JSON). When `OTEL_EXPORTER_OTLP_ENDPOINT` (or the
//! metrics/traces specific variant) is set, metrics and spans are also exported over OTLP/HTTP
//! (protobuf) with the standard `OTEL_*` environment variables; when it is not, the meter provider has
//! no exporter and recording costs next to nothing. The resource (`service.name`, version) is built
//! once. [`Telemetry::shutdown`] flushes and stops every provider within a bounded time.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::TelemetrySettings;

/// The instrumentation scope of every Portcullis meter.
pub const METER_NAME: &str = "portcullis";

/// Whether OTLP export is configured through the standard environment variables.
pub fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
}

/// This process's `service.instance.id`: random, fixed for the life of the process.
pub fn instance_id() -> &'static str {
    static ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| uuid::Uuid::new_v4().to_string());
    &ID
}

/// The OpenTelemetry resource for this process. `service.instance.id` tells replicas apart (each
/// exports its own view of the posture gauges, so their series must not collide); it is random per
/// process unless `OTEL_RESOURCE_ATTRIBUTES` sets it (for example to the ECS task id).
pub fn resource(service_name: &str) -> Resource {
    let mut attributes = vec![KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    let from_env = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default().contains("service.instance.id=");
    if !from_env {
        attributes.push(KeyValue::new("service.instance.id", instance_id().to_owned()));
    }
    Resource::builder().with_service_name(service_name.to_owned()).with_attributes(attributes).build()
}

/// Installed telemetry; keep it alive for the life of the process and shut it down at the end.
#[derive(Debug)]
pub struct Telemetry {
    meter_provider: Option<SdkMeterProvider>,
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Install the global `tracing` subscriber and build the providers; OTLP export is on when the
    /// standard `OTEL_EXPORTER_OTLP_*` variables name an endpoint.
    pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Self> {
        Self::install(settings, otlp_configured(), None)
    }

    /// Like [`Telemetry::init`], exporting OTLP/HTTP to `base_url` (`/v1/metrics`, `/v1/traces`)
    /// whatever the environment says.
    pub fn init_with_otlp_endpoint(settings: &TelemetrySettings, base_url: &str) -> anyhow::Result<Self> {
        Self::install(settings, true, Some(base_url.trim_end_matches('/')))
    }

    fn install(settings: &TelemetrySettings, otlp: bool, base_url: Option<&str>) -> anyhow::Result<Self> {
        use opentelemetry_otlp::WithExportConfig;
        let resource = resource(&settings.service_name);
        let (meter_provider, tracer_provider) = if otlp {
            let mut metric_exporter = opentelemetry_otlp::MetricExporter::builder().with_http();
            let mut span_exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
            if let Some(base) = base_url {
                metric_exporter = metric_exporter.with_endpoint(format!("{base}/v1/metrics"));
                span_exporter = span_exporter.with_endpoint(format!("{base}/v1/traces"));
            }
            let metric_exporter = metric_exporter.build()?;
            let reader = PeriodicReader::builder(metric_exporter)
                .with_interval(Duration::from_secs(settings.metric_export_interval_seconds.max(1)))
                .build();
            let meters = SdkMeterProvider::builder().with_resource(resource.clone()).with_reader(reader).build();
            let span_exporter = span_exporter.build()?;
            let tracers =
                SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(span_exporter).build();
            (Some(meters), Some(tracers))
        } else {
            // No exporter: instruments come from the no-op global provider and cost nothing.
            (None, None)
        };

        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log_filter));
        let otel_layer =
            tracer_provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(METER_NAME)));
        let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
        let installed = if settings.log_format == "json" {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
        } else {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).try_init()
        };
        if installed.is_err() {
            // Another subscriber (a test harness) is already installed; keep it.
            tracing::debug!("a tracing subscriber was already installed");
        }
        tracing::info!(otlp, "telemetry initialised");
        Ok(Self { meter_provider, tracer_provider })
    }

    /// A meter for instruments (a no-op one when OTLP export is off).
    pub fn meter(&self) -> Meter {
        match &self.meter_provider {
            Some(p) => p.meter(METER_NAME),
            None => opentelemetry::global::meter_provider().meter(METER_NAME),
        }
    }

    /// A handle that exports what has been recorded, on demand, without stopping anything.
    pub fn flusher(&self) -> Flusher {
        Flusher { meter_provider: self.meter_provider.clone(), tracer_provider: self.tracer_provider.clone() }
    }

    /// Flush and stop every provider; never blocks for more than `timeout`.
    pub fn shutdown(self, timeout: Duration) {
        let Telemetry { meter_provider, tracer_provider } = self;
        let worker = std::thread::spawn(move || {
            if let Some(m) = meter_provider
                && let Err(e) = m.shutdown_with_timeout(timeout)
            {
                eprintln!("metrics shutdown: {e}");
            }
            if let Some(t) = tracer_provider
                && let Err(e) = t.shutdown_with_timeout(timeout)
            {
                eprintln!("traces shutdown: {e}");
            }
        });
        let deadline = std::time::Instant::now() + timeout + Duration::from_millis(500);
        while !worker.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Instruments built from their declarations in [`portcullis_domain::metrics`]: the name, description
/// and unit come from there and nowhere else.
pub mod instruments {
    use opentelemetry::metrics::{AsyncInstrumentBuilder, Counter, Histogram, Meter, ObservableGauge};
    use portcullis_domain::metrics::{Instrument, Metric};

    fn check(m: &Metric, instrument: Instrument) {
        debug_assert_eq!(m.instrument, instrument, "{} is declared a {}", m.name, m.instrument.as_str());
    }

    /// A `u64` counter.
    pub fn counter(meter: &Meter, m: &Metric) -> Counter<u64> {
        check(m, Instrument::Counter);
        meter.u64_counter(m.name).with_description(m.description).with_unit(m.unit).build()
    }

    /// An `f64` histogram with explicit bucket boundaries.
    pub fn histogram(meter: &Meter, m: &Metric, boundaries: Vec<f64>) -> Histogram<f64> {
        check(m, Instrument::Histogram);
        meter
            .f64_histogram(m.name)
            .with_description(m.description)
            .with_unit(m.unit)
            .with_boundaries(boundaries)
            .build()
    }

    /// A `u64` histogram with explicit bucket boundaries.
    pub fn u64_histogram(meter: &Meter, m: &Metric, boundaries: Vec<f64>) -> Histogram<u64> {
        check(m, Instrument::Histogram);
        meter
            .u64_histogram(m.name)
            .with_description(m.description)
            .with_unit(m.unit)
            .with_boundaries(boundaries)
            .build()
    }

    /// An `i64` observable gauge, to be given its callback.
    pub fn i64_gauge<'a>(meter: &'a Meter, m: &Metric) -> AsyncInstrumentBuilder<'a, ObservableGauge<i64>, i64> {
        check(m, Instrument::Gauge);
        let b = meter.i64_observable_gauge(m.name).with_description(m.description);
        if m.unit.is_empty() { b } else { b.with_unit(m.unit) }
    }

    /// A `u64` observable gauge, to be given its callback.
    pub fn u64_gauge<'a>(meter: &'a Meter, m: &Metric) -> AsyncInstrumentBuilder<'a, ObservableGauge<u64>, u64> {
        check(m, Instrument::Gauge);
        let b = meter.u64_observable_gauge(m.name).with_description(m.description);
        if m.unit.is_empty() { b } else { b.with_unit(m.unit) }
    }
}

/// Exports what has been recorded now, without stopping (the end of a Lambda invocation: the process
/// is frozen until the next one, so a periodic export may never run).
#[derive(Debug, Clone)]
pub struct Flusher {
    meter_provider: Option<SdkMeterProvider>,
    tracer_provider: Option<SdkTracerProvider>,
}

impl Flusher {
    /// Export now; never waits for more than `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let meters = self.meter_provider.clone();
        let tracers = self.tracer_provider.clone();
        if meters.is_none() && tracers.is_none() {
            return;
        }
        let flush = tokio::task::spawn_blocking(move || {
            if let Some(m) = meters
                && let Err(e) = m.force_flush()
            {
                tracing::warn!(error = %e, "metrics flush failed");
            }
            if let Some(t) = tracers
                && let Err(e) = t.force_flush()
            {
                tracing::warn!(error = %e, "traces flush failed");
            }
        });
        if tokio::time::timeout(timeout, flush).await.is_err() {
            tracing::warn!(?timeout, "telemetry flush did not finish in time");
        }
    }
}
