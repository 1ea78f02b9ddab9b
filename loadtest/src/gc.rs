//! The broker's stop-the-world GC pauses, read from its JVM log (`scripts/kafka` writes one:
//! `-Xlog:gc:file=…/gc.log:utctime,uptime`), and the share of a run's tail they explain.
//!
//! On the project's two-CPU machine the broker shares the cores with the system under test, and its young
//! collections (5–10 ms every ~3 s at 2 000 manifests/s) stop every request in flight: the consume, the
//! produce and the harness's own fetch. A latency percentile beyond the pauses' share (p99.9 of a 30 s run
//! is its 60 slowest manifests; one pause holds 10–40) is then the broker's, for the passthrough and the
//! service alike. [`attribute`] separates the two: the manifests in flight during a pause, and the
//! percentiles of the rest.
//!
//! G1's concurrent cycles (mark cycles of ~90–600 ms, median ~140 ms, in the project broker's logs; undo
//! cycles, mostly ~1 ms) stop nothing themselves (their remark and cleanup pauses are pauses), but their GC
//! threads take CPU from everything else on the two cores: the service's largest half-load tails fell in
//! mark cycles, and manifests in flight during one and no pause took up to ~70 ms (docs/performance.md,
//! "Every line again"). They are read too and counted apart: the manifests in flight during a cycle and no
//! pause, and the percentiles outside both.

use std::path::{Path, PathBuf};

use anyhow::Context;
use borderlane_core::time::Timestamp;
use serde::Serialize;

use crate::driver::Arrivals;

/// One stop-the-world pause of the broker's JVM, as an interval of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pause {
    /// When it started, ms since the Unix epoch.
    pub start_unix_ms: f64,
    /// When it ended (at the latest), ms since the Unix epoch.
    pub end_unix_ms: f64,
    /// How long the JVM says it stopped, ms.
    pub ms: f64,
}

/// What a GC log held.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Its pauses, in the order read.
    pub pauses: Vec<Pause>,
    /// Its concurrent cycles (mark and undo), in the order read: spans like pauses, which stop nothing.
    pub cycles: Vec<Pause>,
    /// Lines naming a pause or a concurrent cycle with a duration whose time could not be read (no
    /// `utctime`/`time` decoration, say).
    pub unread: usize,
}

/// The pauses of a JVM unified GC log written with the `utctime` (or `time`) decoration, e.g.
/// `[2026-12-05T04:26:14.797+0000][226.833s] GC(107) Pause Young (Normal) (G1 Evacuation Pause)
/// 455M->185M(512M) 7.886ms`. The JVM writes such a line when the pause ends, its time truncated to the
/// millisecond, so the pause is taken as [time − duration, time + 1 ms]. Lines without `Pause` or a
/// duration are not pauses (concurrent phases, the start-up banner); a pause line whose time cannot be
/// read is counted in [`Log::unread`]. A concurrent cycle's end line (`GC(n) Concurrent Mark Cycle
/// 141.098ms`) is read the same way into [`Log::cycles`].
pub fn parse(log: &str) -> Log {
    let mut out = Log::default();
    for line in log.lines() {
        let (ms, into) = match (pause_ms(line), cycle_ms(line)) {
            (Some(ms), _) => (ms, &mut out.pauses),
            (None, Some(ms)) => (ms, &mut out.cycles),
            (None, None) => continue,
        };
        match end_time(line) {
            Some(end) => into.push(Pause {
                start_unix_ms: end - ms,
                end_unix_ms: end + 1.0,
                ms,
            }),
            None => out.unread += 1,
        }
    }
    out
}

