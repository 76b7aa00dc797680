//! The one JSON log line of a request, and which requests get one
//! (`LOG_REQUESTS`). Never a raw session ID, ticket or token.

use crate::config::LogRequests;
use crate::control;
use crate::gate::Counts;
use serde_json::Value;

/// What the log line of a request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `allow`, `deny`, `bypass`, `control` or `error`.
    pub outcome: &'static str,
    /// The source that vouched, the reason of a denial, or what went wrong.
    pub detail: String,
    /// URL path.
    pub path: String,
    /// First 8 hex digits of the session hash.
    pub session: Option<String>,
    /// KV and lookup operations.
    pub counts: Counts,
    /// `login`, `logout`, `cookie_changed`, `bad_signal`, `login_failed`.
    pub event: Option<&'static str>,
    /// Why a ticket sent with the request was not used.
    pub ticket: Option<String>,
    /// The user, when known.
    pub user: Option<String>,
    /// What failed, when something did.
    pub error: Option<String>,
}

impl LogLine {
    /// A line for a request to `path`, to be filled in as it is handled.
    pub fn new(path: &str) -> LogLine {
        LogLine {
            outcome: "control",
            detail: "control".into(),
            path: path.to_string(),
            session: None,
            counts: Counts::default(),
            event: None,
            ticket: None,
            user: None,
            error: None,
        }
    }

    /// Sets the outcome and its detail.
    pub fn set(&mut self, outcome: &'static str, detail: impl Into<String>) {
        self.outcome = outcome;
        self.detail = detail.into();
    }

    /// Whether this request gets a line under `mode`. With `events`: denials,
    /// errors, degraded answers (`stale`), sessions learned from the lookup,
    /// rejected tickets, store or lookup trouble, session events, and control
    /// requests other than the health check; not the everyday allowed or
    /// public request.
    pub fn worth_writing(&self, mode: LogRequests) -> bool {
        if mode == LogRequests::All {
            return true;
        }
        match self.outcome {
            "deny" | "error" => true,
            "control" => self.path.strip_prefix(control::PREFIX) != Some("health"),
            _ => {
                self.event.is_some()
                    || self.ticket.is_some()
                    || self.error.is_some()
                    || matches!(self.detail.as_str(), "stale" | "lookup")
            }
        }
    }

    /// The JSON line, with the status and the time taken.
    pub fn to_json(&self, status: u16, ms: u64) -> Value {
        obj!({
            "outcome": self.outcome,
            "detail": self.detail.as_str(),
            "status": status,
            "path": self.path.as_str(),
            "session": self.session.as_deref(),
            "kv_reads": self.counts.kv_reads,
            "kv_writes": self.counts.kv_writes,
            "lookups": self.counts.lookups,
            "state_calls": self.counts.state_calls,
            "ms": ms,
            "event": self.event,
            "ticket": self.ticket.as_deref(),
            "user": self.user.as_deref(),
            "error": self.error.as_deref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(outcome: &'static str, detail: &str) -> LogLine {
        let mut l = LogLine::new("/x");
        l.set(outcome, detail);
        l
    }

    #[test]
    fn events_mode_skips_everyday_requests_only() {
        let quiet = LogRequests::Events;
        assert!(!line("allow", "ticket").worth_writing(quiet));
        assert!(!line("allow", "kv").worth_writing(quiet));
        assert!(!line("bypass", "public").worth_writing(quiet));
        assert!(line("allow", "stale").worth_writing(quiet));
        assert!(line("allow", "lookup").worth_writing(quiet));
        assert!(line("deny", "no_session").worth_writing(quiet));
        assert!(line("error", "origin_unreachable").worth_writing(quiet));
        let mut login = line("bypass", "public");
        login.event = Some("login");
        assert!(login.worth_writing(quiet));
        let mut bad_ticket = line("allow", "kv");
        bad_ticket.ticket = Some("bad_mac".into());
        assert!(bad_ticket.worth_writing(quiet));
        let mut health = LogLine::new("/.edge-session/health");
        health.set("control", "control");
        assert!(!health.worth_writing(quiet));
        assert!(LogLine::new("/.edge-session/revoke").worth_writing(quiet));
        assert!(line("allow", "ticket").worth_writing(LogRequests::All));
    }

    #[test]
    fn the_line_has_every_field() {
        let mut l = line("allow", "kv");
        l.user = Some("김철수".into());
        let v = l.to_json(200, 3);
        for field in [
            "outcome",
            "detail",
            "status",
            "path",
            "session",
            "kv_reads",
            "kv_writes",
            "lookups",
            "state_calls",
            "ms",
            "event",
            "ticket",
            "user",
            "error",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["user"], "김철수");
    }
}
