//! Prometheus metrics for `GET /metrics`: what runs did, how long their stages took, what they
//! wrote, how hard they leaned on each vendor's API, and when each source last synced.
//!
//! Self-contained on purpose: the engine reports a finished run as a [`RunObservation`] (plain
//! borrowed data), so this module never depends on the sync engine's types.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

/// The `Content-Type` to serve [`Metrics::encode`]'s output with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The vendor label Bitbucket's own calls are counted under.
pub const BITBUCKET_VENDOR: &str = "bitbucket";

/// Stage duration buckets, in seconds: a fast stage takes ~10 ms, a first full sync of a large
/// tenant can take most of an hour, so the buckets span that range roughly ×2–×2.5 apart.
const STAGE_BUCKETS: [f64; 18] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Run states after which a completed source fetch counts as a successful sync of that source.
const SUCCESS_STATES: [&str; 3] = ["succeeded", "partial", "paused"];

/// What a finished run reports to the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RunObservation<'a> {
    /// succeeded, partial, failed, held, refused, planned, cancelled, paused.
    pub state: &'a str,
    /// schedule, api, cli, scim, user.
    pub trigger: &'a str,
    /// The target's name.
    pub target: &'a str,
    /// Milliseconds per stage: fetch, transform, merge, read, plan, guard, apply.
    pub stage_ms: &'a [(&'a str, u64)],
    /// Writes by operation kind: create-user, update-user, add-members, deactivate-user, ….
    pub writes: &'a [(&'a str, u64)],
    /// Requests made to Bitbucket.
    pub target_calls: u64,
    /// Of those, answered 429 or 503.
    pub target_throttled: u64,
    /// One entry per source the run fetched.
    pub sources: &'a [SourceObservation<'a>],
    /// When the run finished, in Unix seconds.
    pub finished_at_unix: f64,
    /// Changes made by hand found in the target: (change, handling, count).
    pub drift: &'a [(&'a str, &'a str, u64)],
}