/// The duration at the end of a line, `… 12.345ms`.
fn duration_ms(line: &str) -> Option<f64> {
    line.trim_end()
        .strip_suffix("ms")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// The duration of the pause `line` names, ms; `None` if it names none.
fn pause_ms(line: &str) -> Option<f64> {
    if !line.contains(" Pause ") {
        return None;
    }
    duration_ms(line)
}

/// A concurrent cycle's end: `GC(n) Concurrent Mark Cycle 141.098ms` or `… Concurrent Undo Cycle 1.394ms`
/// (the line at its start has no duration).
fn cycle_ms(line: &str) -> Option<f64> {
    if !line.contains(" Concurrent Mark Cycle ") && !line.contains(" Concurrent Undo Cycle ") {
        return None;
    }
    duration_ms(line)
}

/// The time decoration (`[2026-12-05T04:26:14.797+0000]`) at the start of `line`, ms since the Unix epoch.
fn end_time(line: &str) -> Option<f64> {
    let (time, _) = line.strip_prefix('[')?.split_once(']')?;
    // `±hhmm` → `±hh:mm`: the decoration's offset has no colon, RFC 3339's has.
    let (t, offset) = time.split_at(time.len().checked_sub(5)?);
    if !offset.starts_with(['+', '-']) || !offset[1..].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc3339 = format!("{t}{}:{}", &offset[..3], &offset[3..]);
    Some(Timestamp::parse(&rfc3339)?.unix_nanos() as f64 / 1e6)
}

/// The GC log at `path` and the JVM's rotated files of it (`<path>.0`, `<path>.1`, …: the JVM reuses the
/// numbers, so all are read; their pauses do not repeat).
pub fn read(path: &Path) -> anyhow::Result<Log> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the broker's GC log {}", path.display()))?;
    let mut log = parse(&text);
    let (dir, name) = (
        path.parent().unwrap_or(Path::new(".")),
        path.file_name().unwrap_or_default().to_string_lossy(),
    );
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let rotated = file
            .to_str()
            .and_then(|f| f.strip_prefix(&*name)?.strip_prefix('.'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if rotated {
            let p: PathBuf = entry.path();
            let older = parse(&std::fs::read_to_string(&p).unwrap_or_default());
            log.pauses.extend(older.pauses);
            log.cycles.extend(older.cycles);
            log.unread += older.unread;
        }
    }
    Ok(log)
}

/// What the broker's pauses did to one run's measured manifests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct GcShare {
    /// Pauses that overlap the time the run's measured manifests were in flight (young, mixed, remark and
    /// cleanup pauses alike).
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
    /// Concurrent cycles (mark and undo) overlapping the measured manifests' time.
    pub cycles: u64,
    /// Their longest, ms.
    pub cycle_max_ms: f64,
    /// Measured manifests in flight during a concurrent cycle and no pause.
    pub in_cycle: u64,
    /// p99 of the measured manifests in flight during neither a pause nor a concurrent cycle, ms.
    pub p99_outside_all_ms: f64,
    /// p99.9 of those, ms.
    pub p999_outside_all_ms: f64,
}

/// `spans` sorted by start with the overlapping ones merged (a remark and a cleanup stamped in the same
/// millisecond, say), so that the ends are in order too and the first one ending after a send is the only
/// candidate.
fn merged(spans: &[Pause]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<Pause> = spans.to_vec();
    sorted.sort_by(|a, b| a.start_unix_ms.total_cmp(&b.start_unix_ms));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for p in &sorted {
        match out.last_mut() {
            Some(last) if p.start_unix_ms <= last.1 => last.1 = last.1.max(p.end_unix_ms),
            _ => out.push((p.start_unix_ms, p.end_unix_ms)),
        }
    }
    out
}

/// Whether a manifest in flight over `[sent, arrived]` met one of the `merged` spans.
fn met(merged: &[(f64, f64)], sent: f64, arrived: f64) -> bool {
    let i = merged.partition_point(|&(_, end)| end < sent);
    merged.get(i).is_some_and(|&(start, _)| start <= arrived)
}

/// How many of `spans` overlap `[first, last]`, the longest and the sum, ms.
fn overlapping(spans: &[Pause], first: f64, last: f64) -> (u64, f64, f64) {
    spans
        .iter()
        .filter(|p| p.end_unix_ms >= first && p.start_unix_ms <= last)
        .fold((0, 0.0, 0.0), |(n, max, sum), p| {
            (n + 1, f64::max(max, p.ms), sum + p.ms)
        })
}

