//! The broker's stop-the-world GC pauses, read from its JVM log (`scripts/kafka` writes one:
//! `-Xlog:gc:file=…/gc.log:utctime,uptime`), and the share of a run's tail they explain.
//!
//! On the project's two-CPU machine the broker shares the cores with the system under test, and its young
//! collections (5–10 ms every ~3 s at 2 000 manifests/s) stop every request in flight: the consume, the
//! produce and the harness's own fetch. A latency percentile beyond the pauses' share (p99.9 of a 30 s run
//! is its 60 slowest manifests; one pause holds 10–40) is then the broker's, for the passthrough and the
//! service alike. [`attribute`] separates the two: the manifests in flight during a pause, and the
//! percentiles of the rest.

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
    /// Lines naming a pause with a duration that could not be read (no `utctime`/`time` decoration, say).
    pub unread: usize,
}

/// The pauses of a JVM unified GC log written with the `utctime` (or `time`) decoration, e.g.
/// `[2026-12-05T04:26:14.797+0000][226.833s] GC(107) Pause Young (Normal) (G1 Evacuation Pause)
/// 455M->185M(512M) 7.886ms`. The JVM writes such a line when the pause ends, its time truncated to the
/// millisecond, so the pause is taken as [time − duration, time + 1 ms]. Lines without `Pause` or a
/// duration are not pauses (concurrent phases, the start-up banner); a pause line whose time cannot be
/// read is counted in [`Log::unread`].
pub fn parse(log: &str) -> Log {
    let mut out = Log::default();
    for line in log.lines() {
        let Some(ms) = pause_ms(line) else {
            continue;
        };
        match end_time(line) {
            Some(end) => out.pauses.push(Pause {
                start_unix_ms: end - ms,
                end_unix_ms: end + 1.0,
                ms,
            }),
            None => out.unread += 1,
        }
    }
    out
}

/// The duration of the pause `line` names, ms; `None` if it names none.
fn pause_ms(line: &str) -> Option<f64> {
    if !line.contains(" Pause ") {
        return None;
    }
    line.trim_end()
        .strip_suffix("ms")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
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
}

/// The broker's `pauses` against a run's `arrivals` (its measured window: sequence numbers from
/// `arrivals.measured_from`).
pub fn attribute(arrivals: &Arrivals, pauses: &[Pause]) -> GcShare {
    let mut sorted: Vec<Pause> = pauses.to_vec();
    sorted.sort_by(|a, b| a.start_unix_ms.total_cmp(&b.start_unix_ms));
    // Overlapping intervals (a remark and a cleanup stamped in the same millisecond, say) merged, so that
    // the ends are in order too and the first interval ending after a send is the only candidate.
    let mut stopped: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for p in &sorted {
        match stopped.last_mut() {
            Some(last) if p.start_unix_ms <= last.1 => last.1 = last.1.max(p.end_unix_ms),
            _ => stopped.push((p.start_unix_ms, p.end_unix_ms)),
        }
    }
    let mut outside = crate::driver::histogram();
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
        let i = stopped.partition_point(|&(_, end)| end < sent);
        if stopped.get(i).is_some_and(|&(start, _)| start <= arrived) {
            share.in_flight += 1;
        } else {
            outside.saturating_record(u64::from(us));
        }
    }
    for p in sorted
        .iter()
        .filter(|p| p.end_unix_ms >= first && p.start_unix_ms <= last)
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
        // The undated pause is counted as unread; the concurrent phase and the line without a
        // duration are not pauses.
        assert_eq!(log.unread, 1);
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
        );
        // In flight during [500, 520]: the ten held ones, and those sent from 498 ms (2 ms each) to 520.
        assert_eq!(share.pauses, 1);
        assert_eq!(share.pause_max_ms, 20.0);
        assert_eq!(share.in_flight, 10 + (520 - 500 + 1));
        assert!(share.p999_outside_ms < 2.1, "{share:?}");
        // Without the pause every measured manifest counts: the held ones make the tail, not the warm-up.
        let none = attribute(&arrivals, &[]);
        assert_eq!(none.in_flight, 0);
        assert!(
            none.p999_outside_ms > 20.0 && none.p999_outside_ms < 31.0,
            "{none:?}"
        );
        // A warm-up-long pause touches no measured manifest.
        let early = attribute(&arrivals, &[pause(t0 + 10.0, 50.0)]);
        assert_eq!((early.pauses, early.in_flight), (0, 0), "{early:?}");
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
        assert_eq!(attribute(&one(stamp + 2.0, 1000), &log.pauses).in_flight, 0);
        assert_eq!(attribute(&one(stamp - 5.0, 6000), &log.pauses).in_flight, 1);
        assert_eq!(attribute(&one(stamp - 9.0, 500), &log.pauses).in_flight, 1);
        assert_eq!(
            attribute(&one(stamp - 12.0, 1500), &log.pauses).in_flight,
            0
        );
    }
}
