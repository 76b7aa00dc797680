//! Who a request is, as the origin is told: the identity headers
//! (`X-Session-User`, `-Claims`, `-Source`, the session data headers) and the
//! tier that vouched. The gate makes one ([`crate::gate`]); the assertion
//! signs it and the header plan forwards it.

use crate::config::UnixMillis;
use crate::data::{self, DataView};
use crate::session::SessionRecord;
use crate::signals::percent_encode_user;
use std::fmt;

/// Which tier vouched for an allowed request (`X-Session-Source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fresh ticket; no store was read.
    Ticket,
    /// The KV record.
    Kv,
    /// The origin's lookup endpoint.
    Lookup,
    /// A stale ticket while the stores fail (degraded mode).
    Stale,
    /// A guest session's Durable Object (guests are never in KV).
    State,
}

impl Source {
    /// The source as it appears in `X-Session-Source` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ticket => "ticket",
            Source::Kv => "kv",
            Source::Lookup => "lookup",
            Source::Stale => "stale",
            Source::State => "state",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who the request is, as the origin is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `X-Session-User`.
    pub user: String,
    /// `X-Session-Claims`, when there are claims.
    pub claims: Option<String>,
    /// `X-Session-Source`.
    pub source: Source,
    /// When the session was created (the assertion's `auth_time`).
    pub created: UnixMillis,
    /// The session's data (`X-Session-Data`), as far as it could be read.
    pub data: DataView,
    /// A guest: a session without a user (no `X-Session-User`, no claims).
    pub guest: bool,
    /// A remembered session ("remember me").
    pub remember: bool,
}

impl Identity {
    /// The identity of a session as `source` vouched for it (no data read yet).
    pub fn of(record: &SessionRecord, source: Source) -> Identity {
        Identity {
            user: record.user.clone(),
            claims: record.claims_json(),
            source,
            created: record.created,
            data: DataView::None,
            guest: record.guest,
            remember: record.remember,
        }
    }

    /// The identity headers for the forwarded request, in order. The user id
    /// is percent-encoded UTF-8 ([`crate::signals::percent_encode_user`]), so
    /// any script travels intact and no byte can split the header.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(4);
        if !self.guest {
            out.push(("X-Session-User", percent_encode_user(&self.user)));
        }
        if let Some(claims) = self.claims.as_ref().filter(|_| !self.guest) {
            out.push(("X-Session-Claims", claims.clone()));
        }
        out.push(("X-Session-Source", self.source.as_str().to_string()));
        match &self.data {
            DataView::None => {}
            DataView::Present { version, json } => {
                out.push((data::DATA, json.to_string()));
                out.push((data::VERSION, version.to_string()));
            }
            DataView::Unavailable => out.push((data::STATUS, "unavailable".into())),
        }
        out
    }
}