/// The broker's `pauses` and concurrent `cycles` against a run's `arrivals` (its measured window:
/// sequence numbers from `arrivals.measured_from`).
pub fn attribute(arrivals: &Arrivals, pauses: &[Pause], cycles: &[Pause]) -> GcShare {
    let (stopped, busy) = (merged(pauses), merged(cycles));
    let mut outside = crate::driver::histogram();
    let mut outside_all = crate::driver::histogram();
    let mut share = GcShare::default();
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for (seq, a) in arrivals
        .by_seq
        .iter()
        .enumerate()
        .skip(arrivals.measured_from as usize)
    {
        let Some(a) = a else { continue };
        let us = a.latency_us.get();
        let (sent, arrived) = arrivals.sent_and_arrived_unix_ms(seq, a);
        first = first.min(sent);
        last = last.max(arrived);
        if met(&stopped, sent, arrived) {
            share.in_flight += 1;
            continue;
        }
        outside.saturating_record(u64::from(us));
        if met(&busy, sent, arrived) {
            share.in_cycle += 1;
        } else {
            outside_all.saturating_record(u64::from(us));
        }
    }
    (share.pauses, share.pause_max_ms, share.pause_total_ms) = overlapping(pauses, first, last);
    (share.cycles, share.cycle_max_ms, _) = overlapping(cycles, first, last);
    // As the run's own percentiles are converted (driver.rs), so that they compare exactly.
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1000.0
        }
    };
    share.p99_outside_ms = ms(&outside, 0.99);
    share.p999_outside_ms = ms(&outside, 0.999);
    share.p99_outside_all_ms = ms(&outside_all, 0.99);
    share.p999_outside_all_ms = ms(&outside_all, 0.999);
    share
}

