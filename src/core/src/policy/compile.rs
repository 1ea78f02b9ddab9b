//! The compiled policy: dense arrays indexed by code, vague terms by first byte, hash sets for watch
//! lists, and the model rule — what the scorer reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::codes::{Country, PortCode};
use crate::decision::{Action, Role};
use crate::model::Model;
use crate::schema::PathError;
use crate::wire::{Entity, IdKind, Str};

use super::doc::*;
use super::terms::WholeWords;
use super::validate::parse_policy;

/// A risk entry as the scorer sees it: points and an explanation shared by every decision that cites it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub points: i32,
    pub why: Arc<str>,
    /// `Some(min_action)` for a non-creditable entry: credits never offset its points.
    pub floor: Option<Action>,
}

#[derive(Debug, Clone)]
pub struct PortInfo {
    pub code: PortCode,
    pub name: Arc<str>,
    pub border: Border,
    pub fast_lanes: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct CompiledBand {
    pub min: f64,
    pub max: f64,
    pub points: i32,
    /// `Some(min_action)` for a non-creditable band.
    pub floor: Option<Action>,
}

#[derive(Debug, Clone)]
pub struct CompiledJoin {
    pub kinds: Vec<IdKind>,
    /// Bit `Entity as u32` set for each accepted entity.
    pub entities: u32,
}

/// Credits indexed `[certified, validated, tier3, mra]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompiledCredit {
    pub certified: i32,
    pub validated: i32,
    pub tier3: i32,
    pub mra: i32,
}

/// The `[plausibility]` section as the checker and the scorer read it, per commodity line.
#[derive(Debug, Clone, Copy)]
pub struct CompiledPlausibility {
    pub max_weight_kg: f64,
    pub max_value_usd: f64,
    pub max_quantity: f64,
    pub max_value_per_kg: f64,
    /// 0 disables the `commodity.zero_weight` rule.
    pub zero_weight_points: i32,
}

impl From<&Plausibility> for CompiledPlausibility {
    fn from(p: &Plausibility) -> Self {
        CompiledPlausibility {
            max_weight_kg: p.max_weight_kg,
            max_value_usd: p.max_value_usd,
            max_quantity: p.max_quantity,
            max_value_per_kg: p.max_value_per_kg,
            zero_weight_points: p.zero_weight_points,
        }
    }
}

/// The policy's `[model]` section compiled: the model and its probability → points bands.
#[derive(Debug, Clone)]
pub struct ModelRule {
    pub model: Arc<Model>,
    /// (min probability, points), ascending; the last band reached counts. A curve is compiled into one
    /// band per point ([`curve_bands`]).
    pub bands: Box<[(f64, i32)]>,
}

/// The curve `clamp(round(scale · (logit p − logit p0)), 0, max_points)` as bands: `k` points from
/// `sigmoid(logit p0 + (k − ½) / scale)` on, for k = 1 ..= max_points. Counting thresholds makes the points
/// non-decreasing in the probability by construction (no float non-monotonicity of `ln` can invert them).
/// Needs `p0` in (0, 1), `scale` > 0 (validated).
pub fn curve_bands(p0: f64, scale: f64, max_points: i32) -> Box<[(f64, i32)]> {
    let logit0 = (p0 / (1.0 - p0)).ln();
    let mut out: Vec<(f64, i32)> = Vec::with_capacity(max_points.max(0) as usize);
    let mut prev = 0.0f64;
    for k in 1..=max_points.max(0) {
        let t = logit0 + (f64::from(k) - 0.5) / scale;
        let min = (1.0 / (1.0 + (-t).exp())).max(prev);
        out.push((min, k));
        prev = min;
    }
    out.into_boxed_slice()
}

impl ModelRule {
    /// Points for a probability: the highest band it reaches, 0 below the first (bands ascend, so a
    /// binary search finds it; a curve compiles to one band per point).
    #[inline]
    pub fn points(&self, probability: f64) -> i32 {
        let reached = self.bands.partition_point(|(min, _)| probability >= *min);
        reached.checked_sub(1).map_or(0, |i| self.bands[i].1)
    }
}

