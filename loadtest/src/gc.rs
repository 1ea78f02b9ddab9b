//! The broker's stop-the-world GC pauses, read from its JVM log (`scripts/kafka` writes one:
//! `-Xlog:gc:file=…/gc.log:utctime,uptime`), and the share of a run's tail they explain.
//!
//! On the project's two-CPU machine the broker shares the cores with the system under test, and its young
//! collections (5–10 ms every ~3 s at 2 000 manifests/s) stop every request in flight: the consume, the
//! produce and the harness's own fetch. A latency percentile beyond the pauses' share (p99.9 of a 30 s run
//! is its 60 slowest manifests; one pause holds 10–40) is then the broker's, for the passthrough and the
//! service alike. [`attribute`] separates the two: the manifests in flight during a pause, and the
//! percentiles of the rest.

use borderlane_core::time::Timestamp;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::driver::Arrivals;

/// One stop-the-world pause of the broker's JVM.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pause {
    /// When it started, ms since the Unix epoch.
    pub start_unix_ms: f64,
    /// How long it stopped the JVM, ms.
    pub ms: f64,
}

/// The pauses of a JVM unified GC log written with the `utctime` decoration, e.g.
/// `[2026-12-05T04:26:14.797+0000][226.833s] GC(107) Pause Young (Normal) (G1 Evacuation Pause)
/// 455M->185M(512M) 7.886ms`. Lines without a `Pause`, a time or a duration are skipped (concurrent phases
/// and other decorations do not stop the JVM).
pub fn pauses(log: &str) -> Vec<Pause> {
    log.lines().filter_map(pause).collect()
}

/// The pauses of the GC log at `path` and of its previous file (`<path>.0`, the JVM's rotation), if any.
pub fn read_pauses(path: &std::path::Path) -> anyhow::Result<Vec<Pause>> {
    use anyhow::Context;
    let mut all = Vec::new();
    let rotated = std::path::PathBuf::from(format!("{}.0", path.display()));
    if let Ok(text) = std::fs::read_to_string(&rotated) {
        all.extend(pauses(&text));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the broker's GC log {}", path.display()))?;
    all.extend(pauses(&text));
    Ok(all)
}

fn pause(line: &str) -> Option<Pause> {
    let rest = line.strip_prefix('[')?;
    let (time, rest) = rest.split_once(']')?;
    if !rest.contains(" Pause ") {
        return None;
    }
    // `+0000` → `Z`: the decoration's offset has no colon, RFC 3339's has.
    let time = match time.strip_suffix("+0000") {
        Some(t) => format!("{t}Z"),
        None => time.to_string(),
    };
    let start = Timestamp::parse(&time)?;
    let ms: f64 = rest
        .trim_end()
        .strip_suffix("ms")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()?;
    Some(Pause {
        start_unix_ms: start.unix_nanos() as f64 / 1e6,
        ms,
    })
}

/// What the broker's pauses did to one run's measured manifests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct GcShare {
    /// Pauses that started while the run's measured manifests were in flight.
    pub pauses: u64,
    /// Their longest, ms.
    pub pause_max_ms: f64,
    /// Their sum, ms.
    pub pause_total_ms: f64,
    /// Measured manifests in flight (from their scheduled send to their output's arrival) while a pause
    /// stopped the broker.
    pub in_flight: u64,
    /// p99 of the other measured manifests, ms.
    pub p99_outside_ms: f64,
    /// p99.9 of the other measured manifests, ms.
    pub p999_outside_ms: f64,
}

