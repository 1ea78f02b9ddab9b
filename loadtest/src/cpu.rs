//! CPU time over a run, by thread group: where a run's CPU went, read from `/proc` at its start and end.
//!
//! The load generator hosts the target (the passthrough or the service) in its own process, and the broker
//! runs beside it on the same machine, so a run's CPU splits three ways: this process's threads (grouped
//! by name, trailing digits dropped: `scoring-0` and `scoring-1` are `scoring`), threads of this process
//! that ended during the run (the process total less the live threads'), and other processes (the
//! machine's busy time from `/proc/stat` less this process's: the broker, mostly). A service run as a child
//! process (`--service-bin`) counts as part of this process: its threads join the groups by name (its
//! runtime workers are named after its binary, `borderlane`, where the hosted service's are `service`).
//! Linux only; elsewhere, or if `/proc` cannot be read, there is no figure rather than a wrong one.

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// CPU counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    /// Clock ticks a second of the `/proc` counters (`AT_CLKTCK`).
    ticks_per_s: f64,
    /// The machine's busy ticks (all CPUs): user, nice, system, irq, softirq.
    machine_busy: u64,
    /// This process's user + system time in ns (from ticks), ended threads included (and those of the
    /// children counted).
    process: u64,
    /// This process's (and the counted children's) live threads: id → (name, CPU ns). A thread's time is
    /// its scheduler run time (`/proc/.../schedstat`, nanoseconds) where the kernel has it, else its
    /// user + system ticks: in ticks, every thread of a short run that used less than one (10 ms) read 0,
    /// and a child service's groups could all vanish from the account.
    threads: HashMap<u32, (String, u64)>,
}

/// A thread group's CPU over a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThreadGroup {
    /// Thread name without its trailing digits (and a `-` or `#` before them).
    pub name: String,
    /// Threads of that name alive at the end of the run.
    pub threads: usize,
    /// CPU seconds over the run.
    pub cpu_s: f64,
}

/// Where a run's CPU went; see the module documentation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CpuUse {
    /// Wall seconds between the two snapshots.
    pub wall_s: f64,
    /// Busy CPU seconds of the whole machine (every process, every CPU; the hypervisor's steal left out).
    pub machine_busy_s: f64,
    /// CPU seconds of this process (the load generator and the target it hosts).
    pub process_s: f64,
    /// `machine_busy_s - process_s`: the broker, mostly (anything else running, and kernel work such as
    /// loopback networking done in interrupts).
    pub other_processes_s: f64,
    /// This process's threads by group, most CPU first; they add up to `process_s`. Threads that ended
    /// during the run are one group, `(ended threads)`: the process's figure less the live threads', so
    /// it also takes up the process counter's rounding (up to a tick).
    ///
    /// The table shows each figure also in µs per manifest answered.
    pub groups: Vec<ThreadGroup>,
}

impl CpuUse {
    /// CPU µs per item (`items` manifests answered, say) of `cpu_s`.
    pub fn per_item_us(cpu_s: f64, items: u64) -> f64 {
        if items == 0 {
            0.0
        } else {
            cpu_s * 1e6 / items as f64
        }
    }
}

/// Reads the counters now; `None` where `/proc` is missing or unreadable.
pub fn snapshot() -> Option<Snapshot> {
    snapshot_with(&[])
}

/// [`snapshot`], counting the processes `children` (the service run as a child process) as part of this
/// one: their threads are grouped with this process's, and their CPU is in `process`. A child that started
/// after the start snapshot counts from zero, its start-up included, as a hosted service's start-up is.
pub fn snapshot_with(children: &[u32]) -> Option<Snapshot> {
    let ticks_per_s = clock_ticks_per_s()?;
    let procs: Vec<String> = std::iter::once("self".to_string())
        .chain(children.iter().map(u32::to_string))
        .collect();
    // Threads first, then the process, then the machine: counters only grow, so the process's figure
    // covers its threads' and the machine's covers the process's (as far as their accounting agrees).
    let mut threads = HashMap::new();
    for p in &procs {
        for entry in std::fs::read_dir(format!("/proc/{p}/task")).ok()? {
            let Ok(entry) = entry else { continue };
            let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            // A thread may end between the listing and the reads: skipped, counted with the ended ones.
            let path = entry.path();
            let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                continue;
            };
            let ns = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| schedstat_ns(&s))
                .or_else(|| {
                    let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                    Some(ticks_ns(stat_ticks(&stat)?, ticks_per_s))
                });
            if let Some(ns) = ns {
                threads.insert(tid, (comm.trim_end().to_string(), ns));
            }
        }
    }
    let mut process = 0;
    for p in &procs {
        process += ticks_ns(
            stat_ticks(&std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?)?,
            ticks_per_s,
        );
    }
    let machine_busy = machine_busy_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    Some(Snapshot {
        at: Instant::now(),
        ticks_per_s,
        machine_busy,
        process,
        threads,
    })
}