/// A policy compiled for evaluation: dense arrays indexed by code, vague terms by first byte, hash sets
/// for watch lists. Built once per version; immutable and shared (`Arc`) by every scoring thread.
pub struct CompiledPolicy {
    pub doc: PolicyDoc,
    pub version: Arc<str>,
    /// `port index → 1 + position in ports`, 0 for unknown.
    port_slot: Box<[u16]>,
    pub ports: Vec<PortInfo>,
    pub origin: Box<[Option<Entry>]>,
    pub transit: Box<[Option<Entry>]>,
    pub chapters: Box<[Option<Entry>]>,
    /// Sorted by heading, so a chapter's headings are adjacent (`chapter_headings` relies on it: private,
    /// read through [`CompiledPolicy::heading`]).
    headings: Vec<(u16, Entry)>,
    /// `chapter → start..end` of its headings in `headings`: a line's heading is found among its
    /// chapter's few (usually none) instead of by a search of them all.
    chapter_headings: Box<[(u16, u16)]>,
    pub value_per_kg: Box<[Option<CompiledBand>]>,
    /// The vague terms (trimmed, non-empty, in the policy's order), matched as whole words.
    pub vague: WholeWords,
    pub watch_ids: HashMap<Str, Arc<str>, foldhash::fast::RandomState>,
    /// One bit per [`id_fingerprint`] of a listed id: almost every id is ruled out with one load, before it
    /// is hashed.
    watch_id_bits: Box<[u64; 1024]>,
    pub watch_names: HashMap<String, Arc<str>, foldhash::fast::RandomState>,
    /// The longest normalised watch-list name, in bytes: a name normalising to more cannot be listed.
    pub watch_name_max: usize,
    /// The listed names' normalised 2-byte prefixes (`doc::normalized_prefix`), one bit each of the 65 536:
    /// almost every name is ruled out after its first two letters with one load.
    watch_name_heads: Box<[u64; 1024]>,
    /// The listed names' normalised 8-byte prefixes: the names left are ruled out by these before being
    /// normalised whole.
    pub watch_name_prefixes: HashSet<u64, foldhash::fast::RandomState>,
    /// A hash of what watch-list and vague-term matching reads (the listed ids and normalised names, the
    /// vague terms in order): two policies with equal keys match every manifest alike, so a match recorded
    /// under one holds for the other (`score::Screen`).
    pub screening_key: u64,
    pub credits: [CompiledCredit; Role::COUNT],
    pub join: [CompiledJoin; Role::COUNT],
    pub front_of_line: u32,
    pub seal_modes: u32,
    pub plausibility: CompiledPlausibility,
    /// Most credit one manifest earns (`ctpat.credit_cap`; `i32::MAX` when unlimited).
    pub credit_cap: i32,
    /// The watch list's floor when its hits are non-creditable.
    pub watch_floor: Option<Action>,
    /// The learned model and its points bands, when the policy has a `[model]` section and the adapter
    /// supplied the model (see [`CompiledPolicy::compile_with_model`]).
    pub model: Option<ModelRule>,
}

/// A 16-bit fingerprint of an id for [`CompiledPolicy::watched_id`]'s filter: its length and first and last
/// bytes (equal ids, equal fingerprints; ids of one family tend to differ at their ends).
#[inline]
fn id_fingerprint(id: &str) -> u16 {
    let b = id.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    (u16::from(first.unwrap_or(0)) << 8 | u16::from(last.unwrap_or(0)))
        ^ (b.len() as u16).wrapping_mul(0x9e37)
}

/// A set of 16-bit values as a 65 536-bit map.
fn bitmap(values: impl Iterator<Item = u16>) -> Box<[u64; 1024]> {
    let mut bits = Box::new([0u64; 1024]);
    for v in values {
        bits[usize::from(v >> 6)] |= 1 << (v & 63);
    }
    bits
}