/// [`attribute`] for the latency runs of `report` (the service's and the passthrough's).
pub fn attribute_report(report: &mut crate::report::Report, log: &Log) {
    for stats in std::iter::once(&mut report.pipeline).chain(report.passthrough.as_mut()) {
        stats.broker_gc = Some(attribute(&stats.arrivals, &log.pauses, &log.cycles));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Arrival;

    fn at(s: &str) -> f64 {
        Timestamp::parse(s).unwrap().unix_nanos() as f64 / 1e6
    }

    const LOG: &str = "\
[2026-12-05T04:26:08.547+0000][220.583s] GC(105) Pause Young (Mixed) (G1 Evacuation Pause) 207M->184M(512M) 6.951ms
[2026-12-05T04:26:09.001+0000][221.037s] GC(105) Concurrent Mark Cycle 120.113ms
[2026-12-05T05:26:10.100+0100][222.136s] GC(106) Pause Remark 200M->190M(512M) 1.250ms
[220.999s] GC(107) Pause Young (Normal) (G1 Evacuation Pause) 455M->185M(512M) 5.650ms
[2026-12-05T04:26:11.684+0000][223.720s] GC(108) Pause Young (Normal) (G1 Evacuation Pause) 456M->185M(512M)
";

    #[test]
    fn reads_each_pause_as_ending_at_its_stamp() {
        let log = parse(LOG);
        let (a, b) = (
            at("2026-12-05T04:26:08.547Z"),
            at("2026-12-05T04:26:10.100Z"),
        );
        assert_eq!(
            log.pauses,
            vec![
                Pause {
                    start_unix_ms: a - 6.951,
                    end_unix_ms: a + 1.0,
                    ms: 6.951
                },
                Pause {
                    start_unix_ms: b - 1.25,
                    end_unix_ms: b + 1.0,
                    ms: 1.25
                },
            ]
        );
        // The undated pause is counted as unread; the concurrent cycle and the line without a duration
        // are not pauses. The cycle is read as a cycle.
        assert_eq!(log.unread, 1);
        let c = at("2026-12-05T04:26:09.001Z");
        assert_eq!(
            log.cycles,
            vec![Pause {
                start_unix_ms: c - 120.113,
                end_unix_ms: c + 1.0,
                ms: 120.113
            }]
        );
    }

    #[test]
    fn reads_the_rotated_files_too() {
        let dir = std::env::temp_dir().join(crate::kafka::unique("gc-log"));
        std::fs::create_dir_all(&dir).unwrap();
        let line =
            |t: &str| format!("[{t}+0000][1.0s] GC(1) Pause Young (Normal) 1M->1M(8M) 2.000ms\n");
        std::fs::write(dir.join("gc.log"), line("2026-12-05T04:00:03.000")).unwrap();
        std::fs::write(dir.join("gc.log.1"), line("2026-12-05T04:00:02.000")).unwrap();
        std::fs::write(dir.join("gc.log.0"), line("2026-12-05T04:00:01.000")).unwrap();
        std::fs::write(dir.join("gc.log.old"), line("2026-12-05T04:00:00.000")).unwrap();
        std::fs::write(dir.join("gc.logx.2"), line("2026-12-05T04:00:00.000")).unwrap();
        let mut ends: Vec<f64> = read(&dir.join("gc.log"))
            .unwrap()
            .pauses
            .iter()
            .map(|p| p.end_unix_ms - 1.0)
            .collect();
        ends.sort_by(f64::total_cmp);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            ends,
            [1, 2, 3].map(|s| at(&format!("2026-12-05T04:00:0{s}.000Z")))
        );
    }

    /// 1 000 manifests at 1 000/s from `t0`, `latency(seq)` µs each, 100 of them warm-up.
    fn run(t0: f64, latency: impl Fn(u64) -> u64) -> Arrivals {
        Arrivals {
            rate: 1000.0,
            t0_unix_ms: t0,
            measured_from: 100,
            by_seq: (0..1000u64)
                .map(|seq| Some(Arrival::new(0, latency(seq))))
                .collect(),
        }
    }

    fn pause(start: f64, ms: f64) -> Pause {
        Pause {
            start_unix_ms: start,
            end_unix_ms: start + ms,
            ms,
        }
    }

    /// 2 ms each, except the ten sent in the 10 ms before a 20 ms pause at 500 ms, which take until its
    /// end, and the warm-up's, which take 100 ms (outside the measured window, so in neither count).
    #[test]
    fn manifests_in_flight_during_a_pause_are_counted_apart_from_the_rest() {
        let t0 = 1_000_000.0;
        let arrivals = run(t0, |seq| match seq {
            0..100 => 100_000,
            490..500 => (520 - seq) * 1000,
            _ => 2000 + seq % 7,
        });
        let share = attribute(
            &arrivals,
            &[pause(t0 + 5000.0, 50.0), pause(t0 + 500.0, 20.0)],
            &[],
        );
        // In flight during [500, 520]: the ten held ones, and those sent from 498 ms (2 ms each) to 520.
        assert_eq!(share.pauses, 1);
        assert_eq!(share.pause_max_ms, 20.0);
        assert_eq!(share.in_flight, 10 + (520 - 500 + 1));
        assert!(share.p999_outside_ms < 2.1, "{share:?}");
        // Without the pause every measured manifest counts: the held ones make the tail, not the warm-up.
        let none = attribute(&arrivals, &[], &[]);
        assert_eq!(none.in_flight, 0);
        assert!(
            none.p999_outside_ms > 20.0 && none.p999_outside_ms < 31.0,
            "{none:?}"
        );
        // A warm-up-long pause touches no measured manifest.
        let early = attribute(&arrivals, &[pause(t0 + 10.0, 50.0)], &[]);
        assert_eq!((early.pauses, early.in_flight), (0, 0), "{early:?}");
    }

    /// A concurrent cycle stops nothing: the manifests in flight during one (and no pause) stay in the
    /// percentiles "of the rest", are counted apart, and are left out of those outside both.
    #[test]
    fn manifests_in_a_concurrent_cycle_are_counted_apart_from_those_in_a_pause() {
        let t0 = 1_000_000.0;
        // 2 ms each, except 100 ms for those sent in [300, 400) (a cycle slowing them) and 20 ms for those
        // sent in [600, 610) (a pause holding them).
        let arrivals = run(t0, |seq| match seq {
            300..400 => 100_000,
            600..610 => 20_000,
            _ => 2000,
        });
        let cycles = [pause(t0 + 300.0, 150.0), pause(t0 + 9000.0, 10.0)];
        let share = attribute(&arrivals, &[pause(t0 + 605.0, 10.0)], &cycles);
        assert_eq!((share.cycles, share.cycle_max_ms), (1, 150.0), "{share:?}");
        // In the pause [605, 615]: the ten held ones (sent 600..610, arriving from 620), and those sent
        // from 610 to 615 at 2 ms (one sent at 598 arrives at 600, before it).
        assert_eq!(share.in_flight, 10 + 6, "{share:?}");
        // In the cycle [300, 450] and no pause: sent from 298 (arriving at 300) to 450.
        assert_eq!(share.in_cycle, 100 + 2 + 50 + 1, "{share:?}");
        // The slow ones are a tenth of the rest: its p99 is theirs, not the run's outside both.
        assert!(share.p99_outside_ms > 90.0, "{share:?}");
        assert!(share.p999_outside_all_ms < 2.1, "{share:?}");
        // A pause inside the cycle: the manifests in flight during both count as in a pause only.
        let inner = attribute(&arrivals, &[pause(t0 + 350.0, 10.0)], &cycles);
        // In the pause [350, 360]: the slow ones sent from 300 (arriving from 400) to 360.
        assert_eq!(inner.in_flight, 61, "{inner:?}");
        assert_eq!(inner.in_cycle, 153 - 61, "{inner:?}");
        // Without cycles nothing is in one, and "outside both" is "outside the pauses".
        let plain = attribute(&arrivals, &[pause(t0 + 605.0, 10.0)], &[]);
        assert_eq!((plain.cycles, plain.in_cycle), (0, 0));
        assert_eq!(plain.p999_outside_all_ms, plain.p999_outside_ms);
    }

    /// A short pause inside a long one (so the ends are not in the starts' order): a manifest in the long
    /// one after the short one ended is still in flight during a pause.
    #[test]
    fn a_pause_inside_another_does_not_hide_it() {
        let t0 = 1_000_000.0;
        let arrivals = run(t0, |_| 500);
        let share = attribute(
            &arrivals,
            &[pause(t0 + 300.0, 23.0), pause(t0 + 305.0, 2.0)],
            &[],
        );
        // Sent from 300 ms (arriving 0.5 ms into it) to 323 ms.
        assert_eq!(share.in_flight, 24, "{share:?}");
        assert_eq!(share.pauses, 2);
    }

    #[test]
    fn a_manifest_sent_after_a_pause_ended_was_not_in_flight() {
        let stamp = at("2026-12-05T04:26:08.547Z");
        let log = parse(
            "[2026-12-05T04:26:08.547+0000][220.583s] GC(105) Pause Young (Normal) 207M->184M(512M) 10.000ms\n",
        );
        let one = |sent: f64, us: u64| Arrivals {
            rate: 1000.0,
            t0_unix_ms: sent,
            measured_from: 0,
            by_seq: vec![Some(Arrival::new(0, us))],
        };
        assert_eq!(
            attribute(&one(stamp + 2.0, 1000), &log.pauses, &[]).in_flight,
            0
        );
        assert_eq!(
            attribute(&one(stamp - 5.0, 6000), &log.pauses, &[]).in_flight,
            1
        );
        assert_eq!(
            attribute(&one(stamp - 9.0, 500), &log.pauses, &[]).in_flight,
            1
        );
        assert_eq!(
            attribute(&one(stamp - 12.0, 1500), &log.pauses, &[]).in_flight,
            0
        );
    }
}