/// The broker's `pauses` against a run's `arrivals` (its measured window: sequence numbers from
/// `arrivals.measured_from`).
pub fn attribute(arrivals: &Arrivals, pauses: &[Pause]) -> GcShare {
    let mut sorted: Vec<Pause> = pauses.to_vec();
    sorted.sort_by(|a, b| a.start_unix_ms.total_cmp(&b.start_unix_ms));
    let mut outside =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!());
    let mut share = GcShare::default();
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for (seq, a) in arrivals
        .by_seq
        .iter()
        .enumerate()
        .skip(arrivals.measured_from as usize)
    {
        let Some((_, us)) = *a else { continue };
        let sent = arrivals.t0_unix_ms + seq as f64 * 1000.0 / arrivals.rate;
        let arrived = sent + us as f64 / 1000.0;
        first = first.min(sent);
        last = last.max(arrived);
        // The first pause that ends after the send; in flight if it starts before the arrival.
        let i = sorted.partition_point(|p| p.start_unix_ms + p.ms < sent);
        if sorted.get(i).is_some_and(|p| p.start_unix_ms <= arrived) {
            share.in_flight += 1;
        } else {
            outside.saturating_record(us.max(1));
        }
    }
    for p in sorted
        .iter()
        .filter(|p| p.start_unix_ms >= first && p.start_unix_ms <= last)
    {
        share.pauses += 1;
        share.pause_max_ms = share.pause_max_ms.max(p.ms);
        share.pause_total_ms += p.ms;
    }
    if !outside.is_empty() {
        // As the run's own percentiles are converted (driver.rs), so the two compare exactly.
        let ms = |q: f64| outside.value_at_quantile(q) as f64 / 1000.0;
        share.p99_outside_ms = ms(0.99);
        share.p999_outside_ms = ms(0.999);
    }
    share
}

/// [`attribute`] for the latency runs of `report` (the service's and the passthrough's).
pub fn attribute_report(report: &mut crate::report::Report, pauses: &[Pause]) {
    for stats in std::iter::once(&mut report.pipeline).chain(report.passthrough.as_mut()) {
        stats.broker_gc = Some(attribute(&stats.arrivals, pauses));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[2026-12-05T04:26:08.547+0000][220.583s] GC(105) Pause Young (Mixed) (G1 Evacuation Pause) 207M->184M(512M) 6.951ms
[2026-12-05T04:26:09.001+0000][221.037s] GC(105) Concurrent Mark Cycle 120.113ms
[2026-12-05T04:26:10.100+0000][222.136s] GC(106) Pause Remark 200M->190M(512M) 1.250ms
[220.999s] GC(107) Pause Young (Normal) (G1 Evacuation Pause) 455M->185M(512M) 5.650ms
[2026-12-05T04:26:11.684+0000][223.720s] GC(108) Pause Young (Normal) (G1 Evacuation Pause) 456M->185M(512M)
";

    #[test]
    fn reads_the_pauses_and_skips_concurrent_phases_and_undated_lines() {
        let p = pauses(LOG);
        let at = |s: &str| Timestamp::parse(s).unwrap().unix_nanos() as f64 / 1e6;
        assert_eq!(
            p,
            vec![
                Pause {
                    start_unix_ms: at("2026-12-05T04:26:08.547Z"),
                    ms: 6.951
                },
                Pause {
                    start_unix_ms: at("2026-12-05T04:26:10.100Z"),
                    ms: 1.25
                },
            ]
        );
    }

    /// 1 000 manifests at 1 000/s, 2 ms each except the ten sent in the 10 ms before a 20 ms pause at
    /// 500 ms, which take until its end; 100 of them warm-up.
    #[test]
    fn manifests_in_flight_during_a_pause_are_counted_apart_from_the_rest() {
        let t0 = 1_000_000.0;
        let by_seq = (0..1000u64)
            .map(|seq| {
                let us = if (490..500).contains(&seq) {
                    (520 - seq) * 1000
                } else {
                    2000 + seq % 7
                };
                Some((0, us))
            })
            .collect();
        let arrivals = Arrivals {
            rate: 1000.0,
            t0_unix_ms: t0,
            measured_from: 100,
            by_seq,
        };
        let pause = Pause {
            start_unix_ms: t0 + 500.0,
            ms: 20.0,
        };
        let outside_pause = Pause {
            start_unix_ms: t0 + 5000.0,
            ms: 50.0,
        };
        let share = attribute(&arrivals, &[outside_pause, pause]);
        // In flight during [500, 520]: the ten held ones, and those sent from 498 ms (2 ms each) to 520.
        assert_eq!(share.pauses, 1);
        assert_eq!(share.pause_max_ms, 20.0);
        assert_eq!(share.in_flight, 10 + (520 - 500 + 1));
        assert!(share.p999_outside_ms < 2.1, "{share:?}");
        // Without the pause everything counts, and the held manifests make the tail.
        let none = attribute(&arrivals, &[]);
        assert_eq!(none.in_flight, 0);
        assert!(none.p999_outside_ms > 20.0, "{none:?}");
    }
}
