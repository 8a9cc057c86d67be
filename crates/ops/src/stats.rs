//! Numbers out of the windows: totals and rates by label, latency percentiles from
//! histogram buckets (as Prometheus's `histogram_quantile` computes them), gauges
//! combined across replicas, and per-minute series for sparklines.

use crate::windows::{Entry, GaugeMinute, Minute};
use std::collections::BTreeMap;

/// The sum of `name` over `minutes`, by `group` (entries it maps to `None` are left out).
pub fn totals<K: Ord>(
    minutes: &[Minute],
    name: &str,
    group: impl Fn(&Entry) -> Option<K>,
) -> BTreeMap<K, f64> {
    let mut out = BTreeMap::new();
    for entry in minutes.iter().flat_map(|m| &m.entries) {
        if entry.name == name
            && let Some(key) = group(entry)
        {
            *out.entry(key).or_default() += entry.value;
        }
    }
    out
}

/// The sum of `name` over `minutes` for the entries `keep` accepts.
pub fn total(minutes: &[Minute], name: &str, keep: impl Fn(&Entry) -> bool) -> f64 {
    // A fold from +0.0: `sum()` of no floats is -0.0, which prints as "-0".
    totals(minutes, name, |e| keep(e).then_some(()))
        .into_values()
        .fold(0.0, |a, b| a + b)
}

/// One total per minute, oldest first: a sparkline's points.
pub fn per_minute(minutes: &[Minute], name: &str, keep: impl Fn(&Entry) -> bool) -> Vec<f64> {
    minutes
        .iter()
        .map(|m| total(std::slice::from_ref(m), name, &keep))
        .collect()
}

/// A histogram summed over minutes and replicas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative counts by upper bound (`le`), `+Inf` last.
    buckets: BTreeMap<Bound, f64>,
    pub sum: f64,
    pub count: f64,
}

/// A bucket's upper bound, ordered as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound(f64);

impl Eq for Bound {}
impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Histogram {
    /// The `q` quantile (0..=1), interpolated linearly inside its bucket; `None` without
    /// observations. Past the highest finite bound it answers that bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.values().copied().fold(0.0, f64::max);
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        // Only buckets that moved are published, and those are always the upper ones (the
        // counts are cumulative): the bounds below them are back at 0 here, so the
        // observations are placed between their bucket's bound and the one below it, not
        // between 0 and their bound.
        // (A missing bound between two published ones cannot happen; it would take the
        // count below it.)
        let mut buckets = self.buckets.clone();
        for le in keel_telemetry::metrics::BUCKETS {
            let below = buckets
                .range(..Bound(*le))
                .next_back()
                .map_or(0.0, |(_, count)| *count);
            buckets.entry(Bound(*le)).or_insert(below);
        }
        let (mut lower, mut below) = (0.0, 0.0);
        for (Bound(le), count) in &buckets {
            if *count >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let width = count - below;
                let into = if width > 0.0 {
                    (rank - below) / width
                } else {
                    1.0
                };
                return Some(lower + (le - lower) * into);
            }
            (lower, below) = (*le, *count);
        }
        Some(lower)
    }

    /// The mean observation, `None` without observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

/// The histograms of `family` over `minutes`, by `group`.
pub fn histograms<K: Ord + Clone>(
    minutes: &[Minute],
    family: &str,
    group: impl Fn(&Entry) -> Option<K>,
) -> BTreeMap<K, Histogram> {
    let mut out: BTreeMap<K, Histogram> = BTreeMap::new();
    for entry in minutes.iter().flat_map(|m| &m.entries) {
        let Some(suffix) = entry.name.strip_prefix(family) else {
            continue;
        };
        let Some(key) = group(entry) else {
            continue;
        };
        let histogram = out.entry(key).or_default();
        match suffix {
            "_bucket" => {
                let le = match entry.label("le") {
                    "+Inf" => f64::INFINITY,
                    le => match le.parse() {
                        Ok(le) => le,
                        Err(_) => continue,
                    },
                };
                *histogram.buckets.entry(Bound(le)).or_default() += entry.value;
            }
            "_sum" => histogram.sum += entry.value,
            "_count" => histogram.count += entry.value,
            _ => {}
        }
    }
    out
}

/// How the replicas' values of one gauge make the deployment's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Pool connections in use: every replica's add up.
    Sum,
    /// A breaker: open if open anywhere.
    Max,
    /// Redis up: down if down anywhere.
    Min,
}

