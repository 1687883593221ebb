//! Schedule expressions: when a source's sync runs.
//!
//! A source is synced either on an interval or on a cron expression.
//!
//! * **Interval**: every N minutes, 1 to 10080 (one week), default 60 as in Atlassian's user
//!   directories. Fire times are counted from a fixed anchor, the Unix epoch, so they do not
//!   drift with restarts: every 60 minutes fires on the hour, every 15 minutes at :00, :15, :30
//!   and :45, every 7 minutes at multiples of 7 minutes since 1970-01-01 00:00 UTC.
//! * **Cron**, in the dialect an administrator brings, told apart by the number of fields:
//!   * 5 fields, Unix cron: `minute hour day-of-month month day-of-week`. Days of week are 0 to
//!     7 with both 0 and 7 Sunday, or `SUN`..`SAT`. When both day-of-month and day-of-week are
//!     restricted (neither is `*`), a day matching either one fires (the POSIX rule), so
//!     `0 12 1 * 1` fires on the 1st and on every Monday. `*/2` counts as restricted (as POSIX
//!     reads it; Vixie cron treats a field starting with `*` as unrestricted). `L`, `W`, `#` and
//!     `?` are Quartz syntax and are refused here. `@yearly`, `@annually`, `@monthly`,
//!     `@weekly`, `@daily`, `@midnight` and `@hourly` are accepted as their 5-field forms.
//!   * 6 fields, Quartz as Atlassian products write it: `second minute hour day-of-month month
//!     day-of-week`, days of week 1 (`SUN`) to 7 (`SAT`).
//!   * 7 fields, Quartz with a year (1970 to 2199) last.
//!
//!   In Quartz, one of day-of-month and day-of-week is `?` (no restriction). Many
//!   administrators write `*` in both, which is accepted, and `*` in day-of-week with a
//!   restricted day-of-month means the same in every dialect, so that is accepted too. A
//!   restricted day-of-week beside a `*` day-of-month is refused: it is how 6-field croner or
//!   Spring expressions are written, whose days of week count from 0 = Sunday, and the same
//!   text would silently mean a different day in Quartz.
//!
//!   Quartz specials: `L` in day-of-month (last day), `L-n` (n days before the last day, as
//!   Quartz computes it: `L-2` is the 29th of a 31-day month), `LW` (last weekday, Monday to
//!   Friday, of the month), `15W` (the weekday nearest the 15th, never crossing into another
//!   month; a day past the month's end, such as `31W` in April, does not fire that month);
//!   in day-of-week `6L` (last Friday of the month), `L` alone (Saturday, as in Quartz) and
//!   `2#1` (first Monday; `#` takes 1 to 5). Names may carry them (`FRIL`, `MON#1`). Lists may
//!   mix them (`1,15,L`). Ranges may wrap in Quartz (`FRI-MON`, hours `22-2`).
//!
//! All times are UTC. Quartz evaluates in the server's zone by default; Roster does not, so a
//! schedule means the same instant on every machine and no run is skipped or doubled at a
//! daylight-saving change.
//!
//! An expression that never fires is refused: the search runs from now to the end of 2199
//! (the last year the year field takes), or at least five years ahead.
//!
//! Evaluation: Roster parses and validates every expression itself (for its own error
//! messages and dialects) and translates it to a croner pattern in croner's own numbering
//! (0 = Sunday, seconds and year fields always present). croner cannot express `LW` or `L-n`,
//! so for those the day-of-month is widened to the few days they can land on and every
//! candidate croner returns is checked against Roster's own day rule.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// When a source is synced by `roster serve`, as configuration writes it: every
/// `every_minutes` minutes (60 unless a cron expression is given, as Atlassian's directories),
/// or on a cron expression (Quartz, as Atlassian administrators write them, or Unix 5-field;
/// UTC).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Scheduled runs at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Interval in minutes.
    pub every_minutes: Option<u32>,
    /// Or a cron expression.
    pub cron: Option<String>,
    /// Scheduled runs use the source's delta token when it has one.
    #[serde(default = "yes")]
    pub incremental: bool,
    /// With `incremental`, a full fetch at least this often (hours) all the same.
    #[serde(default = "default_full_every")]
    pub full_every_hours: f64,
}

fn yes() -> bool {
    true
}

fn default_full_every() -> f64 {
    24.0
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            every_minutes: None,
            cron: None,
            incremental: true,
            full_every_hours: default_full_every(),
        }
    }
}

impl ScheduleConfig {
    /// The schedule, validated; without `cron` or `every_minutes`, every
    /// [`DEFAULT_INTERVAL_MINUTES`].
    pub fn schedule(&self) -> Result<Schedule, String> {
        self.schedule_or_every(DEFAULT_INTERVAL_MINUTES)
    }

    /// The schedule, validated; without `cron` or `every_minutes`, every `default_minutes`
    /// (a source's own interval, such as the `sync_interval_minutes` of its settings).
    pub fn schedule_or_every(&self, default_minutes: u32) -> Result<Schedule, String> {
        // TOML writes `nan` and `inf`: either would make the scheduler's "a full fetch at least
        // this often" comparison never hold, so incremental syncs would go on forever.
        let hours = self.full_every_hours;
        if !(hours.is_finite() && hours >= 0.0) {
            return Err(format!(
                "full_every_hours {hours}: give a number of hours, 0 or more (e.g. 24 for a full fetch at least daily)"
            ));
        }
        match (&self.cron, self.every_minutes) {
            (Some(_), Some(_)) => Err("give `every_minutes` or `cron`, not both".into()),
            (Some(c), None) => Schedule::cron(c).map_err(|e| format!("cron `{c}`: {e}")),
            (None, m) => Schedule::every(m.unwrap_or(default_minutes)).map_err(|e| e.to_string()),
        }
    }
}

/// The default sync interval in minutes, as Atlassian's user directories use.
pub const DEFAULT_INTERVAL_MINUTES: u32 = 60;
/// The longest interval accepted: one week, in minutes.
pub const MAX_INTERVAL_MINUTES: u32 = 10_080;

/// The first year the Quartz year field takes.
const YEAR_MIN: u32 = 1970;
/// The last year the Quartz year field takes, and the end of the never-fires search.
const YEAR_MAX: u32 = 2199;
/// The never-fires search looks at least this many years ahead.
const MIN_SEARCH_YEARS: i32 = 5;
/// Bounds the loop that skips croner candidates failing Roster's day rule. A candidate is
/// refused only for `LW` and `L-n`, a handful a month, so reaching this means something is
/// wrong and giving up beats spinning.
const MAX_REJECTED_CANDIDATES: usize = 10_000;

/// A validated schedule: when a source's sync runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Every { minutes: u32 },
    Cron(Box<CronSchedule>),
}

#[derive(Debug, Clone, PartialEq)]
struct CronSchedule {
    dialect: Dialect,
    spec: Spec,
    engine: Cron,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Unix,
    Quartz,
}

/// The meaning of a cron expression, independent of the dialect it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    seconds: Vec<u32>,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    months: Vec<u32>,
    /// `None`: every year.
    years: Option<Vec<u32>>,
    /// `None`: unrestricted (`*` or `?`).
    dom: Option<Vec<DomItem>>,
    /// `None`: unrestricted (`*` or `?`).
    dow: Option<Vec<DowItem>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DomItem {
    Day(u32),
    Last,
    /// `L-n`: n days before the last day.
    LastMinus(u32),
    LastWeekday,
    NearestWeekday(u32),
}

/// Days of week count from 0 = Sunday here, whatever the dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DowItem {
    Day(u32),
    /// `6L`: the last such weekday of the month.
    Last(u32),
    /// `2#1`: the nth such weekday of the month.
    Nth(u32, u32),
}

/// A field of a cron expression, for naming it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    /// Quartz's first field.
    Second,
    /// Minutes of the hour.
    Minute,
    /// Hours of the day.
    Hour,
    /// Days of the month.
    DayOfMonth,
    /// Months of the year.
    Month,
    /// Days of the week.
    DayOfWeek,
    /// Quartz's optional seventh field.
    Year,
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        })
    }
}

/// Why a schedule was refused; the message says what is wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Nothing was written.
    #[error(
        "empty schedule: write an interval such as `every 60m`, or a cron expression such as `0 0 2 * * ?` (Quartz) or `0 2 * * *` (Unix)"
    )]
    Empty,
    /// The expression has a number of fields no dialect has.
    #[error(
        "{found} field(s) in `{expr}`: write 5 fields for Unix cron (minute hour day-of-month month day-of-week), 6 for Quartz (second minute hour day-of-month month day-of-week) or 7 for Quartz with a year"
    )]
    FieldCount {
        /// The expression as written.
        expr: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// One field is malformed or out of range.
    #[error("{field} field `{value}`: {problem}")]
    Field {
        /// Which field.
        field: CronField,
        /// The offending part, as written.
        value: String,
        /// What is wrong and how to write it.
        problem: String,
    },
    /// Quartz: both day-of-month and day-of-week are `?`.
    #[error(
        "day-of-month and day-of-week are both `?`: in Quartz exactly one of them is `?`, e.g. `0 0 12 * * ?` for every day or `0 0 12 ? * MON` for Mondays"
    )]
    BothDaysUnspecified,
    /// Quartz: a restricted day-of-week beside a day-of-month that is not `?`.
    #[error(
        "day-of-month `{dom}` with day-of-week `{dow}`: in Quartz one of them must be `?`, e.g. `0 0 12 ? * MON` (days of week 1 = SUN to 7 = SAT) or `0 0 12 15 * ?`; 6- and 7-field expressions are Quartz, for Unix cron write 5 fields without seconds"
    )]
    DayFieldsConflict {
        /// The day-of-month field as written.
        dom: String,
        /// The day-of-week field as written.
        dow: String,
    },
    /// The expression is valid but has no fire time ahead.
    #[error(
        "`{expr}` never fires: no date from now to the end of {searched_to} matches its day, month and year fields (check days past a month's end such as 30 February or 31 April, and years in the past)"
    )]
    NeverFires {
        /// The expression as written.
        expr: String,
        /// The last year searched.
        searched_to: i32,
    },
    /// croner refused Roster's translation of a valid expression: a Roster bug to report.
    #[error(
        "`{expr}` is valid but the scheduler engine (croner) refused Roster's translation of it ({reason}); please report this, and meanwhile write the schedule another way"
    )]
    Engine {
        /// The expression as written.
        expr: String,
        /// croner's message.
        reason: String,
    },
    /// An interval outside 1 minute to one week.
    #[error(
        "interval of {minutes} minutes: intervals run from 1 to 10080 minutes (one week); for a time of day or a longer gap write a cron expression such as `0 0 2 ? * SUN`"
    )]
    IntervalRange {
        /// The interval asked for, in minutes.
        minutes: u64,
    },
    /// An interval that could not be read.
    #[error(
        "`{text}` is not an interval: write `every 60m`, `every 2h`, `every 1d`, `60m` or `60` (minutes), or a cron expression"
    )]
    IntervalSyntax {
        /// The text as written.
        text: String,
    },
}

