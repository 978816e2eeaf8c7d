//! How results read in a terminal: plain text and tables over the typed results of
//! `portcullis_domain::messages`, pure functions of their input and the current time (`--output
//! json` prints the results themselves). Commands only choose which renderer to call.
//!
//! - [`grants`]: grants, pending approvals and reviews, a request's outcome.
//! - [`templates`]: the template list and one template.
//! - [`revocation`]: what a revocation covered.
//! - [`posture`]: the latest evidence per control.
//! - [`session`]: who is logged in.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub(crate) mod grants;
pub(crate) mod posture;
pub(crate) mod revocation;
pub(crate) mod session;
pub(crate) mod templates;

#[cfg(test)]
pub(crate) mod fixtures;

/// A plain text table: a header row and left-aligned columns, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `2h 5m`, `45m`, `30s`, or `expired`.
pub fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    human_seconds(u64::try_from(secs).unwrap_or(0))
}

/// `1d 2h`, `2h 5m`, `45m`, `30s`.
pub fn human_seconds(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A value as it reads on the wire (a time exactly as the worker wrote it, an enum's wire name).
fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tables_align_and_durations_read() {
        let t = table(&["ID", "TEMPLATE"], &[vec!["g-1".into(), "bucketRead".into()], vec!["g-22".into(), "x".into()]]);
        assert_eq!(t, "ID    TEMPLATE\ng-1   bucketRead\ng-22  x\n");
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(until(now + chrono::TimeDelta::seconds(3900), now), "1h 5m");
        assert_eq!(until(now - chrono::TimeDelta::seconds(1), now), "expired");
        assert_eq!(human_seconds(43_200), "12h");
        assert_eq!(human_seconds(90_000), "1d 1h");
        assert_eq!(human_seconds(59), "59s");
    }

    #[test]
    fn wire_forms() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(wire(&t), "2026-01-01T00:00:00Z");
        assert_eq!(wire(&portcullis_domain::grant::Verdict::Unjustified), "unjustified");
    }
}
