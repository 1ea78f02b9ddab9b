//! Scenario files (`loadtest/scenarios/*.toml`): the offered load, the data mix, the topic layout and
//! which measurements run (passthrough baseline, max-throughput search, partner-table load).

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// One scenario; every key but `rate` and `duration_s` has a default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Shown in reports; the file stem when absent.
    #[serde(default)]
    pub name: String,
    /// Offered load in manifests per second, sent open-loop on a fixed timetable.
    pub rate: f64,
    /// Measured seconds at `rate` (after the warm-up).
    pub duration_s: f64,
    /// Seconds at `rate` before the measured window: connections, fetch sessions and caches warm up.
    /// These manifests count for loss and duplicates but not for the percentiles.
    #[serde(default = "default_warmup")]
    pub warmup_s: f64,
    /// Share of malformed manifests (every dead-letter kind in turn), which become dead letters.
    #[serde(default = "default_bad_share")]
    pub bad_share: f64,
    /// Partner records on the partner topic, loaded by the service before it decides.
    #[serde(default = "default_partners")]
    pub partners: usize,
    /// Partitions of every topic of a run.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Also run the passthrough baseline (consume → produce the unchanged bytes) in the same invocation.
    #[serde(default = "default_true")]
    pub passthrough: bool,
    /// Generator seed: the same seed gives the same manifests and partners.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Distinct manifests generated before the run and cycled (each send gets its own manifest id), so
    /// generating load costs a copy, not a generation, per manifest.
    #[serde(default = "default_templates")]
    pub templates: usize,
    /// After the last send, how long to wait for outstanding outputs; whatever is still missing is lost.
    #[serde(default = "default_drain")]
    pub drain_timeout_s: f64,
    /// The service's delivery guarantee for this scenario: `at_least_once` or `exactly_once`
    /// (transactions; the collector reads with `isolation.level=read_committed`, so latency is measured to
    /// the commit). Absent: the base configuration's (`--service-config`, `BORDERLANE_KAFKA__DELIVERY`).
    #[serde(default)]
    pub delivery: Option<String>,
    /// The `--find-max` search.
    #[serde(default)]
    pub find_max: FindMax,
    /// The `--partner-load` benchmark.
    #[serde(default)]
    pub partner_load: PartnerLoad,
}

/// Settings of the max-throughput search.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FindMax {
    /// First rate tried (manifests per second); the search doubles from there until a step fails.
    #[serde(default = "default_start_rate")]
    pub start_rate: f64,
    /// Never tries above this rate (protects the machine from a runaway search).
    #[serde(default = "default_max_rate")]
    pub max_rate: f64,
    /// Measured seconds per step.
    #[serde(default = "default_step_duration")]
    pub step_duration_s: f64,
    /// Warm-up seconds per step.
    #[serde(default = "default_step_warmup")]
    pub step_warmup_s: f64,
    /// A step is sustainable only if its p99 (from the scheduled send time) is at most this.
    #[serde(default = "default_max_p99")]
    pub max_p99_ms: f64,
    /// The search stops when the lowest failing rate is within this factor of the highest passing one.
    #[serde(default = "default_precision")]
    pub precision: f64,
    /// A failing step is run again up to this many times and counts as sustainable if a retry passes: one
    /// stall of a shared machine (another process, a broker GC) must not decide the maximum.
    #[serde(default = "default_retries")]
    pub retries: usize,
}

/// Settings of the partner-table load benchmark.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerLoad {
    /// Partner records to load when `--partner-load` is given without a number.
    #[serde(default = "default_partner_load")]
    pub partners: usize,
    /// Measurements of each kind (raw consume, table load), alternating; the median is reported.
    #[serde(default = "default_repeat")]
    pub repeat: usize,
}

fn default_warmup() -> f64 {
    3.0
}
fn default_bad_share() -> f64 {
    0.02
}
fn default_partners() -> usize {
    20_000
}
fn default_partitions() -> i32 {
    3
}
fn default_true() -> bool {
    true
}
fn default_seed() -> u64 {
    42
}
fn default_templates() -> usize {
    10_000
}
fn default_drain() -> f64 {
    15.0
}
fn default_start_rate() -> f64 {
    1_000.0
}
fn default_max_rate() -> f64 {
    200_000.0
}
fn default_step_duration() -> f64 {
    10.0
}
fn default_step_warmup() -> f64 {
    2.0
}
fn default_max_p99() -> f64 {
    50.0
}
fn default_precision() -> f64 {
    0.1
}
fn default_retries() -> usize {
    1
}
fn default_partner_load() -> usize {
    1_000_000
}
fn default_repeat() -> usize {
    3
}

impl Default for FindMax {
    fn default() -> Self {
        FindMax {
            start_rate: default_start_rate(),
            max_rate: default_max_rate(),
            step_duration_s: default_step_duration(),
            step_warmup_s: default_step_warmup(),
            max_p99_ms: default_max_p99(),
            precision: default_precision(),
            retries: default_retries(),
        }
    }
}

impl Default for PartnerLoad {
    fn default() -> Self {
        PartnerLoad {
            partners: default_partner_load(),
            repeat: default_repeat(),
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let mut s: Scenario = toml::from_str(&text)
            .with_context(|| format!("parsing scenario {}", path.display()))?;
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
        }
        s.check()
            .with_context(|| format!("scenario {}", path.display()))?;
        Ok(s)
    }

    /// The rules serde cannot express.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            bail!("rate must be a positive number of manifests per second");
        }
        if !(self.duration_s > 0.0 && self.duration_s.is_finite())
            || self.warmup_s < 0.0
            || self.drain_timeout_s < 0.0
        {
            bail!("duration_s must be positive; warmup_s and drain_timeout_s not negative");
        }
        if !(0.0..=1.0).contains(&self.bad_share) {
            bail!("bad_share must be within 0..=1");
        }
        if self.partitions < 1 || self.templates < 1 {
            bail!("partitions and templates must be at least 1");
        }
        let f = &self.find_max;
        if !(f.start_rate > 0.0 && f.max_rate >= f.start_rate && f.precision > 0.0) {
            bail!("find_max: need 0 < start_rate <= max_rate and precision > 0");
        }
        if !(f.step_duration_s > 0.0 && f.max_p99_ms > 0.0) {
            bail!("find_max: step_duration_s and max_p99_ms must be positive");
        }
        if self.partner_load.repeat < 1 {
            bail!("partner_load.repeat must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped scenario parses and passes the checks (so none of them rots).
    #[test]
    fn shipped_scenarios_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{e:#}"));
                n += 1;
            }
        }
        assert!(
            n >= 2,
            "expected the shipped scenarios in {}",
            dir.display()
        );
        let smoke = Scenario::load(&dir.join("smoke.toml")).unwrap();
        assert!(smoke.passthrough, "the smoke scenario runs the baseline");
        assert!(
            smoke.warmup_s + smoke.duration_s < 30.0,
            "smoke stays short"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<Scenario>("rate = 1\nduration_s = 1\nrat = 2").is_err());
        let s: Scenario = toml::from_str("rate = 1\nduration_s = 1\nbad_share = 2.0").unwrap();
        assert!(s.check().is_err());
        let s: Scenario = toml::from_str("rate = 1\nduration_s = 1").unwrap();
        assert!(s.check().is_ok());
        assert_eq!(s.partner_load.partners, 1_000_000);
    }
}
