//! The officers' live decision feed: every decision, serialised once by the pipeline, goes onto a bounded
//! broadcast that SSE clients read with their own filters; a recent window answers "show me this trip";
//! per-minute counters feed the console's header. Publishing never blocks: a client that falls behind gets
//! a `gap` event saying how many decisions it missed, and the pipeline never waits for it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use borderlane_core::decision::Action;
use borderlane_core::decision::{Decision, Lane};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::wire::{Mode, Str};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};

use crate::analysis::summary::{standing_group, Rate};
use crate::service::Brief;

/// The console page, embedded in the binary (no CDN, works offline).
pub const CONSOLE_HTML: &str = include_str!("console.html");

/// One published decision: its JSON, serialised once, and the fields filters look at.
#[derive(Debug)]
pub struct FeedItem {
    pub json: Arc<str>,
    pub manifest_id: Str,
    pub port: Str,
    pub lane: Lane,
    pub action: Action,
    pub score: i32,
    pub standing: &'static str,
}

/// Counters for one wall-clock minute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Minute {
    /// Unix minute (seconds / 60).
    pub minute: i64,
    pub decisions: u64,
    pub exams: u64,
    pub fast: u64,
    pub fast_port_trucks: u64,
}

/// The last hour, minute by minute, plus exam rates by CTPAT standing over the same hour.
#[derive(Debug, Default)]
struct Stats {
    minutes: VecDeque<Minute>,
    /// Per minute, per standing group: (minute, group) → rate; trimmed with `minutes`.
    standing: VecDeque<(i64, HashMap<&'static str, Rate>)>,
}

const HOUR: usize = 60;

/// `/feed` clients allowed when not configured (`officers.max_sse_clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 64;

/// Most recent decision per manifest, bounded.
#[derive(Debug, Default)]
struct Recent {
    by_id: HashMap<Str, Arc<FeedItem>>,
    order: VecDeque<Str>,
}

/// Shared feed state; cheap to clone behind an `Arc`.
pub struct Feed {
    /// The bounded broadcast: capacity is how far a client may fall behind before it gets a gap.
    tx: broadcast::Sender<Arc<FeedItem>>,
    recent: Mutex<Recent>,
    /// How many manifests the recent window keeps.
    window: usize,
    stats: Mutex<Stats>,
    /// Port codes and names for the console's filter.
    ports: Vec<(String, String)>,
    /// Flips to true when the service shuts down; every stream ends then.
    shutdown: watch::Receiver<bool>,
    /// One permit per connected `/feed` client (503 when none is left).
    sse_slots: Arc<Semaphore>,
    /// Exam-outcome hit rates and the policy (for the exempt strata), when outcomes are recorded.
    hit_rates: std::sync::OnceLock<(
        Arc<crate::service::outcomes::HistoryFeed>,
        Arc<arc_swap::ArcSwap<CompiledPolicy>>,
    )>,
}

impl Feed {
    /// `capacity`: broadcast slots per client; `window`: manifests kept for look-up.
    pub fn new(
        capacity: usize,
        window: usize,
        policy: &CompiledPolicy,
        shutdown: watch::Receiver<bool>,
    ) -> Feed {
        let (tx, _) = broadcast::channel(capacity.max(1));
        let ports = policy
            .ports
            .iter()
            .map(|p| (p.code.to_string(), p.name.to_string()))
            .collect();
        Feed {
            tx,
            recent: Mutex::default(),
            window: window.max(1),
            stats: Mutex::default(),
            ports,
            shutdown,
            sse_slots: Arc::new(Semaphore::new(DEFAULT_MAX_CLIENTS)),
            hit_rates: std::sync::OnceLock::new(),
        }
    }

    /// At most `n` concurrent `/feed` clients (503 beyond).
    /// Shows the hit rates in `/api/stats` (set once, at start).
    pub fn set_hit_rates(
        &self,
        rates: Arc<crate::service::outcomes::HistoryFeed>,
        policy: Arc<arc_swap::ArcSwap<CompiledPolicy>>,
    ) {
        let _ = self.hit_rates.set((rates, policy));
    }

    pub fn with_max_clients(mut self, n: usize) -> Feed {
        self.sse_slots = Arc::new(Semaphore::new(n));
        self
    }