impl Combine {
    fn apply(self, values: impl Iterator<Item = f64>) -> Option<f64> {
        values.reduce(|a, b| match self {
            Combine::Sum => a + b,
            Combine::Max => a.max(b),
            Combine::Min => a.min(b),
        })
    }
}

/// Gauge `name` now, by `group`: each replica's latest value in the last two minutes,
/// combined. Older minutes are left out: a replica that stopped (a restart, a scale-in)
/// must not keep adding its last pool occupancy.
pub fn gauge_now<K: Ord + Clone>(
    gauges: &[GaugeMinute],
    name: &str,
    combine: Combine,
    group: impl Fn(&Entry) -> Option<K>,
) -> BTreeMap<K, f64> {
    let mut latest: BTreeMap<(K, &str), f64> = BTreeMap::new();
    for minute in &gauges[gauges.len().saturating_sub(2)..] {
        for (instance, entry) in &minute.values {
            if entry.name == name
                && let Some(key) = group(entry)
            {
                latest.insert((key, instance.as_str()), entry.value);
            }
        }
    }
    let mut by_key: BTreeMap<K, Vec<f64>> = BTreeMap::new();
    for ((key, _), value) in latest {
        by_key.entry(key).or_default().push(value);
    }
    by_key
        .into_iter()
        .filter_map(|(k, values)| Some((k, combine.apply(values.into_iter())?)))
        .collect()
}

/// Gauge `name` per minute (replicas combined), oldest first; 0 where none wrote it.
pub fn gauge_per_minute(gauges: &[GaugeMinute], name: &str, combine: Combine) -> Vec<f64> {
    gauges
        .iter()
        .map(|m| {
            combine
                .apply(
                    m.values
                        .iter()
                        .filter(|(_, e)| e.name == name)
                        .map(|(_, e)| e.value),
                )
                .unwrap_or(0.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(le: &str, value: f64) -> Entry {
        Entry {
            name: "h_bucket".into(),
            labels: vec![("le".into(), le.into())],
            value,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let minute = |start| Minute {
            start,
            entries: vec![
                bucket("0.05", 0.0),
                bucket("0.1", 50.0),
                bucket("0.25", 50.0),
                bucket("0.5", 50.0),
                bucket("1", 90.0),
                bucket("+Inf", 100.0),
            ],
        };
        let h = &histograms(&[minute(0), minute(60)], "h", |_| Some(()))[&()];
        let close = |q: f64, expected: f64| {
            let got = h.quantile(q).expect("observations");
            assert!((got - expected).abs() < 1e-9, "p{q}: {got}, not {expected}");
        };
        close(0.25, 0.075);
        assert_eq!(h.quantile(0.5), Some(0.1));
        // 140 of 200 observations: 40 into the 80 between 0.5 and 1.
        close(0.7, 0.75);
        // In the +Inf bucket: the highest finite bound, as Prometheus answers.
        assert_eq!(h.quantile(0.99), Some(300.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn buckets_that_never_moved_still_bound_the_ones_above() {
        // Ten jobs of about 20 s: only the buckets from 30 s up were published.
        let minutes = [Minute {
            start: 0,
            entries: vec![bucket("30", 10.0), bucket("60", 10.0), bucket("+Inf", 10.0)],
        }];
        let h = &histograms(&minutes, "h", |_| Some(()))[&()];
        assert_eq!(
            h.quantile(0.5),
            Some(20.0),
            "between 10 s and 30 s, as Prometheus says"
        );
    }

    #[test]
    fn gauges_combine_each_replicas_latest_value() {
        let entry = |value| Entry {
            name: "g".into(),
            labels: vec![],
            value,
        };
        let gauges = [
            GaugeMinute {
                start: 0,
                values: vec![("gone".into(), entry(9.0))],
            },
            GaugeMinute {
                start: 60,
                values: vec![("a".into(), entry(5.0)), ("b".into(), entry(2.0))],
            },
            GaugeMinute {
                start: 120,
                values: vec![("a".into(), entry(1.0))],
            },
        ];
        assert_eq!(
            gauge_now(&gauges, "g", Combine::Sum, |_| Some(()))[&()],
            3.0
        );
        assert_eq!(
            gauge_now(&gauges, "g", Combine::Max, |_| Some(()))[&()],
            2.0
        );
        assert_eq!(
            gauge_per_minute(&gauges, "g", Combine::Sum),
            [9.0, 7.0, 1.0]
        );
    }
}