impl Schedule {
    /// An interval: every `minutes` minutes (1 ..= 10080), counted from a fixed anchor, the Unix epoch, so fire times are stable across restarts.
    pub fn every(minutes: u32) -> Result<Schedule, CronError> {
        if minutes == 0 || minutes > MAX_INTERVAL_MINUTES {
            return Err(CronError::IntervalRange {
                minutes: u64::from(minutes),
            });
        }
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        Ok(Schedule {
            text: format!("every {minutes} {unit}"),
            kind: Kind::Every { minutes },
        })
    }

    /// A cron expression: 5 fields (Unix: minute hour day-of-month month day-of-week, 0 or 7 = Sunday), 6 fields (Quartz: second minute hour day-of-month month day-of-week, 1 = Sunday), or 7 (Quartz with year). Detected by field count. Refused when it never fires (search at least 5 years ahead, e.g. `0 0 0 30 2 ?`, or a year in the past).
    pub fn cron(expr: &str) -> Result<Schedule, CronError> {
        Self::cron_at(expr, Utc::now())
    }

    /// [`Schedule::cron`] with "now" given, so whether it ever fires is decided against `now`.
    fn cron_at(expr: &str, now: DateTime<Utc>) -> Result<Schedule, CronError> {
        let text = expr.trim();
        if text.is_empty() {
            return Err(CronError::Empty);
        }
        let expanded = expand_nickname(text);
        let (dialect, spec) = parse_spec(expanded.unwrap_or(text), text)?;
        let searched_to = (YEAR_MAX as i32).max(now.year().saturating_add(MIN_SEARCH_YEARS));
        let never = || CronError::NeverFires {
            expr: text.to_string(),
            searched_to,
        };
        if !spec.fires_after(now, searched_to) {
            return Err(never());
        }
        let engine = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Required)
            .build()
            .parse(&spec.croner_pattern())
            // Roster's own parser has already checked every field, so a refusal here is a
            // gap between Roster and croner, not the administrator's mistake.
            .map_err(|e| CronError::Engine {
                expr: text.to_string(),
                reason: e.to_string(),
            })?;
        let schedule = Schedule {
            text: text.to_string(),
            kind: Kind::Cron(Box::new(CronSchedule { dialect, spec, engine })),
        };
        // The date scan above and croner's search should agree; this guards against them
        // not agreeing by refusing rather than handing the scheduler a schedule that idles.
        if schedule.next_after(now).is_none() {
            return Err(never());
        }
        Ok(schedule)
    }

    /// The first fire time strictly after `t` (UTC), `None` if there is none.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every { minutes } => {
                let period = i64::from(*minutes) * 60;
                let k = t.timestamp().div_euclid(period).checked_add(1)?;
                DateTime::from_timestamp(k.checked_mul(period)?, 0)
            }
            Kind::Cron(c) => c.next_after(t),
        }
    }

    /// The next `n` fire times after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        // `n` comes from callers, not from the schedule; do not let it size an allocation.
        let mut out = Vec::with_capacity(n.min(64));
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The latest fire time at or before `t` after `since`, if any (a run missed while Roster was down: the scheduler runs it once at start).
    pub fn missed_between(&self, since: DateTime<Utc>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if t <= since {
            return None;
        }
        let latest = match &self.kind {
            Kind::Every { minutes } => {
                let period = i64::from(*minutes) * 60;
                let k = t.timestamp().div_euclid(period);
                DateTime::from_timestamp(k.checked_mul(period)?, 0)?
            }
            Kind::Cron(c) => c.latest_at_or_before(t, since)?,
        };
        (latest > since).then_some(latest)
    }

    /// How an administrator wrote it, and what it means in words (e.g. "every 60 minutes", "Quartz `0 0 12 LW * ?`: at 12:00:00 on the last weekday of every month").
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Every { .. } => self.text.clone(),
            Kind::Cron(c) => {
                let dialect = match c.dialect {
                    Dialect::Unix => "Unix cron",
                    Dialect::Quartz => "Quartz",
                };
                format!("{dialect} `{}`: {} (UTC)", self.text, c.spec.describe(c.dialect))
            }
        }
    }

    /// The expression as given (or `every N minutes`).
    pub fn source_text(&self) -> &str {
        &self.text
    }
}

impl Default for Schedule {
    /// Every 60 minutes, as Atlassian's directories.
    fn default() -> Self {
        Schedule {
            text: format!("every {DEFAULT_INTERVAL_MINUTES} minutes"),
            kind: Kind::Every {
                minutes: DEFAULT_INTERVAL_MINUTES,
            },
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Reads a schedule as written in configuration.
///
/// * An interval: `every 60m`, `every 60 minutes`, `every 2h`, `every 1d`, `60m` or a bare
///   `60` (minutes, as Atlassian's directory setting). Units: `m`/`min`/`mins`/`minute`/
///   `minutes`, `h`/`hr`/`hrs`/`hour`/`hours`, `d`/`day`/`days`; case does not matter.
/// * Anything else is a cron expression (see [`Schedule::cron`]), including `@daily` and the
///   other `@` names.
impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Err(CronError::Empty);
        }
        let lower = text.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("every") {
            return parse_interval(rest.trim(), text);
        }
        // A cron expression has at least 5 fields, so one or two tokens led by a digit
        // (`60`, `60m`, `60 m`) can only be an interval.
        let short = text.split_whitespace().count() <= 2;
        if short && text.starts_with(|c: char| c.is_ascii_digit()) {
            return parse_interval(&lower, text);
        }
        Schedule::cron(text)
    }
}

fn parse_interval(body: &str, original: &str) -> Result<Schedule, CronError> {
    let syntax = || CronError::IntervalSyntax {
        text: original.to_string(),
    };
    let digits_end = body.find(|c: char| !c.is_ascii_digit()).unwrap_or(body.len());
    let (digits, unit) = body.split_at(digits_end);
    if digits.is_empty() {
        return Err(syntax());
    }
    let scale: u64 = match unit.trim() {
        "" | "m" | "min" | "mins" | "minute" | "minutes" => 1,
        "h" | "hr" | "hrs" | "hour" | "hours" => 60,
        "d" | "day" | "days" => 1440,
        _ => return Err(syntax()),
    };
    let minutes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .unwrap_or(u64::MAX);
    match u32::try_from(minutes) {
        Ok(m) if (1..=MAX_INTERVAL_MINUTES).contains(&m) => Schedule::every(m),
        _ => Err(CronError::IntervalRange { minutes }),
    }
}

impl CronSchedule {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // croner keeps the sub-second part of its start through the search and would return
        // fire times like 12:15:00.5; fire times are whole seconds, so start from one.
        let mut from = floor_to_second(t);
        let mut inclusive = false;
        for _ in 0..MAX_REJECTED_CANDIDATES {
            let candidate = self.engine.find_next_occurrence(&from, inclusive).ok()?;
            if self.spec.matches(&candidate) {
                return Some(candidate);
            }
            inclusive = true;
            from = if self.spec.day_matches(candidate.date_naive()) {
                candidate.checked_add_signed(Duration::seconds(1))?
            } else {
                // The whole day is out; skip the rest of its candidates at once.
                candidate.date_naive().succ_opt()?.and_time(NaiveTime::MIN).and_utc()
            };
        }
        None
    }

    fn latest_at_or_before(&self, t: DateTime<Utc>, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = floor_to_second(t);
        for _ in 0..MAX_REJECTED_CANDIDATES {
            if from <= since {
                return None;
            }
            let candidate = self.engine.find_previous_occurrence(&from, true).ok()?;
            if candidate <= since {
                return None;
            }
            if self.spec.matches(&candidate) {
                return Some(candidate);
            }
            from = if self.spec.day_matches(candidate.date_naive()) {
                candidate.checked_sub_signed(Duration::seconds(1))?
            } else {
                candidate
                    .date_naive()
                    .and_time(NaiveTime::MIN)
                    .and_utc()
                    .checked_sub_signed(Duration::seconds(1))?
            };
        }
        None
    }
}

fn floor_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

fn expand_nickname(text: &str) -> Option<&'static str> {
    Some(match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses `expr`; `shown` is what the administrator wrote (differs for `@` names).
fn parse_spec(expr: &str, shown: &str) -> Result<(Dialect, Spec), CronError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (dialect, f) = match fields.len() {
        5 => (
            Dialect::Unix,
            [
                None,
                Some(fields[0]),
                Some(fields[1]),
                Some(fields[2]),
                Some(fields[3]),
                Some(fields[4]),
                None,
            ],
        ),
        6 | 7 => (
            Dialect::Quartz,
            [
                Some(fields[0]),
                Some(fields[1]),
                Some(fields[2]),
                Some(fields[3]),
                Some(fields[4]),
                Some(fields[5]),
                fields.get(6).copied(),
            ],
        ),
        found => {
            return Err(CronError::FieldCount {
                expr: shown.to_string(),
                found,
            });
        }
    };
    let quartz = dialect == Dialect::Quartz;

    let seconds = match f[0] {
        Some(s) => parse_numeric(CronField::Second, s, dialect)?,
        None => vec![0],
    };
    let minutes = parse_numeric(CronField::Minute, f[1].unwrap_or("*"), dialect)?;
    let hours = parse_numeric(CronField::Hour, f[2].unwrap_or("*"), dialect)?;
    let dom_text = f[3].unwrap_or("*");
    let months = parse_numeric(CronField::Month, f[4].unwrap_or("*"), dialect)?;
    let dow_text = f[5].unwrap_or("*");
    let years = match f[6] {
        Some("*") | None => None,
        Some(y) => Some(parse_numeric(CronField::Year, y, dialect)?),
    };

    let dom_q = dom_text == "?";
    let dow_q = dow_text == "?";
    if !quartz {
        for (field, text) in [(CronField::DayOfMonth, dom_text), (CronField::DayOfWeek, dow_text)] {
            if text.contains('?') {
                return Err(quartz_only(field, text));
            }
        }
    }
    let dom = if dom_q || dom_text == "*" {
        None
    } else {
        Some(parse_dom(dom_text, dialect)?)
    };
    let dow = if dow_q || dow_text == "*" {
        None
    } else {
        Some(parse_dow(dow_text, dialect)?)
    };
    if quartz {
        if dom_q && dow_q {
            return Err(CronError::BothDaysUnspecified);
        }
        // A restricted day-of-week beside anything but `?` is refused, for the reason in the
        // module documentation (0- vs 1-based weekdays in 6-field expressions).
        if dow.is_some() && !dom_q {
            return Err(CronError::DayFieldsConflict {
                dom: dom_text.to_string(),
                dow: dow_text.to_string(),
            });
        }
    }

    Ok((
        dialect,
        Spec {
            seconds,
            minutes,
            hours,
            months,
            years,
            dom,
            dow,
        },
    ))
}

/// The range a field takes as written, and names it accepts.
struct Domain {
    min: u32,
    max: u32,
    /// Whether a range may run past the maximum and wrap around (`22-2`, `FRI-MON`).
    wraps: bool,
}

fn domain(field: CronField, dialect: Dialect) -> Domain {
    let quartz = dialect == Dialect::Quartz;
    let (min, max) = match field {
        CronField::Second | CronField::Minute => (0, 59),
        CronField::Hour => (0, 23),
        CronField::DayOfMonth => (1, 31),
        CronField::Month => (1, 12),
        CronField::DayOfWeek if quartz => (1, 7),
        CronField::DayOfWeek => (0, 7),
        CronField::Year => (YEAR_MIN, YEAR_MAX),
    };
    Domain {
        min,
        max,
        // Quartz wraps ranges; Unix cron does not, and a reversed range there is a mistake.
        wraps: quartz && field != CronField::Year,
    }
}

