//! The demo's history study on a small generated period: exam outcomes of the hidden ground truth feed the
//! party history day by day, and with `[history]` selection shifts toward the parties exams found something
//! on (and toward the planted rogue importers), while the policy without the section does not learn.

use borderlane::analysis::history_study;
use borderlane::load::policy::default_policy;
use borderlane::traffic::gen::{GenConfig, Generator};
use borderlane_core::outcome::Cause;
use borderlane_core::table::PartnerTable;

#[test]
fn history_shifts_selection_toward_found_violators() {
    let policy = default_policy();
    let cfg = GenConfig {
        partners: 2_000,
        ..GenConfig::default()
    };
    let g = Generator::new(cfg.clone(), &policy);
    let table = PartnerTable::new();
    for p in g.partners() {
        table.upsert(p.clone());
    }
    let study = history_study::run(&policy, &cfg, &table, 8_000, 8);
    let (w, o) = (&study.with_history, &study.without_history);
    eprintln!("{}", study.render());
    // Same traffic, same first day (an empty history either way).
    assert_eq!(w.rogue[0].manifests, o.rogue[0].manifests);
    assert!(w.outcomes > 0 && w.all.discrepancies + w.all.seizures > 0);
    // Violations are a realistic minority of manifests.
    let share = (w.violations[0] + w.violations[1]) as f64 / study.manifests as f64;
    assert!((0.01..0.10).contains(&share), "violation share {share}");
    // History is a cause only with the section, and its exams hit more often than the band's.
    assert!(w.by_cause[Cause::History as usize].exams > 0);
    assert_eq!(o.by_cause[Cause::History as usize].exams, 0);
    assert!(
        w.by_cause[Cause::History as usize].hit_rate()
            > w.by_cause[Cause::Band as usize].hit_rate()
    );
    // Parties found before are examined more with history than without, and more than the rest.
    assert!(
        w.flagged.rate() > o.flagged.rate(),
        "{:?} vs {:?}",
        w.flagged,
        o.flagged
    );
    assert!(w.flagged.rate() > w.unflagged.rate());
    // The planted rogue importers are examined more in the second half with history than without.
    assert!(
        w.rogue[1].rate() > o.rogue[1].rate(),
        "{:?} vs {:?}",
        w.rogue,
        o.rogue
    );
    // Deterministic.
    assert_eq!(history_study::run(&policy, &cfg, &table, 8_000, 8), study);
}
