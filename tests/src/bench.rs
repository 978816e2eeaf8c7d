//! What the benchmark binaries (`tests/src/bin/bench-*.rs`) share: percentiles, counts from the
//! environment, the JSON results file, and a process's memory from `/proc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::workspace_root;

/// The `p`th percentile of `v` (nearest rank); zero when `v` is empty.
pub fn percentile(v: &[Duration], p: usize) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() * p).div_ceil(100)).clamp(1, v.len()) - 1]
}

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 and p99 of `v` in milliseconds, and how many samples, as JSON.
pub fn p50_p99_json(v: &[Duration]) -> Value {
    json!({"samples": v.len(), "p50_ms": ms(percentile(v, 50)), "p99_ms": ms(percentile(v, 99))})
}

/// A count from the environment variable `name`, else `default`; panics on a value that is not one.
pub fn count_from_env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a count")))
}

pub fn unix_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Write `figures` to `bench/results/<benchmark>-<unix time>.json`; returns the path.
pub fn write_results(benchmark: &str, figures: &Value) -> PathBuf {
    let dir = workspace_root().join("bench/results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{benchmark}-{}.json", unix_time()));
    std::fs::write(&path, serde_json::to_string_pretty(figures).unwrap()).unwrap();
    path.canonicalize().unwrap_or(path)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`: resident now; `VmHWM`: the peak resident so far),
/// in KiB; `None` once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