#[inline]
fn has_bit(bits: &[u64; 1024], v: u16) -> bool {
    bits[usize::from(v >> 6)] & (1 << (v & 63)) != 0
}

/// [`CompiledPolicy::screening_key`]: the listed ids and names sorted (map order is not content), the vague
/// terms in order (a match reports its term's index), each length-prefixed.
fn screening_key<S>(
    ids: &HashMap<Str, Arc<str>, S>,
    names: &HashMap<String, Arc<str>, S>,
    vague: &[Arc<str>],
) -> u64 {
    let mut ids: Vec<&str> = ids.keys().map(|k| k.as_str()).collect();
    let mut names: Vec<&str> = names.keys().map(String::as_str).collect();
    ids.sort_unstable();
    names.sort_unstable();
    let mut bytes = Vec::new();
    for list in [ids, names, vague.iter().map(|t| &**t).collect()] {
        bytes.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for item in list {
            bytes.extend_from_slice(&(item.len() as u64).to_le_bytes());
            bytes.extend_from_slice(item.as_bytes());
        }
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

impl fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("name", &self.doc.meta.name)
            .field("version", &self.version)
            .finish()
    }
}

fn table<const N: usize>(
    map: &BTreeMap<String, Risk>,
    index: impl Fn(&str) -> Option<usize>,
) -> Box<[Option<Entry>]> {
    let mut out: Vec<Option<Entry>> = vec![None; N];
    for (k, r) in map {
        if let Some(i) = index(k) {
            out[i] = Some(Entry {
                points: r.points,
                why: Arc::from(r.why.as_str()),
                floor: r.guard().floor(),
            });
        }
    }
    out.into_boxed_slice()
}

impl CompiledPolicy {
    /// Parses, validates and compiles a policy that names no model. A policy whose `[model]` section names a
    /// model file is refused (at `model.file`): the core reads no files, so such a policy can only be compiled
    /// by an adapter's policy loader that reads the model and calls [`CompiledPolicy::with_model`]. A model is
    /// therefore never silently left out.
    pub fn from_toml(text: &str) -> Result<CompiledPolicy, Vec<PathError>> {
        CompiledPolicy::with_model(parse_policy(text)?, None)
    }

    /// Compiles a validated document with the model its `[model]` section names (read by the adapter). A
    /// section without its model, or a model without a section, is an error: the policy would not decide
    /// as written.
    pub fn with_model(
        doc: PolicyDoc,
        model: Option<Model>,
    ) -> Result<CompiledPolicy, Vec<PathError>> {
        let rule = match (&doc.model, model) {
            (Some(section), Some(model)) => Some(ModelRule {
                model: Arc::new(model),
                bands: match &section.curve {
                    Some(c) => curve_bands(c.p0, c.scale, c.max_points),
                    None => section
                        .points
                        .iter()
                        .map(|b| (b.min_probability, b.points))
                        .collect(),
                },
            }),
            (None, None) => None,
            (Some(section), None) => {
                return Err(vec![PathError {
                    path: "model.file".into(),
                    message: format!(
                        "the policy names the model file {:?}, which was not loaded (load the policy with its \
                         model through the policy loader)",
                        section.file
                    ),
                }])
            }
            (None, Some(_)) => {
                return Err(vec![PathError {
                    path: "model".into(),
                    message: "a model was given but the policy has no [model] section".into(),
                }])
            }
        };
        let mut compiled = CompiledPolicy::compile(doc);
        compiled.model = rule;
        Ok(compiled)
    }

    /// The same policy's rules alone (its `[model]` section dropped), for judging what the model adds.
    pub fn without_model(&self) -> CompiledPolicy {
        let mut doc = self.doc.clone();
        doc.model = None;
        CompiledPolicy::compile(doc)
    }

    /// The same policy without its `[history]` section (the same model), for judging what history adds.
    pub fn without_history(&self) -> CompiledPolicy {
        let mut doc = self.doc.clone();
        doc.history = None;
        let mut compiled = CompiledPolicy::compile(doc);
        compiled.model = self.model.clone();
        compiled
    }

