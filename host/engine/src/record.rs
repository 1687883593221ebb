//! The record of a run's plan, operation by operation, as administrators export it.

use std::collections::HashMap;

use roster_model::Outcome;
use roster_store::{ResultRow, Store, StoreError};
use serde::Serialize;

/// One row of a run's export: the operation, why, and what happened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExportRow {
    /// Sequence in the plan.
    pub seq: i64,
    /// Operation kind.
    pub kind: String,
    /// User or group.
    pub subject: String,
    /// Why.
    pub reason: String,
    /// Done, failed, or not applied.
    pub outcome: Outcome,
    /// Last HTTP status.
    pub status: Option<i64>,
    /// HTTP requests it took, retries included.
    pub attempts: Option<i64>,
    /// Message.
    pub message: Option<String>,
    /// When it finished (RFC 3339, UTC).
    #[serde(with = "roster_model::time::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
}

/// A run's per-object results (every operation of its plan, with its outcome).
pub fn export_rows(store: &Store, run_id: i64) -> Result<Vec<ExportRow>, StoreError> {
    let run = store.run(run_id)?;
    let Some(plan_id) = run.plan_id else {
        return Ok(Vec::new());
    };
    let results: HashMap<i64, ResultRow> = store.results(run_id)?.into_iter().map(|r| (r.seq, r)).collect();
    Ok(store
        .plan_ops(&plan_id)?
        .into_iter()
        .map(|(seq, kind, subject, _, reason)| {
            let r = results.get(&seq);
            ExportRow {
                seq,
                kind,
                subject,
                reason,
                outcome: r.map_or(Outcome::NotApplied, |r| r.outcome),
                status: r.and_then(|r| r.status),
                attempts: r.map(|r| r.attempts),
                message: r.and_then(|r| r.message.clone()),
                finished_at: r.map(|r| r.finished_at),
            }
        })
        .collect())
}

/// CSV (RFC 4180) of export rows. A text cell that a spreadsheet would take for a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`: names and
/// messages come from identity providers and Bitbucket, and opening an export must not run them.
pub fn export_csv(rows: &[ExportRow]) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from("seq,kind,subject,reason,outcome,status,attempts,message,finished_at\n");
    for r in rows {
        let fields = [
            r.seq.to_string(),
            cell(&r.kind),
            cell(&r.subject),
            cell(&r.reason),
            cell(r.outcome.as_str()),
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.attempts.map(|a| a.to_string()).unwrap_or_default(),
            cell(r.message.as_deref().unwrap_or("")),
            // The same RFC 3339 the JSON export and the API give.
            r.finished_at.and_then(roster_model::time::format).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        let row = |subject: &str, message: Option<&str>| ExportRow {
            seq: 1,
            kind: "create-user".into(),
            subject: subject.into(),
            reason: "new in hr".into(),
            outcome: Outcome::Done,
            status: Some(201),
            attempts: Some(1),
            message: message.map(str::to_string),
            finished_at: Some(7_000),
        };
        let rows = [
            row("=HYPERLINK(\"http://evil\",\"x\")", Some("+1")),
            row("-2+3", Some("@SUM(A1)")),
            row("\tcmd", Some("\r=1")),
            row("alice", Some("a-b=c")),
        ];
        let csv = export_csv(&rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[1],
            "1,create-user,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",new in hr,done,201,1,'+1,1970-01-01T00:00:07.000Z"
        );
        assert_eq!(
            lines[2],
            "1,create-user,'-2+3,new in hr,done,201,1,'@SUM(A1),1970-01-01T00:00:07.000Z"
        );
        assert!(csv.contains(",'\tcmd,") && csv.contains(",\"'\r=1\","), "{csv:?}");
        assert_eq!(
            lines.last().unwrap(),
            &"1,create-user,alice,new in hr,done,201,1,a-b=c,1970-01-01T00:00:07.000Z"
        );
    }
}