/// The CPU used between `start` and `end` (threads born in between count from zero).
pub fn between(start: &Snapshot, end: &Snapshot) -> CpuUse {
    let s = |ticks: u64| ticks as f64 / end.ticks_per_s;
    let ns_s = |ns: u64| ns as f64 / 1e9;
    let mut groups: HashMap<String, (usize, u64)> = HashMap::new();
    let mut live = 0u64;
    for (tid, (name, ns)) in &end.threads {
        let before = start
            .threads
            .get(tid)
            .filter(|(n, _)| n == name)
            .map_or(0, |(_, t)| *t);
        let used = ns.saturating_sub(before);
        live += used;
        let g = groups.entry(group_name(name).to_string()).or_default();
        g.0 += 1;
        g.1 += used;
    }
    // The process's counter is in ticks, the threads' in ns (and the start snapshot reads the process
    // after its threads), so the live threads' sum can pass the process's delta by up to a tick: the
    // process used at least what its threads did, and `(ended threads)` is the remainder — the ended
    // threads' CPU and this rounding.
    let process = end.process.saturating_sub(start.process).max(live);
    let ended = process - live;
    let mut groups: Vec<ThreadGroup> = groups
        .into_iter()
        .map(|(name, (threads, ns))| ThreadGroup {
            name,
            threads,
            cpu_s: ns_s(ns),
        })
        .collect();
    if ended > 0 {
        groups.push(ThreadGroup {
            name: "(ended threads)".into(),
            threads: 0,
            cpu_s: ns_s(ended),
        });
    }
    groups.retain(|g| g.cpu_s > 0.0);
    groups.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s).then(a.name.cmp(&b.name)));
    let machine_busy_s = s(end.machine_busy.saturating_sub(start.machine_busy));
    let process_s = ns_s(process);
    CpuUse {
        wall_s: end.at.duration_since(start.at).as_secs_f64(),
        machine_busy_s,
        process_s,
        other_processes_s: (machine_busy_s - process_s).max(0.0),
        groups,
    }
}

/// `scoring-0` → `scoring`, `rdk:broker1` → `rdk:broker`, `GC Thread#0` → `GC Thread`.
fn group_name(name: &str) -> &str {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.is_empty() {
        return name;
    }
    stem.strip_suffix(['-', '#']).unwrap_or(stem)
}

/// User + system ticks from a `/proc/.../stat` line (fields 14 and 15; the name, field 2, may hold spaces
/// and parentheses, so fields are counted after its last `)`).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Busy ticks of the `cpu` line of `/proc/stat`: user, nice, system, irq, softirq (not idle, not iowait,
/// not steal — time the hypervisor gave to others; guest time is inside user already).
fn machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6))
}

/// A thread's time on a CPU in ns: the first field of `/proc/.../schedstat`.
fn schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_ascii_whitespace().next()?.parse().ok()
}

/// `ticks` of `/proc`'s clock in ns.
fn ticks_ns(ticks: u64, ticks_per_s: f64) -> u64 {
    (ticks as f64 * 1e9 / ticks_per_s) as u64
}