    /// Publishes a decision whose JSON the caller already produced. Never blocks.
    pub fn publish(&self, d: &Decision, json: &[u8], unix_seconds: i64) {
        let brief = Brief {
            decided_secs: unix_seconds,
            ..Brief::of(d)
        };
        let mut evicted = Vec::new();
        self.publish_item(
            Feed::item(&d.manifest_id, &brief, json),
            &brief,
            &mut evicted,
        );
    }

    /// The feed's item of a decision (what `/feed` streams and the look-ups return). Built apart from
    /// [`Feed::publish_item`] so a scoring thread can build it and the pipeline thread only publish it.
    pub fn item(id: &str, d: &Brief, json: &[u8]) -> Arc<FeedItem> {
        Arc::new(FeedItem {
            // The writer's JSON is UTF-8; checked with SIMD (std's lossy conversion was ~8 % of a scoring
            // thread with the feed on), the lossy conversion kept for what cannot happen.
            json: match simdutf8::basic::from_utf8(json) {
                Ok(text) => Arc::from(text),
                Err(_) => Arc::from(String::from_utf8_lossy(json).as_ref()),
            },
            manifest_id: Str::from(id),
            port: Str::from(d.port.as_str()),
            lane: d.lane,
            action: d.action,
            score: d.score,
            standing: standing_group(d.importer_standing),
        })
    }

