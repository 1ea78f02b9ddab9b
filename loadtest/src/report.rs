//! Reports: the human table and the JSON document (`--json FILE`). The pipeline's figures are at the top
//! level of the JSON, the baseline's the same block under `passthrough`, and `ratio` is pipeline ÷
//! passthrough for every figure measured in the same invocation.

use std::fmt::Write as _;

use serde::Serialize;

use crate::driver::RunStats;
use crate::partner_load::PartnerLoadReport;
use crate::search::Verdict;

/// Where and under what conditions the numbers were taken.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// CPUs online.
    pub nproc: usize,
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// /proc/loadavg when the invocation started (other work on the machine).
    pub loadavg_before: String,
    /// /proc/loadavg when it ended.
    pub loadavg_after: String,
    /// The broker used.
    pub bootstrap: String,
}

impl Environment {
    pub fn capture(bootstrap: &str) -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Environment {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
                .unwrap_or_default(),
            loadavg_before: loadavg(),
            loadavg_after: String::new(),
            bootstrap: bootstrap.to_string(),
        }
    }

    pub fn finish(&mut self) {
        self.loadavg_after = loadavg();
    }
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// pipeline ÷ passthrough.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Outputs per second (1.0 below saturation: both carry the offered load).
    pub throughput: f64,
    /// Median latency.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile (target: at most 2).
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest manifest.
    pub max: f64,
    /// Highest sustainable rates (with `--find-max`): the throughput comparison that matters, since below
    /// saturation both systems simply carry the offered load.
    pub max_rate: Option<f64>,
}

/// One step of a max-throughput search.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Offered rate.
    pub rate: f64,
    /// The verdict on it.
    pub verdict: Verdict,
    /// What it measured.
    pub stats: RunStats,
}

/// The max-throughput search.
#[derive(Debug, Clone, Serialize)]
pub struct FindMaxReport {
    /// The p99 bound of a sustainable step.
    pub max_p99_ms: f64,
    /// Measured seconds per step.
    pub step_duration_s: f64,
    /// Highest sustainable rate of the service.
    pub pipeline_max_rate: Option<f64>,
    /// Highest sustainable rate of the baseline.
    pub passthrough_max_rate: Option<f64>,
    /// The service's steps.
    pub pipeline_steps: Vec<Step>,
    /// The baseline's steps.
    pub passthrough_steps: Vec<Step>,
}

/// The JSON document of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// `fixed` (the scenario's rate) or `half_max` (half the service's highest sustainable rate).
    pub mode: String,
    /// The service's delivery guarantee (`at_least_once`, `exactly_once`).
    pub delivery: String,
    /// Share of malformed manifests.
    pub bad_share: f64,
    /// Partner records loaded by the service.
    pub partners: usize,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
    /// Machine and broker.
    pub environment: Environment,
    /// The service's figures (top level).
    #[serde(flatten)]
    pub pipeline: RunStats,
    /// The baseline's figures, same load, same broker, same invocation.
    pub passthrough: Option<RunStats>,
    /// pipeline ÷ passthrough.
    pub ratio: Option<Ratios>,
    /// The search, with `--find-max`.
    pub find_max: Option<FindMaxReport>,
}

impl Ratios {
    pub fn of(p: &RunStats, b: &RunStats, max_rate: Option<f64>) -> Ratios {
        let r = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratios {
            throughput: r(p.throughput_per_s, b.throughput_per_s),
            p50: r(p.p50_ms, b.p50_ms),
            p90: r(p.p90_ms, b.p90_ms),
            p99: r(p.p99_ms, b.p99_ms),
            p999: r(p.p999_ms, b.p999_ms),
            max: r(p.max_ms, b.max_ms),
            max_rate,
        }
    }
}