/// The kernel's clock ticks a second for `/proc` (`AT_CLKTCK` of the auxiliary vector).
fn clock_ticks_per_s() -> Option<f64> {
    const AT_CLKTCK: u64 = 17;
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|(key, _)| *key == AT_CLKTCK)
        .map(|(_, hz)| hz as f64)
        .filter(|hz| *hz > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_are_read_after_the_name() {
        let line = "4242 (rdk:broker (1) x) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 9 0 100 0 0";
        assert_eq!(stat_ticks(line), Some(168));
        assert_eq!(stat_ticks("4242 (x) S 1 2"), None);
        assert_eq!(stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn schedstat_gives_the_run_time_in_ns() {
        assert_eq!(schedstat_ns("83775 106459 2\n"), Some(83_775));
        assert_eq!(schedstat_ns(""), None);
        assert_eq!(ticks_ns(3, 100.0), 30_000_000);
    }

    /// A thread that ran less than a clock tick still shows, with its time: a short run's groups read 0
    /// in ticks and vanished from the account (a child service's whole `borderlane` group once did).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_busy_for_less_than_a_tick_shows_in_its_group() {
        let own = || {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| schedstat_ns(&s))
        };
        if own().is_none() {
            return; // a kernel without scheduler statistics: ticks only, as before
        }
        let start = snapshot().expect("/proc is readable on Linux");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let brief = std::thread::Builder::new()
            .name("brief-3".into())
            .spawn(move || {
                // Spin for 1 ms of this thread's CPU time (well under a 10 ms tick), then stay alive.
                let first = own().unwrap_or(0);
                let mut x = 0u64;
                while own().unwrap_or(u64::MAX) < first + 1_000_000 {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                let _ = rx.recv();
            })
            .expect("thread");
        let mut group = None;
        let give_up = Instant::now() + std::time::Duration::from_secs(60);
        while group.is_none() && Instant::now() < give_up {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let end = snapshot().expect("/proc is readable on Linux");
            group = between(&start, &end)
                .groups
                .into_iter()
                .find(|g| g.name == "brief" && g.cpu_s >= 0.001);
        }
        drop(tx);
        brief.join().expect("thread");
        let group = group.expect("the brief thread's millisecond is counted");
        assert_eq!(group.threads, 1);
    }

    #[test]
    fn machine_busy_time_leaves_idle_and_iowait_out() {
        let stat = "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 5 0 2 500 3 1 1 2 0 0\n";
        assert_eq!(machine_busy_ticks(stat), Some(10 + 1 + 5 + 2 + 3));
        assert_eq!(machine_busy_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn thread_names_group_without_their_numbers() {
        for (name, group) in [
            ("scoring-0", "scoring"),
            ("scoring-11", "scoring"),
            ("rdk:broker1", "rdk:broker"),
            ("rdk:broker-1", "rdk:broker"),
            ("GC Thread#3", "GC Thread"),
            ("tokio-rt-worker", "tokio-rt-worker"),
            ("collector", "collector"),
            ("1234", "1234"),
        ] {
            assert_eq!(group_name(name), group, "{name}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_busy_thread_shows_in_its_group() {
        let (Some(start), Some(ticks)) = (snapshot(), clock_ticks_per_s()) else {
            panic!("/proc is readable on Linux");
        };
        assert!(ticks >= 1.0);
        // Spin until this thread's own counter has moved by two ticks (CPU time, not wall time).
        let counted = std::thread::Builder::new()
            .name("busy-7".into())
            .spawn(|| {
                let own = || {
                    std::fs::read_to_string("/proc/thread-self/stat")
                        .ok()
                        .and_then(|s| stat_ticks(&s))
                        .unwrap_or(0)
                };
                let first = own();
                let mut x = 0u64;
                let give_up = Instant::now() + std::time::Duration::from_secs(60);
                while own() < first + 2 && Instant::now() < give_up {
                    for i in 0..100_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                    }
                }
                // Read before the snapshot: counters only grow, so the snapshot's figure is at least this.
                let used = own() - first;
                (used, snapshot().expect("readable"))
            })
            .unwrap()
            .join()
            .unwrap();
        let (own, end) = counted;
        assert!(
            own >= 2,
            "the thread's own counter moved within a minute of spinning"
        );
        let used = between(&start, &end);
        let busy = used
            .groups
            .iter()
            .find(|g| g.name == "busy")
            .expect("its group");
        assert_eq!(busy.threads, 1);
        assert!(busy.cpu_s >= own as f64 / ticks - 1e-9, "{used:?}");
        assert!(used.process_s >= busy.cpu_s, "{used:?}");
        assert!(used.machine_busy_s > 0.0, "{used:?}");
    }
}