    /// Compiles a document that [`PolicyDoc::validate`] accepted, without its model: entries that validation
    /// would reject are skipped rather than panicking, so compilation itself cannot fail. Only
    /// [`CompiledPolicy::with_model`] attaches the model its `[model]` section names.
    fn compile(doc: PolicyDoc) -> CompiledPolicy {
        let version: Arc<str> = Arc::from(doc.version());
        let mut port_slot = vec![0u16; 10_000].into_boxed_slice();
        let mut ports = Vec::new();
        for (code, p) in &doc.ports {
            if let Some(pc) = PortCode::parse(code) {
                ports.push(PortInfo {
                    code: pc,
                    name: Arc::from(p.name.as_str()),
                    border: p.border,
                    fast_lanes: p.fast_lanes,
                });
                port_slot[pc.index()] = ports.len() as u16;
            }
        }
        let country_index = |k: &str| Country::parse(k).map(Country::index);
        let chapter_index = |k: &str| parse_chapter(k).map(usize::from);
        let mut value_per_kg = vec![None; 100].into_boxed_slice();
        for (k, b) in &doc.commodities.value_per_kg {
            if let Some(c) = parse_chapter(k) {
                value_per_kg[c as usize] = Some(CompiledBand {
                    min: b.min.unwrap_or(0.0),
                    max: b.max.unwrap_or(f64::INFINITY),
                    points: b.points,
                    floor: b.guard().floor(),
                });
            }
        }
        let mut headings: Vec<(u16, Entry)> = doc
            .commodities
            .headings
            .iter()
            .filter_map(|(k, r)| {
                parse_heading(k).map(|h| {
                    (
                        h,
                        Entry {
                            points: r.points,
                            why: Arc::from(r.why.as_str()),
                            floor: r.guard().floor(),
                        },
                    )
                })
            })
            .collect();
        headings.sort_by_key(|(h, _)| *h);
        let mut chapter_headings = vec![(0u16, 0u16); 100].into_boxed_slice();
        for (i, (h, _)) in headings.iter().enumerate() {
            let range = &mut chapter_headings[usize::from(h / 100)];
            if range.0 == range.1 {
                range.0 = i as u16;
            }
            range.1 = i as u16 + 1;
        }
        let vague_terms: Vec<Arc<str>> = doc
            .commodities
            .vague_terms
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(Arc::from)
            .collect();
        let watch_ids: HashMap<Str, Arc<str>, _> = doc
            .watchlist
            .ids
            .iter()
            .map(|w| (Str::from(w.id.trim()), Arc::from(w.why.as_str())))
            .collect();
        let watch_names: HashMap<String, Arc<str>, _> = doc
            .watchlist
            .names
            .iter()
            .map(|w| (normalize_name(&w.name), Arc::from(w.why.as_str())))
            .filter(|(n, _)| !n.is_empty())
            .collect();
        let watch_name_max = watch_names.keys().map(String::len).max().unwrap_or(0);
        let watch_id_bits = bitmap(watch_ids.keys().map(|id: &Str| id_fingerprint(id)));
        let watch_name_heads = bitmap(watch_names.keys().map(|n| normalized_prefix(n, 2) as u16));
        let watch_name_prefixes = watch_names
            .keys()
            .map(|n| normalized_prefix(n, 8))
            .collect();
        let screening_key = screening_key(&watch_ids, &watch_names, &vague_terms);
        let mut credits = [CompiledCredit::default(); Role::COUNT];
        for (role, c) in &doc.ctpat.credits {
            credits[role.index()] = CompiledCredit {
                certified: c.certified,
                validated: c.validated,
                tier3: c.tier3.unwrap_or(c.validated),
                mra: c.mra,
            };
        }
        let join = std::array::from_fn(|i| {
            let role = Role::ALL[i];
            match doc.ctpat.join.get(&role) {
                Some(j) => CompiledJoin {
                    kinds: j.kinds.clone(),
                    entities: j
                        .entities
                        .iter()
                        .fold(0u32, |acc, e| acc | (1 << (*e as u32))),
                },
                None => CompiledJoin {
                    kinds: Vec::new(),
                    entities: 0,
                },
            }
        });
        let front_of_line = doc
            .ctpat
            .front_of_line_roles
            .iter()
            .fold(0u32, |acc, r| acc | (1 << r.index()));
        let seal_modes = doc
            .seals
            .modes
            .iter()
            .fold(0u32, |acc, m| acc | (1 << (*m as u32)));
        CompiledPolicy {
            origin: table::<676>(&doc.countries.origin, country_index),
            transit: table::<676>(&doc.countries.transit, country_index),
            chapters: table::<100>(&doc.commodities.chapters, chapter_index),
            headings,
            chapter_headings,
            value_per_kg,
            vague: WholeWords::new(vague_terms),
            watch_ids,
            watch_names,
            watch_name_max,
            watch_name_heads,
            watch_id_bits,
            watch_name_prefixes,
            screening_key,
            credits,
            join,
            front_of_line,
            seal_modes,
            plausibility: CompiledPlausibility::from(&doc.plausibility),
            credit_cap: doc.credit_cap(),
            watch_floor: (!doc.watchlist.creditable).then_some(doc.watchlist.action),
            port_slot,
            ports,
            version,
            doc,
            model: None,
        }
    }