/// How one source's fetch went, as far as the metrics care.
#[derive(Debug, Clone, Copy)]
pub struct SourceObservation<'a> {
    /// Source id.
    pub source: &'a str,
    /// The connector plugin's name, e.g. `entra`.
    pub vendor: &'a str,
    /// The fetch completed and the mirror was updated.
    pub complete: bool,
    /// Requests made to the identity provider (retries included).
    pub requests: u64,
    /// Of those, answered 429 or 503.
    pub throttled: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    state: String,
    trigger: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VendorLabels {
    vendor: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    target: String,
    change: String,
    handling: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrapLabels {
    plugin: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type StageHistograms = Family<StageLabels, Histogram, fn() -> Histogram>;

fn stage_histogram() -> Histogram {
    Histogram::new(STAGE_BUCKETS)
}

/// Roster's metric families and the registry that encodes them; share one per process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    stage_seconds: StageHistograms,
    writes: Family<KindLabels, Counter>,
    vendor_requests: Family<VendorLabels, Counter>,
    vendor_throttled: Family<VendorLabels, Counter>,
    plugin_traps: Family<TrapLabels, Counter>,
    last_success: Family<SourceLabels, Gauge<f64, AtomicU64>>,
    runs_in_progress: Gauge,
    pushes: Family<SourceLabels, Counter>,
    push_runs: Counter,
    crowd_authentications: Family<OutcomeLabels, Counter>,
    drift: Family<DriftLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry; a labelled family shows in the exposition once it has a series.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("roster");
        let runs = Family::<RunLabels, Counter>::default();
        let stage_seconds = StageHistograms::new_with_constructor(stage_histogram);
        let writes = Family::<KindLabels, Counter>::default();
        let vendor_requests = Family::<VendorLabels, Counter>::default();
        let vendor_throttled = Family::<VendorLabels, Counter>::default();
        let plugin_traps = Family::<TrapLabels, Counter>::default();
        let last_success = Family::<SourceLabels, Gauge<f64, AtomicU64>>::default();
        let runs_in_progress = Gauge::default();
        let pushes = Family::<SourceLabels, Counter>::default();
        let push_runs = Counter::default();
        let crowd_authentications = Family::<OutcomeLabels, Counter>::default();
        let drift = Family::<DriftLabels, Counter>::default();

        // Counter names carry no `_total`: the OpenMetrics encoder appends it.
        registry.register("runs", "Finished sync runs by outcome", runs.clone());
        registry.register_with_unit(
            "stage_duration",
            "Time spent in each stage of a run (fetch, transform, merge, read, plan, guard, apply)",
            Unit::Seconds,
            stage_seconds.clone(),
        );
        registry.register("writes", "Writes made to the target by operation kind", writes.clone());
        registry.register(
            "vendor_requests",
            "Requests made to vendor APIs (identity providers by connector, and bitbucket), retries included",
            vendor_requests.clone(),
        );
        registry.register(
            "vendor_throttled",
            "Vendor API requests answered 429 or 503 (throttled)",
            vendor_throttled.clone(),
        );
        registry.register(
            "plugin_traps",
            "Plugin calls that trapped, by cause (deadline, memory, panic, other)",
            plugin_traps.clone(),
        );
        registry.register_with_unit(
            "source_last_success_timestamp",
            "Unix time of the last run that completed this source's fetch and succeeded or partly succeeded",
            Unit::Seconds,
            last_success.clone(),
        );
        registry.register(
            "runs_in_progress",
            "Sync runs currently running",
            runs_in_progress.clone(),
        );
        registry.register(
            "pushes",
            "Pushes (SCIM writes) received per source, each durable in the mirror before it was answered",
            pushes.clone(),
        );
        registry.register(
            "push_runs_started",
            "Runs started by pushes (debounced: one run carries many pushes)",
            push_runs.clone(),
        );

        registry.register(
            "crowd_authentications",
            "POST /authentication answers of the Crowd endpoint by outcome (accepted, refused, throttled, no_source, user_not_found, inactive, expired, unavailable, bad_request)",
            crowd_authentications.clone(),
        );

        registry.register(
            "drift",
            "Changes made by hand in a target to what Roster manages, by target, change (member-added, member-removed, group-deleted, account-renamed) and handling (reverted, adopted, reported)",
            drift.clone(),
        );

        Metrics {
            drift,
            registry,
            runs,
            stage_seconds,
            writes,
            vendor_requests,
            vendor_throttled,
            plugin_traps,
            last_success,
            runs_in_progress,
            pushes,
            push_runs,
            crowd_authentications,
        }
    }

    /// Counts an answer of the Crowd endpoint's `POST /authentication` by its outcome.
    pub fn observe_crowd_authentication(&self, outcome: &str) {
        self.crowd_authentications
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a push to `source`.
    pub fn observe_push(&self, source: &str) {
        self.pushes
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    /// Counts a run started by pushes.
    pub fn observe_push_run(&self) {
        self.push_runs.inc();
    }

    /// Records a finished run: its outcome, stage times, writes, API use and source freshness.
    pub fn observe_run(&self, run: &RunObservation<'_>) {
        self.runs
            .get_or_create(&RunLabels {
                state: run.state.to_string(),
                trigger: run.trigger.to_string(),
                target: run.target.to_string(),
            })
            .inc();
        for &(stage, ms) in run.stage_ms {
            self.stage_seconds
                .get_or_create(&StageLabels {
                    stage: stage.to_string(),
                })
                .observe(ms as f64 / 1000.0);
        }
        for &(kind, n) in run.writes {
            // Zero still creates the series: rate() over a series that appears late misses its start.
            self.writes
                .get_or_create(&KindLabels { kind: kind.to_string() })
                .inc_by(n);
        }
        self.add_vendor(BITBUCKET_VENDOR, run.target, run.target_calls, run.target_throttled);
        for &(change, handling, n) in run.drift {
            self.drift
                .get_or_create(&DriftLabels {
                    target: run.target.to_string(),
                    change: change.to_string(),
                    handling: handling.to_string(),
                })
                .inc_by(n);
        }
        let succeeded = SUCCESS_STATES.contains(&run.state);
        for s in run.sources {
            self.add_vendor(s.vendor, s.source, s.requests, s.throttled);
            if succeeded && s.complete {
                self.last_success
                    .get_or_create(&SourceLabels {
                        source: s.source.to_string(),
                    })
                    .set(run.finished_at_unix);
            }
        }
    }

    fn add_vendor(&self, vendor: &str, source: &str, requests: u64, throttled: u64) {
        let labels = VendorLabels {
            vendor: vendor.to_string(),
            source: source.to_string(),
        };
        self.vendor_requests.get_or_create(&labels).inc_by(requests);
        self.vendor_throttled.get_or_create(&labels).inc_by(throttled);
    }

    /// Counts a plugin trap; `kind` is deadline, memory, panic or other.
    pub fn observe_plugin_trap(&self, plugin: &str, kind: &str) {
        self.observe_plugin_traps(plugin, kind, 1);
    }

    /// Counts `n` plugin traps of one kind at once.
    pub fn observe_plugin_traps(&self, plugin: &str, kind: &str, n: u64) {
        self.plugin_traps
            .get_or_create(&TrapLabels {
                plugin: plugin.to_string(),
                kind: kind.to_string(),
            })
            .inc_by(n);
    }

    /// Sets how many runs are running now.
    pub fn set_runs_in_progress(&self, n: i64) {
        self.runs_in_progress.set(n);
    }

    /// The OpenMetrics text exposition (ends with `# EOF`); serve it with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, and our label sets are plain strings; an error
        // would at worst truncate one scrape, which is better than taking the server down.
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn metrics_are_send_and_sync() {
        assert_send_sync::<Metrics>();
    }

    /// One parsed sample: metric name, labels (sorted), value.
    type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// Parses `{a="x",b="y\"z"}` (escapes: \\ \" \n) starting at `s`, returns labels and the rest.
    fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
        let mut labels = BTreeMap::new();
        let mut rest = s.strip_prefix('{').expect("labels start with {");
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return (labels, r);
            }
            let eq = rest.find('=').expect("label has =");
            let key = rest[..eq].to_string();
            assert!(valid_name(&key), "bad label name {key:?}");
            let mut chars = rest[eq + 1..]
                .strip_prefix('"')
                .expect("label value is quoted")
                .char_indices();
            let mut value = String::new();
            let end = loop {
                let (i, c) = chars.next().expect("label value is closed");
                match c {
                    '\\' => match chars.next().expect("escape has a character").1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => panic!("bad escape \\{c}"),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            assert!(labels.insert(key, value).is_none(), "duplicate label");
            rest = &rest[eq + 1 + 1 + end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }

    /// A line-based check of the OpenMetrics text format: every family has one HELP and one
    /// TYPE before its samples, every sample belongs to the family declared above it, names and
    /// values are well-formed, no sample repeats, and the exposition ends with `# EOF`.
    fn parse_exposition(text: &str) -> (Samples, HashMap<String, String>) {
        let mut samples = Samples::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helps: HashSet<String> = HashSet::new();
        let mut current: Option<(String, String)> = None;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "exposition must end with # EOF");
        assert!(text.ends_with('\n'));
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (what, name) = (parts.next().unwrap(), parts.next().expect("name"));
                assert!(valid_name(name), "bad family name in {line:?}");
                let arg = parts.next().expect("argument");
                match what {
                    "HELP" => assert!(helps.insert(name.to_string()), "second HELP: {line}"),
                    "TYPE" => {
                        assert!(
                            [
                                "counter",
                                "gauge",
                                "histogram",
                                "summary",
                                "info",
                                "stateset",
                                "unknown",
                                "gaugehistogram"
                            ]
                            .contains(&arg),
                            "bad type: {line}"
                        );
                        assert!(helps.contains(name), "TYPE before HELP: {line}");
                        assert!(
                            types.insert(name.to_string(), arg.to_string()).is_none(),
                            "second TYPE: {line}"
                        );
                        current = Some((name.to_string(), arg.to_string()));
                    }
                    "UNIT" => assert!(name.ends_with(&format!("_{arg}")), "unit not in name: {line}"),
                    _ => panic!("unknown comment line {line:?}"),
                }
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "stray line {line:?}");
            let name_end = line.find(['{', ' ']).expect("sample has a value");
            let name = &line[..name_end];
            assert!(valid_name(name), "bad sample name {line:?}");
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..])
            } else {
                (BTreeMap::new(), &line[name_end..])
            };
            let value = rest.strip_prefix(' ').expect("space before value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (family, kind) = current.as_ref().expect("sample before any TYPE");
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            assert!(
                suffixes.iter().any(|s| name.strip_suffix(s) == Some(family.as_str())),
                "sample {name} outside its family {family}"
            );
            assert!(
                samples.insert((name.to_string(), labels), value).is_none(),
                "duplicate sample {line:?}"
            );
        }
        (samples, types)
    }

    fn get(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        *samples
            .get(&(name.to_string(), labels.clone()))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    fn has(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> bool {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        samples.contains_key(&(name.to_string(), labels))
    }

    #[test]
    fn empty_registry_is_valid() {
        let (samples, types) = parse_exposition(&Metrics::new().encode());
        // The encoder leaves out labelled families that have no series yet.
        assert_eq!(types.len(), 2);
        assert_eq!(get(&samples, "roster_runs_in_progress", &[]), 0.0);
        assert_eq!(get(&samples, "roster_push_runs_started_total", &[]), 0.0);
    }

    #[test]
    fn two_runs_and_a_trap() {
        let m = Metrics::new();
        let first = RunObservation {
            state: "succeeded",
            trigger: "schedule",
            target: "bb",
            stage_ms: &[("fetch", 1500), ("plan", 40), ("apply", 7)],
            writes: &[("create-user", 200), ("add-members", 12)],
            target_calls: 230,
            target_throttled: 2,
            drift: &[("member-added", "reverted", 2)],
            sources: &[
                SourceObservation {
                    source: "hr",
                    vendor: "file",
                    complete: true,
                    requests: 0,
                    throttled: 0,
                },
                SourceObservation {
                    source: "entra",
                    vendor: "entra",
                    complete: true,
                    requests: 41,
                    throttled: 3,
                },
            ],
            finished_at_unix: 1_700_000_000.5,
        };
        let second = RunObservation {
            state: "failed",
            trigger: "api",
            target: "bb",
            stage_ms: &[("fetch", 3_000_000)],
            writes: &[("create-user", 1), ("deactivate-user", 0)],
            target_calls: 10,
            target_throttled: 0,
            drift: &[("member-added", "reverted", 1), ("group-deleted", "reported", 1)],
            sources: &[
                SourceObservation {
                    source: "hr",
                    vendor: "file",
                    complete: true,
                    requests: 0,
                    throttled: 0,
                },
                SourceObservation {
                    source: "entra",
                    vendor: "entra",
                    complete: false,
                    requests: 5,
                    throttled: 5,
                },
            ],
            finished_at_unix: 1_700_003_600.0,
        };
        m.observe_run(&first);
        m.observe_run(&second);
        m.observe_plugin_trap("entra", "deadline");
        m.set_runs_in_progress(1);
        m.observe_push("entra");
        m.observe_push("entra");
        m.observe_push_run();
        let text = m.encode();
        let (s, types) = parse_exposition(&text);
        let expected = [
            ("roster_runs", "counter"),
            ("roster_stage_duration_seconds", "histogram"),
            ("roster_writes", "counter"),
            ("roster_vendor_requests", "counter"),
            ("roster_vendor_throttled", "counter"),
            ("roster_plugin_traps", "counter"),
            ("roster_source_last_success_timestamp_seconds", "gauge"),
            ("roster_runs_in_progress", "gauge"),
            ("roster_pushes", "counter"),
            ("roster_push_runs_started", "counter"),
            ("roster_drift", "counter"),
        ];
        let expected: HashMap<String, String> = expected.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(types, expected);

        assert_eq!(get(&s, "roster_pushes_total", &[("source", "entra")]), 2.0);
        assert_eq!(get(&s, "roster_push_runs_started_total", &[]), 1.0);

        let runs = "roster_runs_total";
        assert_eq!(
            get(
                &s,
                runs,
                &[("state", "succeeded"), ("trigger", "schedule"), ("target", "bb")]
            ),
            1.0
        );
        assert_eq!(
            get(&s, runs, &[("state", "failed"), ("trigger", "api"), ("target", "bb")]),
            1.0
        );

        let bucket = "roster_stage_duration_seconds_bucket";
        assert_eq!(get(&s, bucket, &[("stage", "fetch"), ("le", "1.0")]), 0.0);
        assert_eq!(get(&s, bucket, &[("stage", "fetch"), ("le", "2.5")]), 1.0);
        assert_eq!(get(&s, bucket, &[("stage", "fetch"), ("le", "3600.0")]), 2.0);
        assert_eq!(get(&s, bucket, &[("stage", "fetch"), ("le", "+Inf")]), 2.0);
        assert_eq!(get(&s, bucket, &[("stage", "plan"), ("le", "0.01")]), 0.0);
        assert_eq!(get(&s, bucket, &[("stage", "plan"), ("le", "0.05")]), 1.0);
        assert_eq!(get(&s, bucket, &[("stage", "apply"), ("le", "0.01")]), 1.0);
        assert_eq!(
            get(&s, "roster_stage_duration_seconds_count", &[("stage", "fetch")]),
            2.0
        );
        assert!((get(&s, "roster_stage_duration_seconds_sum", &[("stage", "fetch")]) - 3001.5).abs() < 1e-9);

        assert_eq!(get(&s, "roster_writes_total", &[("kind", "create-user")]), 201.0);
        assert_eq!(get(&s, "roster_writes_total", &[("kind", "add-members")]), 12.0);
        let drift = "roster_drift_total";
        let labels = |change, handling| [("target", "bb"), ("change", change), ("handling", handling)];
        assert_eq!(get(&s, drift, &labels("member-added", "reverted")), 3.0);
        assert_eq!(get(&s, drift, &labels("group-deleted", "reported")), 1.0);
        assert_eq!(get(&s, "roster_writes_total", &[("kind", "deactivate-user")]), 0.0);

        let req = "roster_vendor_requests_total";
        let thr = "roster_vendor_throttled_total";
        assert_eq!(get(&s, req, &[("vendor", "bitbucket"), ("source", "bb")]), 240.0);
        assert_eq!(get(&s, thr, &[("vendor", "bitbucket"), ("source", "bb")]), 2.0);
        assert_eq!(get(&s, req, &[("vendor", "entra"), ("source", "entra")]), 46.0);
        assert_eq!(get(&s, thr, &[("vendor", "entra"), ("source", "entra")]), 8.0);
        assert_eq!(get(&s, req, &[("vendor", "file"), ("source", "hr")]), 0.0);

        assert_eq!(
            get(
                &s,
                "roster_plugin_traps_total",
                &[("plugin", "entra"), ("kind", "deadline")]
            ),
            1.0
        );

        // hr completed in both runs but only the first succeeded; entra's second fetch failed.
        let last = "roster_source_last_success_timestamp_seconds";
        assert_eq!(get(&s, last, &[("source", "hr")]), 1_700_000_000.5);
        assert_eq!(get(&s, last, &[("source", "entra")]), 1_700_000_000.5);
        assert_eq!(get(&s, "roster_runs_in_progress", &[]), 1.0);

        // A later partial run moves hr forward but not entra, whose fetch did not complete.
        m.observe_run(&RunObservation {
            state: "partial",
            sources: &[
                SourceObservation {
                    source: "hr",
                    vendor: "file",
                    complete: true,
                    requests: 0,
                    throttled: 0,
                },
                SourceObservation {
                    source: "entra",
                    vendor: "entra",
                    complete: false,
                    requests: 1,
                    throttled: 0,
                },
            ],
            finished_at_unix: 1_700_007_200.0,
            ..second
        });
        let (s, _) = parse_exposition(&m.encode());
        assert_eq!(get(&s, last, &[("source", "hr")]), 1_700_007_200.0);
        assert_eq!(get(&s, last, &[("source", "entra")]), 1_700_000_000.5);
        // Held, refused, planned: never a success, even with every fetch complete.
        for state in ["held", "refused", "planned", "cancelled"] {
            let m = Metrics::new();
            m.observe_run(&RunObservation { state, ..first });
            let (s, _) = parse_exposition(&m.encode());
            assert!(
                !has(&s, last, &[("source", "hr")]),
                "{state} set the last-success gauge"
            );
        }
    }

    #[test]
    fn crowd_authentications_are_counted_by_outcome() {
        let m = Metrics::new();
        m.observe_crowd_authentication("accepted");
        m.observe_crowd_authentication("refused");
        m.observe_crowd_authentication("refused");
        let (s, _) = parse_exposition(&m.encode());
        let name = "roster_crowd_authentications_total";
        assert_eq!(get(&s, name, &[("outcome", "accepted")]), 1.0);
        assert_eq!(get(&s, name, &[("outcome", "refused")]), 2.0);
        assert!(!has(&s, name, &[("outcome", "throttled")]));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.observe_plugin_trap("we\"ird\\plug\nin", "other");
        let (s, _) = parse_exposition(&m.encode());
        assert_eq!(
            get(
                &s,
                "roster_plugin_traps_total",
                &[("plugin", "we\"ird\\plug\nin"), ("kind", "other")]
            ),
            1.0
        );
    }
}