    /// Publishes an item made by [`Feed::item`] with the same [`Brief`]. Never blocks. The items that leave
    /// the look-up window are appended to `evicted`, for the caller to free where it chooses (each holds
    /// its decision's ~2.7 KB of JSON, built on a scoring thread: see `Watchers::keep_evicted`).
    pub fn publish_item(&self, item: Arc<FeedItem>, d: &Brief, evicted: &mut Vec<Arc<FeedItem>>) {
        self.count(d);
        {
            let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let id = item.manifest_id.clone();
            match r.by_id.insert(id.clone(), item.clone()) {
                None => r.order.push_back(id),
                Some(replaced) => evicted.push(replaced),
            }
            while r.order.len() > self.window {
                if let Some(old) = r.order.pop_front() {
                    evicted.extend(r.by_id.remove(&old));
                }
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(item);
    }

    fn count(&self, d: &Brief) {
        let minute = d.decided_secs.div_euclid(60);
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if s.minutes.back().is_none_or(|m| m.minute < minute) {
            s.minutes.push_back(Minute {
                minute,
                ..Minute::default()
            });
            s.standing.push_back((minute, HashMap::new()));
            while s.minutes.len() > HOUR {
                s.minutes.pop_front();
                s.standing.pop_front();
            }
        }
        let exam = d.action.is_exam();
        if let Some(m) = s.minutes.back_mut() {
            m.decisions += 1;
            m.exams += exam as u64;
            if d.mode == Mode::Truck && d.fast_lane_port {
                m.fast_port_trucks += 1;
                m.fast += (d.lane == Lane::Fast) as u64;
            }
        }
        if let Some((_, by)) = s.standing.back_mut() {
            let r = by.entry(standing_group(d.importer_standing)).or_default();
            r.total += 1;
            r.exams += exam as u64;
        }
    }

    /// The latest decision for a manifest in the recent window.
    pub fn lookup(&self, manifest_id: &str) -> Option<Arc<FeedItem>> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(manifest_id)
            .cloned()
    }

    /// A new subscription to the live feed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    /// The console's header data.
    pub fn stats(&self) -> StatsView {
        let s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_standing: HashMap<&'static str, Rate> = HashMap::new();
        for (_, by) in &s.standing {
            for (k, r) in by {
                let e = by_standing.entry(k).or_default();
                e.total += r.total;
                e.exams += r.exams;
            }
        }
        let hit_rates = self
            .hit_rates
            .get()
            .map(|(rates, policy)| rates.hit_rates(&policy.load().doc));
        StatsView {
            hit_rates,
            minutes: s.minutes.iter().cloned().collect(),
            by_standing,
            ports: self
                .ports
                .iter()
                .map(|(code, name)| PortView {
                    code: code.clone(),
                    name: name.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PortView {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct StatsView {
    pub minutes: Vec<Minute>,
    pub by_standing: HashMap<&'static str, Rate>,
    pub ports: Vec<PortView>,
    /// Exam outcomes: hit rates by cause, port and standing, and the random-exam estimates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_rates: Option<crate::service::outcomes::HitRatesView>,
}

/// Feed filters from the query string; absent means "any".
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub port: Option<String>,
    pub lane: Option<String>,
    /// An action name, or `exam` for any examination.
    pub action: Option<String>,
    pub min_score: Option<i32>,
    /// An importer standing group: none, suspended_or_removed, certified, validated, validated_tier3.
    pub standing: Option<String>,
}

impl Filter {
    /// Decodes a query string (without the `?`), as the `/feed` handler does; unknown keys are refused.
    pub fn from_query(query: &str) -> Result<Filter, String> {
        serde_urlencoded::from_str(query).map_err(|e| e.to_string())
    }

    /// The query string that [`Filter::from_query`] decodes back to this filter.
    pub fn to_query(&self) -> String {
        serde_urlencoded::to_string(self).expect("a filter of strings and an integer encodes")
    }

    pub fn matches(&self, i: &FeedItem) -> bool {
        self.port.as_deref().is_none_or(|p| p == i.port)
            && self.lane.as_deref().is_none_or(|l| l == i.lane.as_str())
            && self.action.as_deref().is_none_or(|a| {
                if a == "exam" {
                    i.action.is_exam()
                } else {
                    a == i.action.as_str()
                }
            })
            && self.min_score.is_none_or(|m| i.score >= m)
            && self.standing.as_deref().is_none_or(|s| s == i.standing)
    }
}

/// Routes: `/` (console), `/feed` (SSE), `/decisions/{manifest_id}`, `/api/stats`. They show decisions:
/// serve them only behind [`crate::service::officers::router`], which authenticates every one of them.
pub fn router(feed: Arc<Feed>) -> Router {
    Router::new()
        .route("/", get(console))
        .route("/feed", get(sse))
        .route("/decisions/{manifest_id}", get(decision))
        .route("/api/stats", get(stats))
        .with_state(feed)
}

async fn console() -> Html<&'static str> {
    Html(CONSOLE_HTML)
}

async fn decision(State(feed): State<Arc<Feed>>, Path(id): Path<String>) -> Response {
    match feed.lookup(&id) {
        Some(item) => (
            [(header::CONTENT_TYPE, "application/json")],
            item.json.to_string(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no recent decision for {id}\n"),
        )
            .into_response(),
    }
}

async fn stats(State(feed): State<Arc<Feed>>) -> impl IntoResponse {
    axum::Json(feed.stats())
}

async fn sse(State(feed): State<Arc<Feed>>, RawQuery(query): RawQuery) -> Response {
    let filter = match Filter::from_query(query.as_deref().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Failed to deserialize query string: {e}\n"),
            )
                .into_response()
        }
    };
    let Ok(slot) = feed.sse_slots.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
            "too many feed clients on this instance (officers.max_sse_clients)\n",
        )
            .into_response();
    };
    Sse::new(held(Box::pin(events(&feed, filter)), slot))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `s`, holding `slot` until the stream is dropped (the client went away or the service stops).
fn held<S: Stream + Unpin>(s: S, slot: OwnedSemaphorePermit) -> impl Stream<Item = S::Item> {
    stream::unfold((s, slot), |(mut s, slot)| async move {
        use futures_util::StreamExt;
        let item = s.next().await?;
        Some((item, (s, slot)))
    })
}

/// The event stream of one client: matching decisions, `gap` events when it lagged, and the end when the
/// service shuts down or the feed closes.
pub fn events(
    feed: &Feed,
    filter: Filter,
) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let rx = feed.subscribe();
    let shutdown = feed.shutdown.clone();
    stream::unfold(
        (rx, shutdown, filter),
        |(mut rx, mut shutdown, filter)| async move {
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = shutdown.changed() => return None,
                };
                let event = match next {
                    Ok(item) if filter.matches(&item) => {
                        Event::default().event("decision").data(&*item.json)
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                        .event("gap")
                        .data(format!("{{\"missed\":{n}}}")),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (rx, shutdown, filter)));
            }
        },
    )
}