    /// The port-table entry for a port code, if the policy knows it.
    #[inline]
    pub fn port(&self, code: PortCode) -> Option<&PortInfo> {
        match self.port_slot[code.index()] {
            0 => None,
            slot => self.ports.get(slot as usize - 1),
        }
    }

    #[inline]
    pub fn heading(&self, heading: u16) -> Option<&Entry> {
        let (start, end) = *self.chapter_headings.get(usize::from(heading / 100))?;
        self.headings
            .get(usize::from(start)..usize::from(end))?
            .iter()
            .find(|(h, _)| *h == heading)
            .map(|(_, e)| e)
    }

    /// Whether `other` gives every manifest the same hits as this policy, so the same `score::Points`
    /// (settled score, watch-list hit, history points), and its verdicts can be concluded from this one's:
    /// the documents are equal but for what only concludes — name and notes, bands, actions, ports and
    /// random compliance — and the learned model, if any, is the same file.
    pub fn same_points(&self, other: &CompiledPolicy) -> bool {
        let (a, b) = (&self.doc, &other.doc);
        let b = PolicyDoc {
            meta: a.meta.clone(),
            bands: a.bands.clone(),
            actions: a.actions.clone(),
            ports: a.ports.clone(),
            random: a.random.clone(),
            ..b.clone()
        };
        let model = |p: &CompiledPolicy| p.model.as_ref().map(|r| r.model.version.clone());
        b == *a && model(self) == model(other)
    }

    /// The first vague term found as a whole word in `text`, as its index in [`WholeWords::terms`].
    #[inline]
    pub fn vague_term_index(&self, text: &str) -> Option<usize> {
        self.vague.find(text.as_bytes())
    }

    /// Watch-list explanation for a party id, if it is listed (exactly, as `watchlist.ids` after trimming).
    #[inline]
    pub fn watched_id(&self, id: &str) -> Option<&Arc<str>> {
        if !has_bit(&self.watch_id_bits, id_fingerprint(id)) {
            return None;
        }
        self.watch_ids.get(id)
    }

    /// Watch-list explanation for a party name, if its normalised form is listed. Allocates nothing: the
    /// name is normalised into a stack buffer; one normalising to more than the buffer holds is compared,
    /// streaming, with the listed names that long (none in usual policies).
    #[inline]
    pub fn watched_name(&self, name: &str) -> Option<&Arc<str>> {
        // Most names start unlike every listed one: ruled out inline, in a few instructions.
        if !has_bit(&self.watch_name_heads, normalized_head(name)) {
            return None;
        }
        self.watched_name_past_head(name)
    }