impl Report {
    /// The human table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let e = &self.environment;
        let _ = writeln!(
            s,
            "scenario {} ({}, {}): {:.0} manifests/s offered open-loop, {} s measured after {} s warm-up, \
             {:.1}% bad, {} partners, {} partitions",
            self.scenario,
            self.mode,
            self.delivery,
            self.pipeline.offered_rate,
            self.duration_s,
            self.warmup_s,
            self.bad_share * 100.0,
            self.partners,
            self.partitions
        );
        let _ = writeln!(
            s,
            "machine: {} CPUs ({}), load average {} before, {} after; broker {}",
            e.nproc, e.cpu_model, e.loadavg_before, e.loadavg_after, e.bootstrap
        );
        if let Some(f) = &self.find_max {
            let _ = writeln!(
                s,
                "max sustainable rate (p99 <= {} ms, nothing lost, no growing backlog; {} s steps): \
                 pipeline {}, passthrough {}",
                f.max_p99_ms,
                f.step_duration_s,
                rate(f.pipeline_max_rate),
                rate(f.passthrough_max_rate)
            );
            for (name, steps) in [
                ("pipeline", &f.pipeline_steps),
                ("passthrough", &f.passthrough_steps),
            ] {
                for st in steps {
                    let _ = writeln!(
                        s,
                        "  {name:<11} {:>8.0}/s  {:<4} p99 {:>8.2} ms  throughput {:>8.0}/s  {}",
                        st.rate,
                        if st.verdict.sustainable { "ok" } else { "FAIL" },
                        st.stats.p99_ms,
                        st.stats.throughput_per_s,
                        st.verdict.reason
                    );
                }
            }
        }
        let p = &self.pipeline;
        let b = self.passthrough.as_ref();
        let _ = writeln!(
            s,
            "{:<24}{:>14}{:>14}{:>14}",
            "latency from scheduled send", "pipeline", "passthrough", "pipe÷pass"
        );
        let row = |s: &mut String, name: &str, f: &dyn Fn(&RunStats) -> f64, prec: usize| {
            let pv = f(p);
            let (bv, ratio) = match b {
                Some(b) => {
                    let bv = f(b);
                    (
                        format!("{bv:.prec$}"),
                        if bv > 0.0 {
                            format!("{:.2}", pv / bv)
                        } else {
                            "-".into()
                        },
                    )
                }
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(s, "{name:<24}{pv:>14.prec$}{bv:>14}{ratio:>14}");
        };
        row(&mut s, "sent", &|r| r.sent as f64, 0);
        row(&mut s, "received", &|r| r.received as f64, 0);
        row(&mut s, "lost", &|r| r.lost as f64, 0);
        row(&mut s, "duplicated", &|r| r.duplicated as f64, 0);
        row(&mut s, "refused by broker", &|r| r.produce_failed as f64, 0);
        row(&mut s, "undelivered", &|r| r.undelivered as f64, 0);
        row(&mut s, "throughput /s", &|r| r.throughput_per_s, 0);
        row(&mut s, "p50 ms", &|r| r.p50_ms, 3);
        row(&mut s, "p90 ms", &|r| r.p90_ms, 3);
        row(&mut s, "p99 ms", &|r| r.p99_ms, 3);
        row(&mut s, "p99.9 ms", &|r| r.p999_ms, 3);
        row(&mut s, "max ms", &|r| r.max_ms, 3);
        row(&mut s, "mean ms", &|r| r.mean_ms, 3);
        row(&mut s, "in 450-550 ms", &|r| r.near_500ms as f64, 0);
        row(&mut s, "in 950-1050 ms", &|r| r.near_1s as f64, 0);
        row(
            &mut s,
            "backlog at end of send",
            &|r| r.backlog_at_end_of_send as f64,
            0,
        );
        row(
            &mut s,
            "sender behind max ms",
            &|r| r.sender_max_behind_ms,
            3,
        );
        if p.broker_gc.is_some() {
            type Field = fn(&crate::gc::GcShare) -> f64;
            let gc = |f: Field| move |r: &RunStats| r.broker_gc.as_ref().map_or(0.0, f);
            // Label, field, decimals.
            let rows: [(&str, Field, usize); 10] = [
                ("broker GC pauses", |g| g.pauses as f64, 0),
                ("  longest ms", |g| g.pause_max_ms, 3),
                ("  manifests in a pause", |g| g.in_flight as f64, 0),
                ("  p99 ms of the rest", |g| g.p99_outside_ms, 3),
                ("  p99.9 ms of the rest", |g| g.p999_outside_ms, 3),
                ("broker concurrent GC cycles", |g| g.cycles as f64, 0),
                ("  longest ms", |g| g.cycle_max_ms, 3),
                ("  manifests in one, no pause", |g| g.in_cycle as f64, 0),
                ("  p99 ms outside both", |g| g.p99_outside_all_ms, 3),
                ("  p99.9 ms outside both", |g| g.p999_outside_all_ms, 3),
            ];
            for (label, f, decimals) in rows {
                row(&mut s, label, &gc(f), decimals);
            }
        }
        let c = &p.commits;
        if c.transactions > 0 || c.aborted > 0 {
            let _ = writeln!(
                s,
                "transactions (whole run): {} committed, {} aborted, {:.1} outputs each; \
                 send_offsets_to_transaction {:.1} ms + commit_transaction {:.1} ms mean, \
                 both together p99 <= {:.0} ms",
                c.transactions,
                c.aborted,
                c.records_mean,
                c.send_offsets_mean_ms,
                c.commit_call_mean_ms,
                c.commit_p99_le_ms
            );
        } else {
            let _ = writeln!(
                s,
                "offset commit failures (whole run): {}",
                c.offset_commit_failures
            );
        }
        let runs = [("pipeline", Some(p)), ("passthrough", b)];
        if runs.iter().any(|(_, r)| r.is_some_and(|r| r.cpu.is_some())) {
            let _ = writeln!(
                s,
                "CPU from the first send to the end of the drain (warm-up included): s (µs a manifest answered)"
            );
        }
        for (name, r) in runs {
            if let Some((cpu, answered)) = r.and_then(|r| r.cpu.as_ref().map(|c| (c, r.received))) {
                s.push_str(&cpu_lines(name, cpu, answered));
            }
        }
        if !p.pipeline_steps.is_empty() {
            let _ = writeln!(
                s,
                "pipeline thread (whole run): step, runs, total ms, slowest <= ms, runs over 5 ms"
            );
            for st in &p.pipeline_steps {
                let _ = writeln!(
                    s,
                    "  {:<12}{:>10}{:>12.1}{:>12.2}{:>8}",
                    st.step, st.count, st.total_ms, st.slowest_le_ms, st.over_5ms
                );
            }
        }
        s
    }
}