fn range_text(field: CronField, dialect: Dialect) -> &'static str {
    match (field, dialect) {
        (CronField::Second, _) => "seconds are 0 to 59",
        (CronField::Minute, _) => "minutes are 0 to 59",
        (CronField::Hour, _) => "hours are 0 to 23",
        (CronField::DayOfMonth, _) => "days of the month are 1 to 31",
        (CronField::Month, _) => "months are 1 to 12 or JAN to DEC",
        (CronField::DayOfWeek, Dialect::Quartz) => "Quartz days of week are 1 (SUN) to 7 (SAT), or SUN to SAT",
        (CronField::DayOfWeek, Dialect::Unix) => {
            "Unix cron days of week are 0 (SUN) to 6 (SAT), 7 also SUN, or SUN to SAT"
        }
        (CronField::Year, _) => "years are 1970 to 2199",
    }
}

fn field_error(field: CronField, value: &str, problem: impl Into<String>) -> CronError {
    CronError::Field {
        field,
        value: value.to_string(),
        problem: problem.into(),
    }
}

fn quartz_only(field: CronField, value: &str) -> CronError {
    field_error(
        field,
        value,
        "`L`, `W`, `#` and `?` are Quartz syntax: write a 6-field Quartz expression (seconds first, days of week 1 = SUN to 7 = SAT) to use them",
    )
}

/// A value as written: a number or, where the field has them, a name.
fn parse_value(field: CronField, dialect: Dialect, s: &str, item: &str, range_end: bool) -> Result<u32, CronError> {
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let d = domain(field, dialect);
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u32>() {
            Ok(v) if (d.min..=d.max).contains(&v) => Ok(v),
            _ => Err(field_error(field, item, range_text(field, dialect))),
        };
    }
    let upper = s.to_ascii_uppercase();
    match field {
        CronField::Month => {
            if let Some(i) = MONTHS.iter().position(|m| *m == upper) {
                return Ok(i as u32 + 1);
            }
        }
        CronField::DayOfWeek => {
            if let Some(i) = DAYS.iter().position(|m| *m == upper) {
                let i = i as u32;
                return Ok(match dialect {
                    Dialect::Quartz => i + 1,
                    // `FRI-SUN` has to end on 7, not run backwards to 0.
                    Dialect::Unix if i == 0 && range_end => 7,
                    Dialect::Unix => i,
                });
            }
        }
        _ => {}
    }
    let problem = if s.is_empty() {
        format!("a value is missing; {}", range_text(field, dialect))
    } else if matches!(field, CronField::Month | CronField::DayOfWeek) {
        format!("`{s}` is not a number or name; {}", range_text(field, dialect))
    } else if s.contains(['L', 'W', '#', 'l', 'w', '?']) {
        "`L`, `W`, `#` and `?` are only allowed in the day-of-month and day-of-week fields of a Quartz expression"
            .to_string()
    } else {
        format!("`{s}` is not a number; {}", range_text(field, dialect))
    };
    Err(field_error(field, item, problem))
}

/// One list item of plain syntax: `*`, `a`, `a-b`, with an optional `/step`.
fn parse_plain_item(field: CronField, dialect: Dialect, item: &str) -> Result<Vec<u32>, CronError> {
    let d = domain(field, dialect);
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => {
            let step = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u32>().ok()
            } else {
                None
            };
            let span = d.max - d.min + 1;
            match step {
                Some(n) if (1..=span).contains(&n) => (r, Some(n)),
                _ => {
                    return Err(field_error(
                        field,
                        item,
                        format!("the step after `/` is a number from 1 to {span}, e.g. `*/5` or `0/15`"),
                    ));
                }
            }
        }
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        (d.min, d.max)
    } else if let Some((a, b)) = range.split_once('-') {
        let a = parse_value(field, dialect, a, item, false)?;
        let b = parse_value(field, dialect, b, item, true)?;
        if a > b && !d.wraps {
            return Err(field_error(
                field,
                item,
                format!(
                    "the range runs backwards; write the smaller value first ({})",
                    range_text(field, dialect)
                ),
            ));
        }
        (a, b)
    } else {
        let a = parse_value(field, dialect, range, item, false)?;
        // `a/n` runs from a to the end of the field, as in Quartz and Vixie cron.
        (a, if step.is_some() { d.max } else { a })
    };
    let step = step.unwrap_or(1);
    let mut out = Vec::new();
    // Walk positions over the field's cycle so a wrapping range steps across the wrap.
    let span = d.max - d.min + 1;
    let len = if end >= start { end - start } else { end + span - start };
    let mut offset = 0;
    while offset <= len {
        let mut v = start + offset;
        if v > d.max {
            v -= span;
        }
        out.push(v);
        offset += step;
    }
    Ok(out)
}

fn split_items(field: CronField, text: &str) -> Result<Vec<&str>, CronError> {
    let items: Vec<&str> = text.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(field_error(
            field,
            text,
            "a list has an empty entry; separate values with single commas, e.g. `1,15,30`",
        ));
    }
    Ok(items)
}