    /// [`CompiledPolicy::watched_name`] for a name whose first two normalised bytes are a listed name's.
    #[inline(never)]
    fn watched_name_past_head(&self, name: &str) -> Option<&Arc<str>> {
        const BUF: usize = 128;
        if !self
            .watch_name_prefixes
            .contains(&normalized_prefix(name, 8))
        {
            return None;
        }
        let mut buf = [0u8; BUF];
        let mut len = 0usize;
        normalize_into(name, |b| {
            if len < BUF {
                buf[len] = b;
            }
            len += 1;
        });
        if len <= BUF {
            // Only ASCII bytes were pushed.
            return std::str::from_utf8(&buf[..len])
                .ok()
                .and_then(|n| self.watch_names.get(n));
        }
        if len > self.watch_name_max {
            return None;
        }
        self.watch_names
            .iter()
            .filter(|(listed, _)| listed.len() == len)
            .find(|(listed, _)| {
                let listed = listed.as_bytes();
                let mut i = 0usize;
                let mut same = true;
                normalize_into(name, |b| {
                    same &= listed.get(i) == Some(&b);
                    i += 1;
                });
                same
            })
            .map(|(_, why)| why)
    }

    pub fn accepts(&self, role: Role, entity: Entity) -> bool {
        self.join[role.index()].entities & (1 << (entity as u32)) != 0
    }