/// Groups shown by name; the rest are summed.
const CPU_GROUPS_SHOWN: usize = 10;

/// One run's CPU: the machine, this process, other processes, then this process's thread groups.
pub(crate) fn cpu_lines(name: &str, cpu: &crate::cpu::CpuUse, answered: u64) -> String {
    let f = |cpu_s: f64| {
        format!(
            "{cpu_s:.2} ({:.1})",
            crate::cpu::CpuUse::per_item_us(cpu_s, answered)
        )
    };
    let mut s = format!(
        "  {name}: machine {}, this process {}, other processes (the broker, mostly) {}; {:.1} s wall\n   ",
        f(cpu.machine_busy_s),
        f(cpu.process_s),
        f(cpu.other_processes_s),
        cpu.wall_s
    );
    for g in cpu.groups.iter().take(CPU_GROUPS_SHOWN) {
        let count = if g.threads > 1 {
            format!(" x{}", g.threads)
        } else {
            String::new()
        };
        let _ = write!(s, " {}{count} {},", g.name, f(g.cpu_s));
    }
    let rest: f64 = cpu
        .groups
        .iter()
        .skip(CPU_GROUPS_SHOWN)
        .map(|g| g.cpu_s)
        .sum();
    if rest > 0.0 {
        let _ = write!(s, " others {},", f(rest));
    }
    if s.ends_with(',') {
        s.pop();
    }
    s.push('\n');
    s
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "none found".into(), |r| format!("{r:.0}/s"))
}

impl PartnerLoadReport {
    /// The human table.
    pub fn table(&self, env: &Environment) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "partner load: {} partners, {:.0} MiB of values, {} partitions; median of {} runs each \
             (setup {:.1} s not counted)",
            self.partners,
            self.value_bytes as f64 / 1048576.0,
            self.partitions,
            self.raw.len(),
            self.setup_s
        );
        let _ = writeln!(
            s,
            "machine: {} CPUs ({}), load average {} before, {} after",
            env.nproc, env.cpu_model, env.loadavg_before, env.loadavg_after
        );
        let _ = writeln!(
            s,
            "{:<28}{:>10}{:>14}{:>16}",
            "", "time s", "partners/s", "peak RSS MiB"
        );
        let _ = writeln!(
            s,
            "{:<28}{:>10.2}{:>14.0}{:>16.0}",
            "raw consume (bytes only)", self.raw_s, self.raw_per_s, self.raw_peak_rss_mib
        );
        let _ = writeln!(
            s,
            "{:<28}{:>10.2}{:>14.0}",
            "raw consume, batched",
            self.raw_batch_s,
            self.partners as f64 / self.raw_batch_s
        );
        let _ = writeln!(
            s,
            "{:<28}{:>10.2}{:>14.0}{:>16.0}",
            "service PartnerTable", self.table_s, self.table_per_s, self.table_peak_rss_mib
        );
        let _ = writeln!(
            s,
            "table ÷ raw rate: {:.2} (÷ batched raw: {:.2})",
            self.rate_ratio, self.batch_ratio
        );
        // Each kind's median run: where its CPU went, in CPU s (µs a partner).
        use crate::partner_load::median_run;
        let kinds = [
            ("raw consume", &self.raw),
            ("raw consume, batched", &self.raw_batch),
            ("service PartnerTable", &self.table),
        ];
        let mut header = false;
        for (name, runs) in kinds {
            if let Some((m, cpu)) = median_run(runs).and_then(|m| m.cpu.as_ref().map(|c| (m, c))) {
                if !header {
                    s.push_str("CPU of the median run, CPU s (µs a partner):\n");
                    header = true;
                }
                s.push_str(&cpu_lines(name, cpu, m.records));
            }
        }
        s
    }
}