/// Seconds, minutes, hours, months, years: plain syntax only.
fn parse_numeric(field: CronField, text: &str, dialect: Dialect) -> Result<Vec<u32>, CronError> {
    if text == "?" {
        return Err(field_error(
            field,
            text,
            "`?` is only allowed in the day-of-month or day-of-week field; write `*` for every value",
        ));
    }
    let mut out = Vec::new();
    for item in split_items(field, text)? {
        out.extend(parse_plain_item(field, dialect, item)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_dom(text: &str, dialect: Dialect) -> Result<Vec<DomItem>, CronError> {
    let field = CronField::DayOfMonth;
    let mut out = Vec::new();
    for item in split_items(field, text)? {
        let upper = item.to_ascii_uppercase();
        let special = upper.contains(['L', 'W', '#', '?']);
        if special && dialect == Dialect::Unix {
            return Err(quartz_only(field, item));
        }
        if upper == "?" || upper.contains('?') {
            return Err(field_error(
                field,
                item,
                "`?` stands alone for the whole field, e.g. `0 0 12 ? * MON`",
            ));
        }
        if upper.contains('#') {
            return Err(field_error(
                field,
                item,
                "`#` belongs in the day-of-week field, e.g. `0 0 12 ? * 2#1` for the first Monday",
            ));
        }
        if upper == "L" {
            out.push(DomItem::Last);
        } else if upper == "LW" {
            out.push(DomItem::LastWeekday);
        } else if let Some(n) = upper.strip_prefix("L-") {
            let n = if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                n.parse::<u32>().ok()
            } else {
                None
            };
            match n {
                Some(n) if n <= 30 => out.push(DomItem::LastMinus(n)),
                _ => {
                    return Err(field_error(
                        field,
                        item,
                        "`L-n` counts back n days from the last day of the month, n from 0 to 30, e.g. `L-3`",
                    ));
                }
            }
        } else if let Some(n) = upper.strip_suffix('W') {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(field_error(
                    field,
                    item,
                    "`W` follows a single day of the month (`15W`: the weekday nearest the 15th) or `L` (`LW`: the last weekday)",
                ));
            }
            match n.parse::<u32>() {
                Ok(n) if (1..=31).contains(&n) => out.push(DomItem::NearestWeekday(n)),
                _ => {
                    return Err(field_error(field, item, "days of the month are 1 to 31, e.g. `15W`"));
                }
            }
        } else if upper.contains(['L', 'W']) {
            return Err(field_error(
                field,
                item,
                "day-of-month takes `L` (last day), `L-3` (3 days before it), `LW` (last weekday) or `15W` (weekday nearest the 15th)",
            ));
        } else {
            out.extend(parse_plain_item(field, dialect, item)?.into_iter().map(DomItem::Day));
        }
    }
    out.dedup();
    Ok(out)
}

fn parse_dow(text: &str, dialect: Dialect) -> Result<Vec<DowItem>, CronError> {
    let field = CronField::DayOfWeek;
    // Roster's day numbering is 0 = Sunday; Quartz writes 1 = Sunday.
    let to_internal = |v: u32| match dialect {
        Dialect::Quartz => v - 1,
        Dialect::Unix => v % 7,
    };
    let mut out = Vec::new();
    for item in split_items(field, text)? {
        let upper = item.to_ascii_uppercase();
        let special = upper.contains(['L', '#', '?']);
        if special && dialect == Dialect::Unix {
            return Err(quartz_only(field, item));
        }
        if upper.contains('?') {
            return Err(field_error(
                field,
                item,
                "`?` stands alone for the whole field, e.g. `0 0 12 1 * ?`",
            ));
        }
        // `WED` is the one name with a `W` in it.
        if upper.replace("WED", "").contains('W') {
            return Err(field_error(
                field,
                item,
                "`W` belongs in the day-of-month field, e.g. `15W` or `LW`",
            ));
        }
        if let Some((day, nth)) = upper.split_once('#') {
            let v = parse_value(field, dialect, day, item, false)?;
            let k = if !nth.is_empty() && nth.bytes().all(|b| b.is_ascii_digit()) {
                nth.parse::<u32>().ok()
            } else {
                None
            };
            match k {
                Some(k) if (1..=5).contains(&k) => out.push(DowItem::Nth(to_internal(v), k)),
                _ => {
                    return Err(field_error(
                        field,
                        item,
                        "`#` takes the week of the month, 1 to 5, e.g. `2#1` for the first Monday",
                    ));
                }
            }
        } else if upper == "L" {
            // Quartz: `L` alone in day-of-week is its last day, 7 = Saturday.
            out.push(DowItem::Day(6));
        } else if let Some(day) = upper.strip_suffix('L') {
            if day.contains(['-', '/', ',', '*']) {
                return Err(field_error(
                    field,
                    item,
                    "`L` follows a single day of the week (`6L`: the last Friday), not a range",
                ));
            }
            let v = parse_value(field, dialect, day, item, false)?;
            out.push(DowItem::Last(to_internal(v)));
        } else {
            out.extend(
                parse_plain_item(field, dialect, item)?
                    .into_iter()
                    .map(|v| DowItem::Day(to_internal(v))),
            );
        }
    }
    out.sort_unstable_by_key(|i| match *i {
        DowItem::Day(d) => (0, d, 0),
        DowItem::Last(d) => (1, d, 0),
        DowItem::Nth(d, k) => (2, d, k),
    });
    out.dedup();
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl DomItem {
    fn matches(self, date: NaiveDate) -> bool {
        let day = date.day();
        let last = last_day_of_month(date.year(), date.month());
        match self {
            DomItem::Day(n) => day == n,
            DomItem::Last => day == last,
            DomItem::LastMinus(n) => last > n && day == last - n,
            DomItem::LastWeekday => {
                let mut target = last;
                while let Some(d) = date.with_day(target) {
                    if is_weekday(d) || target == 1 {
                        break;
                    }
                    target -= 1;
                }
                day == target
            }
            DomItem::NearestWeekday(n) => {
                let Some(at) = date.with_day(n) else {
                    return false;
                };
                let target = match at.weekday() {
                    Weekday::Sat if n == 1 => 3,
                    Weekday::Sat => n - 1,
                    Weekday::Sun if n == last => n - 2,
                    Weekday::Sun => n + 1,
                    _ => n,
                };
                day == target
            }
        }
    }
}

impl DowItem {
    fn matches(self, date: NaiveDate) -> bool {
        let wd = date.weekday().num_days_from_sunday();
        match self {
            DowItem::Day(d) => wd == d,
            DowItem::Last(d) => wd == d && date.day() + 7 > last_day_of_month(date.year(), date.month()),
            DowItem::Nth(d, k) => wd == d && (date.day() - 1) / 7 + 1 == k,
        }
    }
}

impl Spec {
    fn year_ok(&self, year: i32) -> bool {
        match &self.years {
            None => true,
            Some(ys) => u32::try_from(year).is_ok_and(|y| ys.binary_search(&y).is_ok()),
        }
    }

    /// Roster's own day rule: the truth that croner's candidates are checked against.
    fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.year_ok(date.year()) || self.months.binary_search(&date.month()).is_err() {
            return false;
        }
        let dom = |items: &[DomItem]| items.iter().any(|i| i.matches(date));
        let dow = |items: &[DowItem]| items.iter().any(|i| i.matches(date));
        match (&self.dom, &self.dow) {
            (None, None) => true,
            (Some(a), None) => dom(a),
            (None, Some(b)) => dow(b),
            // Only Unix cron gets here (Quartz refuses it): the POSIX rule, either may match.
            (Some(a), Some(b)) => dom(a) || dow(b),
        }
    }

    fn matches(&self, t: &DateTime<Utc>) -> bool {
        t.nanosecond() == 0
            && self.seconds.binary_search(&t.second()).is_ok()
            && self.minutes.binary_search(&t.minute()).is_ok()
            && self.hours.binary_search(&t.hour()).is_ok()
            && self.day_matches(t.date_naive())
    }

    /// Whether any fire time lies after `now`, scanning dates up to the end of `last_year`.
    fn fires_after(&self, now: DateTime<Utc>, last_year: i32) -> bool {
        let today = now.date_naive();
        let (Some(h), Some(m), Some(s)) = (self.hours.last(), self.minutes.last(), self.seconds.last()) else {
            return false;
        };
        let latest_today = NaiveTime::from_hms_opt(*h, *m, *s).is_some_and(|t| t > now.time());
        let mut date = today;
        while date.year() <= last_year {
            if !self.year_ok(date.year()) {
                // Jump straight to the next year the field allows.
                let next = match &self.years {
                    Some(ys) => ys.iter().map(|&y| y as i32).find(|&y| y > date.year()),
                    None => None,
                };
                match next.and_then(|y| NaiveDate::from_ymd_opt(y, 1, 1)) {
                    Some(d) => {
                        date = d;
                        continue;
                    }
                    None => return false,
                }
            }
            if self.day_matches(date) && (date > today || latest_today) {
                return true;
            }
            match date.succ_opt() {
                Some(d) => date = d,
                None => return false,
            }
        }
        false
    }

    /// The pattern croner evaluates: always 7 fields, croner's numbering (0 = Sunday).
    fn croner_pattern(&self) -> String {
        fn list(values: &[u32], min: u32, max: u32) -> String {
            if values.len() as u32 == max - min + 1 {
                "*".to_string()
            } else {
                values.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            }
        }
        let dom = match &self.dom {
            None => "*".to_string(),
            Some(items) => {
                let mut parts: Vec<String> = Vec::new();
                for item in items {
                    match *item {
                        DomItem::Day(n) => parts.push(n.to_string()),
                        DomItem::Last => parts.push("L".to_string()),
                        DomItem::NearestWeekday(n) => parts.push(format!("{n}W")),
                        // croner has no `LW` and no `L-n`: hand it every day they can land on;
                        // Roster's day rule then keeps the right one.
                        DomItem::LastWeekday => parts.push("26-31".to_string()),
                        DomItem::LastMinus(n) => {
                            let lo = 28u32.saturating_sub(n).max(1);
                            let hi = 31 - n.min(30);
                            parts.push(format!("{lo}-{hi}"));
                        }
                    }
                }
                parts.join(",")
            }
        };
        let dow = match &self.dow {
            None => "*".to_string(),
            Some(items) => items
                .iter()
                .map(|i| match *i {
                    DowItem::Day(d) => d.to_string(),
                    DowItem::Last(d) => format!("{d}L"),
                    DowItem::Nth(d, k) => format!("{d}#{k}"),
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        let years = match &self.years {
            None => "*".to_string(),
            Some(ys) => ys.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        };
        format!(
            "{} {} {} {} {} {} {}",
            list(&self.seconds, 0, 59),
            list(&self.minutes, 0, 59),
            list(&self.hours, 0, 23),
            dom,
            list(&self.months, 1, 12),
            dow,
            years
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Describing

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn join_words(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        4 => "fourth".into(),
        5 => "fifth".into(),
        _ => format!("{n}th"),
    }
}

/// `2nd`, `3rd`, `11th`: for "every 2nd day".
fn ordinal_suffix(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Three to six days of the week in a row, read around the week's end if need be
/// (`FRI-MON` is "Friday to Monday"), from days numbered 0 = Sunday.
fn weekday_run(days: &[u32]) -> Option<String> {
    let n = days.len() as u32;
    if !(3..=6).contains(&n) {
        return None;
    }
    let start = days.iter().copied().find(|d| !days.contains(&((d + 6) % 7)))?;
    let in_a_row = (0..n).all(|i| days.contains(&((start + i) % 7)));
    in_a_row.then(|| {
        format!(
            "{} to {}",
            DAY_NAMES[start as usize],
            DAY_NAMES[((start + n - 1) % 7) as usize]
        )
    })
}

/// Sorted values as runs: `1-5, 10 and 15`, with each value named by `name`.
fn runs(values: &[u32], name: &dyn Fn(u32) -> String, to: &str) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            parts.push(format!("{}{to}{}", name(values[i]), name(values[j])));
        } else {
            for v in &values[i..=j] {
                parts.push(name(*v));
            }
        }
        i = j + 1;
    }
    join_words(&parts)
}

/// A regular step through a field (`0/15`, `10-30/5`): (first, step, last).
fn progression(values: &[u32]) -> Option<(u32, u32, u32)> {
    let (&first, &last) = (values.first()?, values.last()?);
    if values.len() < 2 {
        return None;
    }
    // Unsorted or repeated values (`22,2/2`) are not a progression; checked
    // subtraction keeps them from underflowing.
    let step = values[1].checked_sub(values[0])?;
    (step > 1 && values.windows(2).all(|w| w[1].checked_sub(w[0]) == Some(step))).then_some((first, step, last))
}

/// A seconds, minutes or hours set in words; `None` when it is every value.
fn unit_phrase(values: &[u32], max: u32, singular: &str, plural: &str) -> Option<String> {
    if values.len() as u32 == max + 1 {
        return None;
    }
    // Two values read better as a list unless they are a whole cycle (`*/30`).
    let cycle = |(first, step, last): &(u32, u32, u32)| values.len() > 2 || (*first == 0 && last + step > max);
    if let Some((first, step, last)) = progression(values).filter(cycle) {
        let from = if first == 0 && last + step > max {
            String::new()
        } else if last + step > max {
            format!(" from {singular} {first}")
        } else {
            format!(" from {singular} {first} to {last}")
        };
        return Some(format!("every {step} {plural}{from}"));
    }
    let word = if values.len() == 1 { singular } else { plural };
    Some(format!("at {word} {}", runs(values, &|v| v.to_string(), "-")))
}

impl Spec {
    fn describe(&self, dialect: Dialect) -> String {
        let time = self.describe_time(dialect);
        let fixed_time = time.starts_with("at ") && time.contains(':');
        let date = self.describe_date(fixed_time);
        match (time.is_empty(), date.is_empty()) {
            (_, true) => time,
            (true, _) => date,
            _ => format!("{time} {date}"),
        }
    }

    fn describe_time(&self, dialect: Dialect) -> String {
        let combos = self.seconds.len() * self.minutes.len() * self.hours.len();
        if combos <= 4 {
            let mut times = Vec::new();
            for h in &self.hours {
                for m in &self.minutes {
                    for s in &self.seconds {
                        times.push(match dialect {
                            Dialect::Quartz => format!("{h:02}:{m:02}:{s:02}"),
                            Dialect::Unix => format!("{h:02}:{m:02}"),
                        });
                    }
                }
            }
            return format!("at {}", join_words(&times));
        }
        let sec = if self.seconds == [0] {
            None
        } else {
            Some(unit_phrase(&self.seconds, 59, "second", "seconds").unwrap_or_else(|| "every second".into()))
        };
        let min = match unit_phrase(&self.minutes, 59, "minute", "minutes") {
            Some(p) if sec.is_some() => Some(format!("{p} past the hour")),
            Some(p) => Some(p),
            None if sec.is_none() => Some("every minute".into()),
            None if sec.as_deref().is_some_and(|s| s.starts_with("at ")) => Some("of every minute".into()),
            None => None,
        };
        let hour = match unit_phrase(&self.hours, 23, "hour", "hours") {
            None if min.as_deref().is_some_and(|m| m.starts_with("at ")) => Some("of every hour".into()),
            None => None,
            Some(p) => Some(match p.strip_prefix("at ") {
                Some(hours) => format!("during {hours}"),
                None => p,
            }),
        };
        [sec, min, hour].into_iter().flatten().collect::<Vec<_>>().join(" ")
    }

    fn describe_date(&self, fixed_time: bool) -> String {
        let all_months = self.months.len() == 12;
        let months = runs(&self.months, &|m| MONTH_NAMES[(m - 1) as usize].to_string(), " to ");
        let dom = self.dom.as_ref().map(|items| {
            let mut days: Vec<u32> = items
                .iter()
                .filter_map(|i| if let DomItem::Day(d) = i { Some(*d) } else { None })
                .collect();
            days.sort_unstable();
            days.dedup();
            let mut parts = Vec::new();
            if let Some((first, step, last)) = progression(&days).filter(|_| days.len() > 2) {
                let to = if last + step > 31 {
                    String::new()
                } else {
                    format!(" to day {last}")
                };
                parts.push(format!("every {} day from day {first}{to}", ordinal_suffix(step)));
            } else if !days.is_empty() {
                let word = if days.len() == 1 { "day" } else { "days" };
                parts.push(format!("{word} {}", runs(&days, &|v| v.to_string(), "-")));
            }
            for item in items {
                match *item {
                    DomItem::Day(_) => {}
                    DomItem::Last => parts.push("the last day".into()),
                    DomItem::LastMinus(0) => parts.push("the last day".into()),
                    DomItem::LastMinus(1) => parts.push("the day before the last day".into()),
                    DomItem::LastMinus(n) => parts.push(format!("{n} days before the last day")),
                    DomItem::LastWeekday => parts.push("the last weekday".into()),
                    DomItem::NearestWeekday(n) => parts.push(format!("the weekday nearest day {n}")),
                }
            }
            join_words(&parts)
        });
        let (dow, dow_monthly) = match &self.dow {
            None => (None, false),
            Some(items) => {
                let mut days: Vec<u32> = items
                    .iter()
                    .filter_map(|i| if let DowItem::Day(d) = i { Some(*d) } else { None })
                    .collect();
                days.sort_unstable();
                days.dedup();
                let mut parts = Vec::new();
                if let Some(run) = weekday_run(&days) {
                    parts.push(run);
                } else if !days.is_empty() {
                    // Monday first, so weekends stay together.
                    for d in &mut days {
                        *d = (*d + 6) % 7;
                    }
                    days.sort_unstable();
                    parts.push(runs(&days, &|d| DAY_NAMES[((d + 1) % 7) as usize].to_string(), " to "));
                }
                let mut monthly = false;
                for item in items {
                    match *item {
                        DowItem::Day(_) => {}
                        DowItem::Last(d) => {
                            monthly = true;
                            parts.push(format!("the last {}", DAY_NAMES[d as usize]));
                        }
                        DowItem::Nth(d, k) => {
                            monthly = true;
                            parts.push(format!("the {} {}", ordinal(k), DAY_NAMES[d as usize]));
                        }
                    }
                }
                (Some(join_words(&parts)), monthly)
            }
        };
        let in_months = if all_months {
            String::new()
        } else {
            format!(" in {months}")
        };
        let mut out = match (dom, dow) {
            (None, None) if all_months => {
                if fixed_time {
                    "every day".to_string()
                } else {
                    String::new()
                }
            }
            (None, None) => format!("every day in {months}"),
            (Some(d), None) if all_months => format!("on {d} of every month"),
            (Some(d), None) => format!("on {d}{in_months}"),
            (None, Some(w)) if dow_monthly && all_months => format!("on {w} of every month"),
            (None, Some(w)) => format!("on {w}{in_months}"),
            (Some(d), Some(w)) if all_months => format!("on {d} of every month or on {w}"),
            (Some(d), Some(w)) => format!("on {d} or on {w}, in {months}"),
        };
        if let Some(years) = &self.years {
            let sep = if out.is_empty() { "" } else { ", " };
            let word = if years.len() == 1 { "year" } else { "years" };
            out = format!("{out}{sep}in {word} {}", runs(years, &|y| y.to_string(), "-"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
            .with_timezone(&Utc)
    }

    /// Builds a cron schedule as if "now" were `now`, so year-limited rows stay valid.
    fn cron_now(expr: &str, now: &str) -> Schedule {
        Schedule::cron_at(expr, at(now)).unwrap_or_else(|e| panic!("`{expr}` refused: {e}"))
    }

    /// Expected values were worked out from a printed calendar and the Quartz / POSIX
    /// definitions, not from this code. Weekdays noted for checking.
    const TABLE: &[(&str, &str, [&str; 3])] = &[
        // Last weekday: Jan 31 2026 is a Saturday, Feb 28 2026 a Saturday, Mar 31 a Tuesday.
        (
            "0 0 12 LW * ?",
            "2026-01-01T00:00:00Z",
            ["2026-01-30T12:00:00Z", "2026-02-27T12:00:00Z", "2026-03-31T12:00:00Z"],
        ),
        // Apr 30 2026 Thursday; May 31 2026 Sunday (so Fri 29); Jun 30 Tuesday.
        (
            "0 0 12 LW * ?",
            "2026-04-01T00:00:00Z",
            ["2026-04-30T12:00:00Z", "2026-05-29T12:00:00Z", "2026-06-30T12:00:00Z"],
        ),
        // Leap February 2028 ends on Tuesday 29.
        (
            "0 0 12 LW * ?",
            "2028-02-01T00:00:00Z",
            ["2028-02-29T12:00:00Z", "2028-03-31T12:00:00Z", "2028-04-28T12:00:00Z"],
        ),
        // Last Friday (Quartz 6 = FRI): Fridays of Jan 2026 end on 30, Feb on 27, Mar on 27.
        (
            "0 15 10 ? * 6L",
            "2026-01-01T00:00:00Z",
            ["2026-01-30T10:15:00Z", "2026-02-27T10:15:00Z", "2026-03-27T10:15:00Z"],
        ),
        // First Monday (Quartz 2 = MON): Jan 5, Feb 2, Mar 2 2026.
        (
            "0 15 10 ? * 2#1",
            "2026-01-01T00:00:00Z",
            ["2026-01-05T10:15:00Z", "2026-02-02T10:15:00Z", "2026-03-02T10:15:00Z"],
        ),
        (
            "0 0/15 * * * ?",
            "2028-02-29T23:31:07Z",
            ["2028-02-29T23:45:00Z", "2028-03-01T00:00:00Z", "2028-03-01T00:15:00Z"],
        ),
        // Starting exactly on a fire time: strictly after.
        (
            "0 0 12 * * ?",
            "2026-12-31T12:00:00Z",
            ["2027-01-01T12:00:00Z", "2027-01-02T12:00:00Z", "2027-01-03T12:00:00Z"],
        ),
        // Friday 2026-01-30 at the fire time: next is Monday Feb 2.
        (
            "0 15 10 ? * MON-FRI",
            "2026-01-30T10:15:00Z",
            ["2026-02-02T10:15:00Z", "2026-02-03T10:15:00Z", "2026-02-04T10:15:00Z"],
        ),
        // Last day: Feb 29 in leap 2028, then Mar 31, Apr 30.
        (
            "0 15 10 L * ?",
            "2028-01-31T10:15:01Z",
            ["2028-02-29T10:15:00Z", "2028-03-31T10:15:00Z", "2028-04-30T10:15:00Z"],
        ),
        // Feb 15 2026 and Mar 15 2026 are Sundays (so Monday 16); Apr 15 is a Wednesday.
        (
            "0 15 10 15W * ?",
            "2026-02-01T00:00:00Z",
            ["2026-02-16T10:15:00Z", "2026-03-16T10:15:00Z", "2026-04-15T10:15:00Z"],
        ),
        // Aug 15 2026 is a Saturday: Friday 14.
        (
            "0 15 10 15W * ?",
            "2026-08-01T00:00:00Z",
            ["2026-08-14T10:15:00Z", "2026-09-15T10:15:00Z", "2026-10-15T10:15:00Z"],
        ),
        // Aug 1 2026 is a Saturday: not back into July but forward to Monday 3.
        (
            "0 0 12 1W * ?",
            "2026-08-01T00:00:00Z",
            ["2026-08-03T12:00:00Z", "2026-09-01T12:00:00Z", "2026-10-01T12:00:00Z"],
        ),
        // May 31 2026 is a Sunday: back to Friday 29; June has no 31st; Jul 31 Fri; Aug 31 Mon.
        (
            "0 0 12 31W * ?",
            "2026-05-01T00:00:00Z",
            ["2026-05-29T12:00:00Z", "2026-07-31T12:00:00Z", "2026-08-31T12:00:00Z"],
        ),
        // Two days before the last day: 29-2, 31-2, 30-2.
        (
            "0 0 0 L-2 * ?",
            "2028-02-01T00:00:00Z",
            ["2028-02-27T00:00:00Z", "2028-03-29T00:00:00Z", "2028-04-28T00:00:00Z"],
        ),
        (
            "0 11 11 11 11 ?",
            "2026-11-11T11:11:00Z",
            ["2027-11-11T11:11:00Z", "2028-11-11T11:11:00Z", "2029-11-11T11:11:00Z"],
        ),
        // Quartz 1 = Sunday: 2026-02-28 is a Saturday, Mar 1 a Sunday.
        (
            "0 0 9 ? * 1",
            "2026-02-28T09:00:00Z",
            ["2026-03-01T09:00:00Z", "2026-03-08T09:00:00Z", "2026-03-15T09:00:00Z"],
        ),
        // Wrapping Quartz range: Friday to Monday. 2026-03-03 is a Tuesday.
        (
            "0 0 8 ? * FRI-MON",
            "2026-03-03T00:00:00Z",
            ["2026-03-06T08:00:00Z", "2026-03-07T08:00:00Z", "2026-03-08T08:00:00Z"],
        ),
        // Quartz `L` alone in day-of-week: Saturday. 2026-03-03 is a Tuesday.
        (
            "0 0 8 ? * L",
            "2026-03-03T00:00:00Z",
            ["2026-03-07T08:00:00Z", "2026-03-14T08:00:00Z", "2026-03-21T08:00:00Z"],
        ),
        // Fifth Thursday of February: only a Thursday 29 February, 2052 and 2080.
        (
            "0 0 0 ? 2 5#5",
            "2026-01-01T00:00:00Z",
            ["2052-02-29T00:00:00Z", "2080-02-29T00:00:00Z", "2080-02-29T00:00:00Z"],
        ),
        (
            "*/10 * * * *",
            "2026-12-31T23:55:00Z",
            ["2027-01-01T00:00:00Z", "2027-01-01T00:10:00Z", "2027-01-01T00:20:00Z"],
        ),
        // 2026-02-28 is a Saturday.
        (
            "0 9 * * 1-5",
            "2026-02-28T12:00:00Z",
            ["2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z", "2026-03-04T09:00:00Z"],
        ),
        (
            "0 0 1 * *",
            "2028-02-15T00:00:00Z",
            ["2028-03-01T00:00:00Z", "2028-04-01T00:00:00Z", "2028-05-01T00:00:00Z"],
        ),
        // 2026-01-01 is a Thursday; Sundays Jan 4, 11, 18; 0 and 7 both Sunday.
        (
            "30 2 * * 0",
            "2026-01-01T00:00:00Z",
            ["2026-01-04T02:30:00Z", "2026-01-11T02:30:00Z", "2026-01-18T02:30:00Z"],
        ),
        (
            "30 2 * * 7",
            "2026-01-01T00:00:00Z",
            ["2026-01-04T02:30:00Z", "2026-01-11T02:30:00Z", "2026-01-18T02:30:00Z"],
        ),
        (
            "30 2 * * SUN",
            "2026-01-01T00:00:00Z",
            ["2026-01-04T02:30:00Z", "2026-01-11T02:30:00Z", "2026-01-18T02:30:00Z"],
        ),
        // Unix OR rule: the 1st (Wed Jul 1 2026) or any Monday (Jun 29, Jul 6).
        (
            "0 12 1 * 1",
            "2026-06-25T00:00:00Z",
            ["2026-06-29T12:00:00Z", "2026-07-01T12:00:00Z", "2026-07-06T12:00:00Z"],
        ),
        // Unix range ending on SUN runs to 7, not backwards to 0. 2026-03-03 is a Tuesday.
        (
            "0 8 * * FRI-SUN",
            "2026-03-03T00:00:00Z",
            ["2026-03-06T08:00:00Z", "2026-03-07T08:00:00Z", "2026-03-08T08:00:00Z"],
        ),
        // Seven fields: last day of February in 2027 to 2029 only.
        (
            "0 30 9 L 2 ? 2027-2029",
            "2026-06-01T00:00:00Z",
            ["2027-02-28T09:30:00Z", "2028-02-29T09:30:00Z", "2029-02-28T09:30:00Z"],
        ),
        (
            "0 0 6 1 JAN,JUL ? 2029/2",
            "2026-06-01T00:00:00Z",
            ["2029-01-01T06:00:00Z", "2029-07-01T06:00:00Z", "2031-01-01T06:00:00Z"],
        ),
        (
            "0 10-30/10 8 * * ?",
            "2026-03-03T08:10:00Z",
            ["2026-03-03T08:20:00Z", "2026-03-03T08:30:00Z", "2026-03-04T08:10:00Z"],
        ),
        (
            "@daily",
            "2026-03-03T00:00:00Z",
            ["2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"],
        ),
    ];

    #[test]
    fn table_next_three_fire_times() {
        for (expr, start, expected) in TABLE {
            let s = cron_now(expr, start);
            let want: Vec<DateTime<Utc>> = expected.iter().map(|e| at(e)).collect();
            let mut want = want;
            want.dedup();
            let got = s.upcoming(at(start), want.len());
            assert_eq!(got, want, "`{expr}` from {start}");
            // next_after agrees with upcoming, and each fire is strictly after the last.
            assert_eq!(s.next_after(at(start)), Some(want[0]), "`{expr}`");
        }
    }

    #[test]
    fn year_limited_schedule_runs_out() {
        let s = cron_now("0 30 9 L 2 ? 2027-2029", "2026-06-01T00:00:00Z");
        assert_eq!(s.next_after(at("2029-02-28T09:30:00Z")), None);
        assert_eq!(
            s.upcoming(at("2029-01-01T00:00:00Z"), 5),
            vec![at("2029-02-28T09:30:00Z")]
        );
        // The fifth-Thursday-of-February row has only two fires before 2100.
        let s = cron_now("0 0 0 ? 2 5#5", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.upcoming(at("2026-01-01T00:00:00Z"), 2),
            vec![at("2052-02-29T00:00:00Z"), at("2080-02-29T00:00:00Z")]
        );
    }

    #[test]
    fn sub_second_start_still_gives_whole_seconds() {
        let s = cron_now("0 0/15 * * * ?", "2026-01-01T00:00:00Z");
        let t = at("2026-03-03T12:00:00.500Z");
        assert_eq!(s.next_after(t), Some(at("2026-03-03T12:15:00Z")));
        assert_eq!(
            s.missed_between(at("2026-03-03T11:00:00Z"), t),
            Some(at("2026-03-03T12:00:00Z"))
        );
        let s = cron_now("* * * * * ?", "2026-01-01T00:00:00Z");
        assert_eq!(s.next_after(t), Some(at("2026-03-03T12:00:01Z")));
    }

    #[test]
    fn unix_or_rule_and_quartz_and() {
        // Unix: both restricted, either matches. 2026-07-02 is a Thursday, not the 1st.
        let s = cron_now("0 12 1 * 1", "2026-01-01T00:00:00Z");
        assert!(
            !s.upcoming(at("2026-06-01T00:00:00Z"), 10)
                .iter()
                .any(|t| t.date_naive() == NaiveDate::from_ymd_opt(2026, 7, 2).unwrap())
        );
        // Unix: day-of-week `*` leaves day-of-month alone (no OR with "every day").
        let s = cron_now("0 12 1 * *", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.next_after(at("2026-06-02T00:00:00Z")),
            Some(at("2026-07-01T12:00:00Z"))
        );
        // Unix: day-of-month `*` leaves day-of-week alone. 2026-06-02 is a Tuesday.
        let s = cron_now("0 12 * * 1", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.next_after(at("2026-06-02T00:00:00Z")),
            Some(at("2026-06-08T12:00:00Z"))
        );
        // Unix: `*/2` is a restriction, so the OR rule applies: odd days or Mondays.
        let s = cron_now("0 12 */2 * 1", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.upcoming(at("2026-06-02T00:00:00Z"), 3),
            vec![
                at("2026-06-03T12:00:00Z"),
                at("2026-06-05T12:00:00Z"),
                at("2026-06-07T12:00:00Z")
            ]
        );
        assert!(
            s.upcoming(at("2026-06-02T00:00:00Z"), 4)
                .contains(&at("2026-06-08T12:00:00Z"))
        );
        // Quartz: `*` in both means every day.
        let s = cron_now("0 0 12 * * *", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.next_after(at("2026-06-02T13:00:00Z")),
            Some(at("2026-06-03T12:00:00Z"))
        );
        // Quartz: restricted day-of-month with `*` day-of-week is that day only.
        let s = cron_now("0 0 12 15 * *", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.next_after(at("2026-06-02T13:00:00Z")),
            Some(at("2026-06-15T12:00:00Z"))
        );
    }

    #[test]
    fn every_counts_from_the_epoch() {
        let s = Schedule::every(60).unwrap();
        assert_eq!(
            s.next_after(at("2026-03-03T12:00:00Z")),
            Some(at("2026-03-03T13:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-03-03T12:59:59.999Z")),
            Some(at("2026-03-03T13:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-03-03T12:34:56Z")),
            Some(at("2026-03-03T13:00:00Z"))
        );
        let s = Schedule::every(15).unwrap();
        assert_eq!(
            s.upcoming(at("2026-03-03T12:07:00Z"), 3),
            vec![
                at("2026-03-03T12:15:00Z"),
                at("2026-03-03T12:30:00Z"),
                at("2026-03-03T12:45:00Z")
            ]
        );
        // 7 minutes: 2026-03-03T12:00:00Z is 1772539200 s = 29542320 min, 29542320 mod 7 = 3,
        // so the fires around it are at 11:57 and 12:04.
        let s = Schedule::every(7).unwrap();
        assert_eq!(
            s.next_after(at("2026-03-03T12:00:00Z")),
            Some(at("2026-03-03T12:04:00Z"))
        );
        assert_eq!(
            s.missed_between(at("2026-03-03T11:00:00Z"), at("2026-03-03T12:00:00Z")),
            Some(at("2026-03-03T11:57:00Z"))
        );
        // A week: the epoch was a Thursday, so weekly fires are Thursdays at 00:00.
        let s = Schedule::every(MAX_INTERVAL_MINUTES).unwrap();
        assert_eq!(
            s.next_after(at("2026-03-03T12:00:00Z")),
            Some(at("2026-03-05T00:00:00Z"))
        );
        // Before the epoch too.
        let s = Schedule::every(60).unwrap();
        assert_eq!(
            s.next_after(at("1969-12-31T22:30:00Z")),
            Some(at("1969-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn schedules_cross_tasks_and_parse_against_the_clock() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Schedule>();
        send_sync::<CronError>();
        let s = Schedule::cron("0 0 12 LW * ?").unwrap();
        let now = Utc::now();
        assert!(s.next_after(now).is_some_and(|t| t > now));
        assert!(Schedule::cron("0 0 0 1 1 ? 2020").is_err());
    }

    #[test]
    fn every_refuses_zero_and_more_than_a_week() {
        assert_eq!(Schedule::every(0), Err(CronError::IntervalRange { minutes: 0 }));
        assert_eq!(
            Schedule::every(10_081),
            Err(CronError::IntervalRange { minutes: 10_081 })
        );
        assert!(Schedule::every(1).is_ok());
        assert_eq!(Schedule::every(1).unwrap().source_text(), "every 1 minute");
        assert_eq!(Schedule::every(60).unwrap().source_text(), "every 60 minutes");
        assert_eq!(Schedule::default(), Schedule::every(60).unwrap());
    }

    #[test]
    fn missed_between_intervals() {
        let s = Schedule::every(60).unwrap();
        // Down from 10:20 to 12:40: the 12:00 run is the one to catch up.
        assert_eq!(
            s.missed_between(at("2026-03-03T10:20:00Z"), at("2026-03-03T12:40:00Z")),
            Some(at("2026-03-03T12:00:00Z"))
        );
        // At exactly a fire time, that fire counts.
        assert_eq!(
            s.missed_between(at("2026-03-03T10:20:00Z"), at("2026-03-03T12:00:00Z")),
            Some(at("2026-03-03T12:00:00Z"))
        );
        // A fire at `since` itself already ran.
        assert_eq!(
            s.missed_between(at("2026-03-03T12:00:00Z"), at("2026-03-03T12:59:00Z")),
            None
        );
        assert_eq!(
            s.missed_between(at("2026-03-03T12:10:00Z"), at("2026-03-03T12:50:00Z")),
            None
        );
        assert_eq!(
            s.missed_between(at("2026-03-03T12:50:00Z"), at("2026-03-03T12:10:00Z")),
            None
        );
    }

    #[test]
    fn missed_between_cron() {
        let s = cron_now("0 0 12 LW * ?", "2026-01-01T00:00:00Z");
        // Down from mid-January to mid-March: the latest missed run is Friday 27 February.
        assert_eq!(
            s.missed_between(at("2026-01-15T00:00:00Z"), at("2026-03-15T00:00:00Z")),
            Some(at("2026-02-27T12:00:00Z"))
        );
        // Nothing between.
        assert_eq!(
            s.missed_between(at("2026-02-28T00:00:00Z"), at("2026-03-15T00:00:00Z")),
            None
        );
        // At exactly the fire time.
        assert_eq!(
            s.missed_between(at("2026-03-01T00:00:00Z"), at("2026-03-31T12:00:00Z")),
            Some(at("2026-03-31T12:00:00Z"))
        );
        // `since` exactly at the fire time: it already ran.
        assert_eq!(
            s.missed_between(at("2026-03-31T12:00:00Z"), at("2026-04-15T00:00:00Z")),
            None
        );
        let s = cron_now("0 0 0 L-2 * ?", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.missed_between(at("2027-01-01T00:00:00Z"), at("2028-03-05T00:00:00Z")),
            Some(at("2028-02-27T00:00:00Z"))
        );
        let s = cron_now("0 30 9 L 2 ? 2027-2029", "2026-06-01T00:00:00Z");
        assert_eq!(
            s.missed_between(at("2020-01-01T00:00:00Z"), at("2028-02-01T00:00:00Z")),
            Some(at("2027-02-28T09:30:00Z"))
        );
        assert_eq!(
            s.missed_between(at("2020-01-01T00:00:00Z"), at("2027-02-01T00:00:00Z")),
            None
        );
        let s = cron_now("*/10 * * * *", "2026-01-01T00:00:00Z");
        assert_eq!(
            s.missed_between(at("2026-03-03T11:00:00Z"), at("2026-03-03T12:09:59.9Z")),
            Some(at("2026-03-03T12:00:00Z"))
        );
    }

    fn refused(expr: &str) -> CronError {
        match Schedule::cron_at(expr, at("2026-05-09T00:00:00Z")) {
            Ok(s) => panic!("`{expr}` accepted: {}", s.describe()),
            Err(e) => e,
        }
    }

    #[test]
    fn refusals_name_the_field_and_say_how() {
        let cases: &[(&str, &str)] = &[
            ("", "empty schedule"),
            ("* * * *", "4 field(s) in `* * * *`: write 5 fields for Unix cron"),
            ("0 0 0 1 1 ? 2030 x", "8 field(s)"),
            (
                "0 0 12 ? * 8",
                "day-of-week field `8`: Quartz days of week are 1 (SUN) to 7 (SAT)",
            ),
            (
                "0 0 12 ? * 0",
                "day-of-week field `0`: Quartz days of week are 1 (SUN) to 7 (SAT)",
            ),
            (
                "0 12 * * 8",
                "day-of-week field `8`: Unix cron days of week are 0 (SUN) to 6 (SAT)",
            ),
            ("60 * * * * ?", "second field `60`: seconds are 0 to 59"),
            ("0 60 * * * ?", "minute field `60`: minutes are 0 to 59"),
            ("0 0 24 * * ?", "hour field `24`: hours are 0 to 23"),
            ("0 0 0 32 * ?", "day-of-month field `32`: days of the month are 1 to 31"),
            ("0 0 0 0 * ?", "day-of-month field `0`"),
            ("0 0 0 1 13 ?", "month field `13`: months are 1 to 12 or JAN to DEC"),
            ("0 0 0 1 FOO ?", "month field `FOO`: `FOO` is not a number or name"),
            ("0 0 0 1 1 ? 1969", "year field `1969`: years are 1970 to 2199"),
            (
                "0 L * * * ?",
                "minute field `L`: `L`, `W`, `#` and `?` are only allowed in the day-of-month and day-of-week",
            ),
            ("0 0 5W * * ?", "hour field `5W`"),
            (
                "0 0 0 ? * 2W",
                "day-of-week field `2W`: `W` belongs in the day-of-month field",
            ),
            (
                "0 0 0 1#2 * ?",
                "day-of-month field `1#2`: `#` belongs in the day-of-week field",
            ),
            (
                "0 0 0 ? * 2#6",
                "day-of-week field `2#6`: `#` takes the week of the month, 1 to 5",
            ),
            ("0 0 0 ? * 2#0", "day-of-week field `2#0`"),
            ("0 0 0 ? * 1-5L", "day-of-week field `1-5L`: `L` follows a single day"),
            ("0 0 0 L-31 * ?", "day-of-month field `L-31`: `L-n` counts back"),
            ("0 0 0 L-x * ?", "day-of-month field `L-x`"),
            ("0 0 0 1-5W * ?", "day-of-month field `1-5W`: `W` follows a single day"),
            ("0 0 0 32W * ?", "day-of-month field `32W`"),
            ("0 0 0 LL * ?", "day-of-month field `LL`"),
            ("0 0 12 ? * ?", "both `?`"),
            (
                "0 0 12 15 * MON",
                "day-of-month `15` with day-of-week `MON`: in Quartz one of them must be `?`",
            ),
            // The 6-field croner/Spring habit: seconds on a Unix-numbered weekday.
            (
                "0 0 12 * * 1",
                "day-of-month `*` with day-of-week `1`: in Quartz one of them must be `?`",
            ),
            ("0 0 12 * * 1-5", "for Unix cron write 5 fields without seconds"),
            (
                "0 12 L * *",
                "day-of-month field `L`: `L`, `W`, `#` and `?` are Quartz syntax",
            ),
            ("0 12 15W * *", "Quartz syntax"),
            (
                "0 12 * * 5L",
                "day-of-week field `5L`: `L`, `W`, `#` and `?` are Quartz syntax",
            ),
            ("0 12 * * 1#1", "Quartz syntax"),
            (
                "0 12 ? * 1",
                "day-of-month field `?`: `L`, `W`, `#` and `?` are Quartz syntax",
            ),
            ("0 12 * * 5-1", "day-of-week field `5-1`: the range runs backwards"),
            (
                "0 0 0/0 * * ?",
                "hour field `0/0`: the step after `/` is a number from 1 to 24",
            ),
            ("*/ * * * *", "minute field `*/`: the step"),
            (
                "0 0 12 1,,2 * ?",
                "day-of-month field `1,,2`: a list has an empty entry",
            ),
            (
                "0 0 12 1 * ? 2030-2029",
                "year field `2030-2029`: the range runs backwards",
            ),
            (
                "? 0 12 1 * ?",
                "second field `?`: `?` is only allowed in the day-of-month or day-of-week",
            ),
            ("0 0 12 +5 * ?", "day-of-month field `+5`"),
            ("0 0 12 1-+5 * ?", "day-of-month field `1-+5`"),
            ("0 0 0 30 2 ?", "`0 0 0 30 2 ?` never fires"),
            ("0 0 0 31 4 ?", "never fires"),
            ("0 0 0 31 4,6,9,11 ?", "never fires"),
            ("0 0 0 1 1 ? 2020", "never fires"),
            ("0 0 0 30 2 *", "never fires"),
            ("0 0 0 ? 2 2#5 2026-2030", "never fires"),
            ("0 0 0 L-30 2,4 ?", "never fires"),
            // Fires earlier today only, and never again.
            ("0 0 0 9 5 ? 2026", "never fires"),
        ];
        for (expr, want) in cases {
            let e = refused(expr).to_string();
            assert!(e.contains(want), "`{expr}`: got {e:?}, want it to contain {want:?}");
        }
        // Field errors are structured, for callers that want the field.
        assert_eq!(
            refused("0 0 12 ? * 8"),
            CronError::Field {
                field: CronField::DayOfWeek,
                value: "8".into(),
                problem: "Quartz days of week are 1 (SUN) to 7 (SAT), or SUN to SAT".into(),
            }
        );
        assert_eq!(refused("0 0 12 ? * ?"), CronError::BothDaysUnspecified);
    }

    #[test]
    fn rare_but_real_schedules_are_accepted() {
        // Leap days, the 31st, and year-limited ones in the future all fire.
        for expr in [
            "0 0 0 29 2 ?",
            "0 0 0 31 * ?",
            "0 0 0 1 1 ? 2199",
            "0 0 0 L-30 * ?",
            "0 0 0 31W 4-6 ?",
        ] {
            assert!(Schedule::cron_at(expr, at("2026-05-09T00:00:00Z")).is_ok(), "{expr}");
        }
        // Fires later today: accepted.
        assert!(Schedule::cron_at("0 0 12 9 5 ? 2026", at("2026-05-09T11:00:00Z")).is_ok());
        assert!(Schedule::cron_at("0 0 12 9 5 ? 2026", at("2026-05-09T12:00:00Z")).is_err());
    }

    #[test]
    fn from_str_forms() {
        let every60 = Schedule::every(60).unwrap();
        for text in [
            "60",
            "60m",
            "60 m",
            "60 minutes",
            "every 60m",
            "every 60 minutes",
            "Every 60 Minutes",
            " every 1h ",
            "every 1 hour",
            "1h",
            "every60m",
        ] {
            assert_eq!(text.parse::<Schedule>().as_ref(), Ok(&every60), "{text}");
        }
        assert_eq!("every 1d".parse::<Schedule>(), Schedule::every(1440));
        assert_eq!("every 7 days".parse::<Schedule>(), Schedule::every(10_080));
        assert_eq!(
            "every 8 days".parse::<Schedule>(),
            Err(CronError::IntervalRange { minutes: 11_520 })
        );
        assert_eq!("0".parse::<Schedule>(), Err(CronError::IntervalRange { minutes: 0 }));
        assert_eq!(
            "every 0m".parse::<Schedule>(),
            Err(CronError::IntervalRange { minutes: 0 })
        );
        assert!(matches!(
            "every 99999999999999999999999m".parse::<Schedule>(),
            Err(CronError::IntervalRange { .. })
        ));
        assert!(matches!(
            "every banana".parse::<Schedule>(),
            Err(CronError::IntervalSyntax { .. })
        ));
        assert!(matches!(
            "every".parse::<Schedule>(),
            Err(CronError::IntervalSyntax { .. })
        ));
        assert!(matches!(
            "60s".parse::<Schedule>(),
            Err(CronError::IntervalSyntax { .. })
        ));
        assert!(matches!(
            "every -5m".parse::<Schedule>(),
            Err(CronError::IntervalSyntax { .. })
        ));
        let s: Schedule = "  0 0 12 LW * ?  ".parse().unwrap();
        assert_eq!(s.source_text(), "0 0 12 LW * ?");
        assert_eq!(s.to_string(), "0 0 12 LW * ?");
        let s: Schedule = "@hourly".parse().unwrap();
        assert_eq!(s.source_text(), "@hourly");
        assert_eq!("60".parse::<Schedule>().unwrap().source_text(), "every 60 minutes");
        assert_eq!("".parse::<Schedule>(), Err(CronError::Empty));
    }

    #[test]
    fn names_are_case_insensitive_and_numbered_by_dialect() {
        let now = "2026-03-03T00:00:00Z";
        // Quartz: MON = 2; Unix: MON = 1. Both mean Monday.
        assert_eq!(
            cron_now("0 0 9 ? * mon", now).upcoming(at(now), 3),
            cron_now("0 0 9 ? * 2", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 9 * * Mon", now).upcoming(at(now), 3),
            cron_now("0 9 * * 1", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 0 9 ? * MON", now).upcoming(at(now), 3),
            cron_now("0 9 * * MON", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 0 9 1 jan-mar ?", now).upcoming(at(now), 3),
            cron_now("0 0 9 1 1-3 ?", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 0 9 ? * FRIL", now).upcoming(at(now), 3),
            cron_now("0 0 9 ? * 6L", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 0 9 ? * MON#1", now).upcoming(at(now), 3),
            cron_now("0 0 9 ? * 2#1", now).upcoming(at(now), 3)
        );
        assert_eq!(
            cron_now("0 0 9 ? * WED", now).upcoming(at(now), 3),
            cron_now("0 0 9 ? * 4", now).upcoming(at(now), 3)
        );
    }

    #[test]
    fn descriptions() {
        let now = "2026-03-03T00:00:00Z";
        let cases: &[(&str, &str)] = &[
            (
                "0 0 12 LW * ?",
                "Quartz `0 0 12 LW * ?`: at 12:00:00 on the last weekday of every month (UTC)",
            ),
            (
                "0 15 10 ? * 6L",
                "Quartz `0 15 10 ? * 6L`: at 10:15:00 on the last Friday of every month (UTC)",
            ),
            (
                "0 15 10 ? * 2#1",
                "Quartz `0 15 10 ? * 2#1`: at 10:15:00 on the first Monday of every month (UTC)",
            ),
            ("0 0/15 * * * ?", "Quartz `0 0/15 * * * ?`: every 15 minutes (UTC)"),
            ("0 0 12 * * ?", "Quartz `0 0 12 * * ?`: at 12:00:00 every day (UTC)"),
            (
                "0 15 10 ? * MON-FRI",
                "Quartz `0 15 10 ? * MON-FRI`: at 10:15:00 on Monday to Friday (UTC)",
            ),
            (
                "0 15 10 L * ?",
                "Quartz `0 15 10 L * ?`: at 10:15:00 on the last day of every month (UTC)",
            ),
            (
                "0 15 10 15W * ?",
                "Quartz `0 15 10 15W * ?`: at 10:15:00 on the weekday nearest day 15 of every month (UTC)",
            ),
            (
                "0 0 0 L-2 * ?",
                "Quartz `0 0 0 L-2 * ?`: at 00:00:00 on 2 days before the last day of every month (UTC)",
            ),
            (
                "0 11 11 11 11 ?",
                "Quartz `0 11 11 11 11 ?`: at 11:11:00 on day 11 in November (UTC)",
            ),
            ("0 0 9 ? * 1", "Quartz `0 0 9 ? * 1`: at 09:00:00 on Sunday (UTC)"),
            ("*/10 * * * *", "Unix cron `*/10 * * * *`: every 10 minutes (UTC)"),
            (
                "0 9 * * 1-5",
                "Unix cron `0 9 * * 1-5`: at 09:00 on Monday to Friday (UTC)",
            ),
            (
                "0 0 1 * *",
                "Unix cron `0 0 1 * *`: at 00:00 on day 1 of every month (UTC)",
            ),
            ("30 2 * * 7", "Unix cron `30 2 * * 7`: at 02:30 on Sunday (UTC)"),
            (
                "0 12 1 * 1",
                "Unix cron `0 12 1 * 1`: at 12:00 on day 1 of every month or on Monday (UTC)",
            ),
            (
                "0 30 9 L 2 ? 2027-2029",
                "Quartz `0 30 9 L 2 ? 2027-2029`: at 09:30:00 on the last day in February, in years 2027-2029 (UTC)",
            ),
            (
                "0 0 9-17 * * ?",
                "Quartz `0 0 9-17 * * ?`: at minute 0 during hours 9-17 (UTC)",
            ),
            ("0 5 * * * ?", "Quartz `0 5 * * * ?`: at minute 5 of every hour (UTC)"),
            ("* * * * *", "Unix cron `* * * * *`: every minute (UTC)"),
            ("*/30 * * * * ?", "Quartz `*/30 * * * * ?`: every 30 seconds (UTC)"),
            (
                "0 0 8 ? * SAT,SUN",
                "Quartz `0 0 8 ? * SAT,SUN`: at 08:00:00 on Saturday and Sunday (UTC)",
            ),
            (
                "0 0 8,20 1,15 * ?",
                "Quartz `0 0 8,20 1,15 * ?`: at 08:00:00 and 20:00:00 on days 1 and 15 of every month (UTC)",
            ),
            ("@weekly", "Unix cron `@weekly`: at 00:00 on Sunday (UTC)"),
            (
                "0 0 8 ? * FRI-MON",
                "Quartz `0 0 8 ? * FRI-MON`: at 08:00:00 on Friday to Monday (UTC)",
            ),
            (
                "0 0 8 ? * 1,3,5",
                "Quartz `0 0 8 ? * 1,3,5`: at 08:00:00 on Tuesday, Thursday and Sunday (UTC)",
            ),
            (
                "0 9 * * 1-7",
                "Unix cron `0 9 * * 1-7`: at 09:00 on Monday to Sunday (UTC)",
            ),
            (
                "0 12 */2 * 1,5",
                "Unix cron `0 12 */2 * 1,5`: at 12:00 on every 2nd day from day 1 of every month or on Monday and Friday (UTC)",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(cron_now(expr, now).describe(), *want);
        }
        assert_eq!(Schedule::every(60).unwrap().describe(), "every 60 minutes");
    }

    /// Found by the fuzzer: a day list written out of order (`22,2/2`) once
    /// underflowed while looking for a progression.
    #[test]
    fn an_unordered_day_list_is_described_in_order() {
        let text = cron_now("0 0 22,2/2 * *", "2026-03-03T00:00:00Z").describe();
        assert!(text.contains("day"), "{text}");
        assert!(!text.contains("22, 2"), "days should read in order: {text}");
    }

    /// Roster's own reading of a schedule, by brute force over days: the reference that
    /// croner's search (plus the candidate filter) is checked against.
    fn reference_next(spec: &Spec, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut date = t.date_naive();
        for _ in 0..(366 * 40) {
            if spec.day_matches(date) {
                for h in &spec.hours {
                    for m in &spec.minutes {
                        for s in &spec.seconds {
                            let c = date.and_hms_opt(*h, *m, *s)?.and_utc();
                            if c > t {
                                return Some(c);
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    fn reference_latest(spec: &Spec, since: DateTime<Utc>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut date = t.date_naive();
        while date >= since.date_naive() {
            if spec.day_matches(date) {
                for h in spec.hours.iter().rev() {
                    for m in spec.minutes.iter().rev() {
                        for s in spec.seconds.iter().rev() {
                            let c = date.and_hms_opt(*h, *m, *s)?.and_utc();
                            if c <= t {
                                return (c > since).then_some(c);
                            }
                        }
                    }
                }
            }
            date = date.pred_opt()?;
        }
        None
    }

    /// A small deterministic generator, so the test needs no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn croner_search_agrees_with_roster_day_rules() {
        let exprs = [
            "0 0 12 LW * ?",
            "0 15 10 ? * 6L",
            "0 15 10 ? * 2#1",
            "0 0/15 * * * ?",
            "0 15 10 L * ?",
            "0 15 10 15W * ?",
            "0 0 12 1W * ?",
            "0 0 12 31W * ?",
            "0 0 0 L-2 * ?",
            "0 0 0 L-30 * ?",
            "0 0 0 L,LW,L-3 * ?",
            "0 11 11 11 11 ?",
            "0 0 9 ? * 1",
            "*/10 * * * *",
            "0 9 * * 1-5",
            "0 12 1 * 1",
            "0 12 */2 * 1,5",
            "0 12 13 * 5",
            "30 2 * * 0",
            "15,45 */3 * * *",
            "0 30 9 L 2 ? 2027-2029",
            "10 5 3 ? * 1L,7#2",
            "59 59 23 LW 2 ?",
            "0 0 0 ? * 1#5",
            "0 0 8 ? * FRI-MON",
            "0 0 22-2/2 * * ?",
            "0 0 0 29 2 ?",
            "0 0 0 ? 2 5#5",
            "*/20 */7 * ? DEC-FEB 2#3,6L",
            "0 0 0 5-10 * ?",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let base = at("2026-01-01T00:00:00Z").timestamp();
        for expr in exprs {
            let s = cron_now(expr, "2026-01-01T00:00:00Z");
            let Kind::Cron(c) = &s.kind else { unreachable!() };
            for _ in 0..25 {
                let secs = base + rng.below(4 * 366 * 86_400) as i64;
                let t = DateTime::from_timestamp(secs, rng.below(1_000_000_000) as u32).unwrap();
                assert_eq!(s.next_after(t), reference_next(&c.spec, t), "`{expr}` next after {t}");
                let since = t - Duration::days(rng.below(120) as i64) - Duration::seconds(rng.below(86_400) as i64);
                assert_eq!(
                    s.missed_between(since, t),
                    reference_latest(&c.spec, since, t),
                    "`{expr}` missed between {since} and {t}"
                );
            }
        }
    }

    #[test]
    fn no_panics_on_garbage() {
        let pieces = [
            "*",
            "?",
            "L",
            "W",
            "LW",
            "L-",
            "L-3",
            "L-99",
            "#",
            "1#",
            "#1",
            "2#1",
            "6L",
            "15W",
            "W15",
            "0",
            "7",
            "8",
            "60",
            "99999999999999999999",
            "-",
            "-1",
            "1-",
            "1-5",
            "5-1",
            "/",
            "*/",
            "/5",
            "*/0",
            "0/15",
            "1-5/2",
            ",",
            "1,",
            ",1",
            "JAN",
            "DEC",
            "SUN",
            "sat",
            "MON-FRI",
            "FRI-MON",
            "FRIL",
            "MON#9",
            "2030",
            "1969",
            "2200",
            "@",
            "@daily",
            "@nope",
            "every",
            "m",
            "h",
            "é",
            "ß",
            "日",
            "\u{0}",
            "+5",
            "1.5",
            "L-0",
            "LW,1",
            "L,15W",
            "7L",
            "0L",
            "1#0",
            "?,1",
        ];
        let alphabet: Vec<char> = "0123456789*?/-,#LWlw@ JANFEBMONSUNxyz+.\té日\u{200b}".chars().collect();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let t = at("2026-05-09T12:34:56.789Z");
        let mut inputs: Vec<String> = Vec::new();
        for _ in 0..400 {
            let n = rng.below(9) as usize;
            let fields: Vec<&str> = (0..n)
                .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
                .collect();
            inputs.push(fields.join(" "));
        }
        for _ in 0..400 {
            let len = rng.below(40) as usize;
            inputs.push(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect(),
            );
        }
        // Field-shaped pieces, so that many inputs are valid and reach the evaluation paths.
        let quartz: [&[&str]; 7] = [
            &["0", "*/5", "0-30/10", "15,45", "*", "59"],
            &["0", "*/15", "5-10", "*", "59", "0/7"],
            &["0", "12", "*/2", "22-2", "*", "23"],
            &[
                "?", "*", "L", "LW", "L-3", "L-30", "15W", "1W", "31W", "1,15", "31", "30", "29", "*/2",
            ],
            &["*", "2", "FEB,APR", "JAN-MAR", "*/3", "11", "DEC-FEB"],
            &[
                "?", "*", "6L", "2#1", "MON-FRI", "L", "1", "FRI-MON", "5#5", "1L,2#2", "*/2",
            ],
            &["*", "2027", "2026-2030", "2020", "2030/2", "2199"],
        ];
        let unix: [&[&str]; 5] = [
            &["0", "*/10", "5,35", "*", "0-30/15"],
            &["0", "*/6", "9-17", "*"],
            &["*", "1", "13", "31", "*/2", "1-7", "29"],
            &["*", "2", "APR", "*/4", "JAN-JUN"],
            &["*", "0", "7", "1-5", "FRI-SUN", "MON,WED", "SAT"],
        ];
        for i in 0..400 {
            let fields: Vec<&str> = match i % 3 {
                0 => unix.iter().map(|p| p[rng.below(p.len() as u64) as usize]).collect(),
                1 => quartz[..6]
                    .iter()
                    .map(|p| p[rng.below(p.len() as u64) as usize])
                    .collect(),
                _ => quartz.iter().map(|p| p[rng.below(p.len() as u64) as usize]).collect(),
            };
            inputs.push(fields.join(" "));
        }
        inputs.extend(
            [
                "every 10080m",
                "every 4294967296m",
                "every 18446744073709551616",
                "\u{feff}0 0 12 * * ?",
            ]
            .map(String::from),
        );
        let mut accepted = 0;
        for input in &inputs {
            if let Ok(s) = input.parse::<Schedule>() {
                accepted += 1;
                let _ = s.describe();
                let _ = s.upcoming(t, 3);
                let _ = s.missed_between(t - Duration::days(30), t);
                let _ = s.next_after(DateTime::<Utc>::MAX_UTC);
                let _ = s.missed_between(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC + Duration::days(1));
            } else if let Err(e) = input.parse::<Schedule>() {
                assert!(!e.to_string().is_empty());
                assert!(!matches!(e, CronError::Engine { .. }), "`{input}`: {e}");
            }
        }
        // The garbage must reach the evaluation paths too, not only the parser's refusals.
        assert!(accepted >= 20, "only {accepted} of {} inputs accepted", inputs.len());
    }

    #[test]
    fn a_full_fetch_interval_that_is_not_a_number_of_hours_is_refused() {
        // Found by fuzzing (tests/fuzz, schedule): `full_every_hours = nan` (or `inf`, or a
        // negative number) in roster.toml was accepted, and with `nan` or `inf` the scheduler
        // never made the periodic full fetch.
        for hours in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            let c = ScheduleConfig {
                full_every_hours: hours,
                ..ScheduleConfig::default()
            };
            let e = c.schedule().unwrap_err();
            assert!(e.starts_with("full_every_hours ") && e.contains("0 or more"), "{e}");
        }
        for hours in [0.0, 0.5, 24.0] {
            let c = ScheduleConfig {
                full_every_hours: hours,
                ..ScheduleConfig::default()
            };
            assert!(c.schedule().is_ok(), "{hours}");
        }
    }
}