    pub fn revalidation_days(&self) -> i32 {
        self.doc.ctpat.revalidation_days
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = include_str!("../../../../config/policy.toml");

    /// The prefix filter rules out only names that cannot be listed: every spelling of a listed name —
    /// short, exactly 8 bytes, sharing its first 8 bytes with another — is still found, and a name that
    /// agrees with a listed one on the first 8 bytes only is not.
    #[test]
    fn the_prefix_filter_keeps_every_spelling_of_a_listed_name() {
        let text = DEFAULT.replace(
            "names = [\n",
            "names = [\n  { name = \"Ab\", why = \"short\" },\n  { name = \"ABCD EFG\", why = \"eight\" },\n  \
             { name = \"Abcd Efgh Trading\", why = \"long\" },\n",
        );
        let p = CompiledPolicy::from_toml(&text).expect("policy");
        let found = |name: &str| p.watched_name(name).map(|w| w.to_string());
        assert_eq!(found("ab").as_deref(), Some("short"));
        assert_eq!(found("  a.b  ").as_deref(), None, "'A B' is not 'AB'");
        assert_eq!(found("--abcd   efg!").as_deref(), Some("eight"));
        assert_eq!(found("abcd efg h").as_deref(), None);
        assert_eq!(found("ABCD, EFGH; trading").as_deref(), Some("long"));
        assert_eq!(found("abcd efgh tradinG co").as_deref(), None);
        assert_eq!(found("abcd efgh").as_deref(), None);
        assert_eq!(found("").as_deref(), None);
        assert_eq!(found("!!!").as_deref(), None);
        // Every listed name of the default policy, spelled differently.
        for listed in p.watch_names.keys() {
            let spelled = format!("  {}. ", listed.to_lowercase().replace(' ', " - "));
            assert!(p.watched_name(&spelled).is_some(), "{spelled:?}");
        }
    }

    proptest::proptest! {
        /// The hot-path prefix is exactly the first 8 bytes of the normalisation, for any text (ASCII
        /// punctuation and letters weighted up so that gaps, runs and boundaries at 8 bytes are common).
        #[test]
        fn prefix_is_the_normalisations_first_bytes(name in "([a-zA-Z0-9]{0,4}[ .,&'-]{0,3}|é|日){0,8}") {
            let normal = normalize_name(&name);
            let mut want = [0u8; 8];
            for (w, b) in want.iter_mut().zip(normal.bytes()) {
                *w = b;
            }
            proptest::prop_assert_eq!(normalized_prefix(&name, 8), u64::from_le_bytes(want), "{:?} -> {:?}", name, normal);
            let head = u64::from(want[0]) | u64::from(want[1]) << 8;
            proptest::prop_assert_eq!(normalized_prefix(&name, 2), head, "{:?} -> {:?}", name, normal);
            proptest::prop_assert_eq!(u64::from(normalized_head(&name)), head, "{:?} -> {:?}", name, normal);
        }
    }

    /// The id filter rules out only ids that are not listed: every listed id is found, an id with the same
    /// length and ends (the same fingerprint) is not, and neither is the listed id with a space around it.
    #[test]
    fn the_id_filter_keeps_every_listed_id() {
        let p = CompiledPolicy::from_toml(DEFAULT).expect("policy");
        assert!(!p.watch_ids.is_empty());
        for (listed, why) in &p.watch_ids {
            assert_eq!(p.watched_id(listed), Some(why), "{listed}");
            let mut same_ends = listed.to_string().into_bytes();
            if same_ends.len() > 2 {
                same_ends[1] = if same_ends[1] == b'#' { b'%' } else { b'#' };
                let same_ends = String::from_utf8(same_ends).expect("ASCII");
                assert_eq!(id_fingerprint(&same_ends), id_fingerprint(listed));
                assert_eq!(p.watched_id(&same_ends), None, "{same_ends}");
            }
            assert_eq!(p.watched_id(&format!(" {listed}")), None);
        }
        assert_eq!(p.watched_id(""), None);
    }

    /// Every heading is found among its chapter's exactly when the document lists it: chapters with one,
    /// several and no headings, the first and last chapter.
    #[test]
    fn a_heading_is_found_among_its_chapters() {
        let text = DEFAULT.replace(
            "headings.\"8471\"",
            "headings.\"8470\" = { points = 1, why = \"a\" }\nheadings.\"8473\" = { points = 2, why = \"b\" }\n\
             headings.\"0101\" = { points = 3, why = \"c\" }\nheadings.\"9999\" = { points = 4, why = \"d\" }\n\
             headings.\"8471\"",
        );
        let p = CompiledPolicy::from_toml(&text).expect("policy");
        assert_eq!(p.headings.len(), p.doc.commodities.headings.len());
        assert!(p.headings.len() >= 10, "{}", p.headings.len());
        for h in 0..=u16::MAX {
            let listed = p.doc.commodities.headings.get(&format!("{h:04}"));
            let found = p.heading(h);
            assert_eq!(found.map(|e| e.points), listed.map(|r| r.points), "{h}");
            assert_eq!(
                found.map(|e| &*e.why),
                listed.map(|r| r.why.as_str()),
                "{h}"
            );
        }
    }

    /// Names normalising to more than the stack buffer are still found, and only when every byte agrees.
    #[test]
    fn watched_names_of_any_length() {
        let long = "Fantasma ".repeat(20);
        let text = DEFAULT.replace(
            "names = [\n",
            &format!("names = [\n  {{ name = \"{long}\", why = \"long\" }},\n"),
        );
        let p = CompiledPolicy::from_toml(&text).expect("policy");
        assert!(p.watch_name_max > 128, "{}", p.watch_name_max);
        let spelled = long.trim().to_lowercase().replace(' ', " -- ");
        assert_eq!(p.watched_name(&spelled).map(|w| &**w), Some("long"));
        let last = spelled.rfind("fantasma").expect("a word");
        let other = format!("{}fantasmb", &spelled[..last]);
        assert_eq!(p.watched_name(&other), None);
        assert_eq!(p.watched_name(&format!("{spelled} x")), None);
        assert_eq!(
            p.watched_name("fantasma exports, s.a.").map(|w| &**w),
            Some("shell exporter named in a seizure")
        );
        let d = CompiledPolicy::from_toml(DEFAULT).expect("default policy");
        assert_eq!(d.watched_name(&spelled), None);
    }
}
