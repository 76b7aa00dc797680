//! The two stores the gate consults: a key-value store (Workers KV) and the
//! origin's lookup endpoint, as small traits with in-memory fakes for host tests.

use crate::config::{Config, Millis, UnixMillis};
use crate::data::{StateReply, StateRequest};
use crate::session::{
    user_index_key, EndReason, Ending, SessionHash, SessionRecord, Stored, KV_MIN_TTL_SECS,
};
use crate::signals::{check_claims, check_user};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// A store operation failed (network, rate limit, timeout...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// A key-value store with expiring entries: what the gate needs of Workers KV.
// Workers run single-threaded, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Kv {
    /// The value under `key`, `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` under `key`, expiring after `ttl_secs` (at least 60).
    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError>;
    /// Removes `key` (no error when it is absent).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// A session as the origin's lookup endpoint describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LookupSession {
    /// The user id (non-empty).
    pub user: String,
    /// Claims, if any.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// Creation time, unix seconds.
    #[serde(default)]
    pub created: Option<u64>,
    /// Last use, unix seconds.
    #[serde(default)]
    pub last_seen: Option<u64>,
}

/// What the lookup endpoint said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupAnswer {
    /// 200 with a valid body.
    Valid(LookupSession),
    /// 404: no such session.
    NotFound,
    /// Anything else: why the lookup could not answer.
    Unavailable(String),
}

impl LookupAnswer {
    /// Interprets a lookup response (status and body) per the lookup protocol.
    /// A 200 answer is validated exactly as a login signal is (user, claims).
    pub fn from_response(status: u16, body: &str) -> LookupAnswer {
        match status {
            200 => match serde_json::from_str::<LookupSession>(body) {
                Ok(s) => match check_user(&s.user)
                    .and_then(|()| s.claims.as_ref().map_or(Ok(()), check_claims))
                {
                    Ok(()) => LookupAnswer::Valid(s),
                    Err(e) => LookupAnswer::Unavailable(format!("lookup answer {e}")),
                },
                Err(e) => LookupAnswer::Unavailable(format!(
                    "lookup answered 200 with an invalid body ({e})"
                )),
            },
            404 => LookupAnswer::NotFound,
            other => LookupAnswer::Unavailable(format!("lookup answered {other}")),
        }
    }
}

/// The origin's server-side session lookup.
#[allow(async_fn_in_trait)]
pub trait Lookup {
    /// Asks about one raw session ID (sent in the body, never in a URL).
    async fn lookup(&self, session_id: &str) -> LookupAnswer;
}

/// The sessions' data: one Durable Object per session (binding `SESSION_STATE`),
/// which applies requests one at a time ([`crate::data::serve`]).
#[allow(async_fn_in_trait)]
pub trait SessionStates {
    /// Sends `request` to the session's object and returns its reply.
    async fn call(
        &self,
        hash: &SessionHash,
        request: &StateRequest,
    ) -> Result<StateReply, StoreError>;
}

/// No session data (the worker runs without the `SESSION_STATE` binding).
pub struct NoStates;

impl Unreachable for NoStates {
    fn unreached() -> Self {
        NoStates
    }
}

impl SessionStates for NoStates {
    async fn call(&self, _: &SessionHash, _: &StateRequest) -> Result<StateReply, StoreError> {
        Err(StoreError(format!("no {} binding", crate::data::BINDING)))
    }
}

/// A store that can be had in a form that never answers: the gate run over
/// such stores decides, in one poll and without any I/O, every request that
/// needs no store ([`crate::gate::Gate::finish_now`], and the stores
/// [`crate::gate::Gate::admit_answered`] has no answer for); one that needs a
/// store stays pending, and nothing has started.
pub trait Unreachable {
    /// The store in that form.
    fn unreached() -> Self;
}

/// A write the gate wants done; most run after the response, in `ctx.wait_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Store a value with an expiration.
    Put {
        /// KV key.
        key: String,
        /// Value.
        value: String,
        /// Expiration TTL, seconds.
        ttl_secs: u64,
    },
    /// Delete a key.
    Delete {
        /// KV key.
        key: String,
    },
    /// Record in a session's KV record that it has data of at least this
    /// version (read, changed, written back: KV has no compare-and-set, and a
    /// lost race only delays what the ticket already carries).
    MarkData {
        /// KV key of the record.
        key: String,
        /// The data's version.
        version: u64,
        /// The idle and absolute limits of a session, and of a remembered one
        /// ([`Config::limits`]): the expiration follows the record as KV has
        /// it, as for any record write.
        limits: [(Millis, Millis); 2],
        /// The time of the request.
        now: UnixMillis,
    },
    /// End a session's data in its Durable Object (a no-op without the binding).
    EndState {
        /// The session.
        hash: SessionHash,
        /// When the object may forget the session (unix ms).
        until: UnixMillis,
    },
}

impl StoreOp {
    /// Runs the operation against `kv` (and the sessions' objects, when bound).
    pub async fn apply<K: Kv, S: SessionStates>(
        &self,
        kv: &K,
        states: Option<&S>,
    ) -> Result<(), StoreError> {
        match self {
            StoreOp::Put {
                key,
                value,
                ttl_secs,
            } => kv.put(key, value, *ttl_secs).await,
            StoreOp::Delete { key } => kv.delete(key).await,
            StoreOp::MarkData {
                key,
                version,
                limits,
                now,
            } => {
                let Some(Stored::Live(mut record)) =
                    kv.get(key).await?.and_then(|j| Stored::parse(&j))
                else {
                    return Ok(());
                };
                if record.data_version >= *version {
                    return Ok(());
                }
                record.data_version = *version;
                // Serialising plain data to JSON cannot fail.
                let value = serde_json::to_string(&record).unwrap_or_default();
                let (idle, absolute) = limits[usize::from(record.remember)];
                let ttl_secs = record.kv_ttl_secs_within(idle, absolute, *now);
                kv.put(key, &value, ttl_secs).await
            }
            StoreOp::EndState { hash, until } => match states {
                Some(states) => {
                    let end = StateRequest::end(*until);
                    states.call(hash, &end).await.map(drop)
                }
                None => Ok(()),
            },
        }
    }

    /// Whether it goes to a Durable Object rather than KV.
    pub fn is_state(&self) -> bool {
        matches!(self, StoreOp::EndState { .. })
    }

    /// What it does to which kind of key, for logs: `put s:`, `delete u:`, `end state`...
    pub fn kind(&self) -> String {
        let verb = match self {
            StoreOp::Put { .. } => "put",
            StoreOp::Delete { .. } => "delete",
            StoreOp::MarkData { .. } => "mark",
            StoreOp::EndState { .. } => return "end state".into(),
        };
        format!("{verb} {}", self.key().get(..2).unwrap_or(""))
    }

    /// The KV key it touches (empty for a Durable Object's).
    pub fn key(&self) -> &str {
        match self {
            StoreOp::Put { key, .. } | StoreOp::Delete { key } | StoreOp::MarkData { key, .. } => {
                key
            }
            StoreOp::EndState { .. } => "",
        }
    }
}

/// Adds the `later` writes of a request (after the origin answered) to the
/// `earlier` ones (its admission's): a write of a KV key that `earlier`
/// already writes takes that write's place, so that one request writes a
/// key once (KV takes one write per second per key). A [`StoreOp::MarkData`]
/// never replaces a write: it only adds to what the record says.
pub fn merge(earlier: &mut Vec<StoreOp>, later: Vec<StoreOp>) {
    for op in later {
        let replaces = match op {
            StoreOp::Put { .. } | StoreOp::Delete { .. } => earlier
                .iter()
                .position(|e| !e.key().is_empty() && e.key() == op.key()),
            _ => None,
        };
        match replaces {
            Some(i) => earlier[i] = op,
            None => earlier.push(op),
        }
    }
}

/// Writes the session record only (a touch or a revalidation).
pub fn put_record(
    cfg: &Config,
    hash: &SessionHash,
    record: &SessionRecord,
    now: UnixMillis,
) -> StoreOp {
    StoreOp::Put {
        key: hash.record_key(),
        // Serialising plain data to JSON cannot fail.
        value: serde_json::to_string(record).unwrap_or_default(),
        ttl_secs: record.kv_ttl_secs(cfg, now),
    }
}

/// Writes a new session: its record and its entry in the per-user index.
pub fn create_ops(
    cfg: &Config,
    hash: &SessionHash,
    record: &SessionRecord,
    now: UnixMillis,
) -> Vec<StoreOp> {
    vec![
        put_record(cfg, hash, record, now),
        StoreOp::Put {
            key: user_index_key(&record.user, hash),
            value: String::new(),
            ttl_secs: record.index_ttl_secs(cfg, now),
        },
    ]
}

/// Ends a session: with an origin lookup configured, its record is replaced
/// by an [`Ending`] mark that outlives any session it could be (ABSOLUTE_TIMEOUT),
/// so the lookup cannot bring it back; without one it is deleted. The index
/// entry is deleted when the user is known.
pub fn end_ops(
    cfg: &Config,
    hash: &SessionHash,
    user: Option<&str>,
    reason: EndReason,
    now: UnixMillis,
) -> Vec<StoreOp> {
    let mut ops = remove_ops(hash, user);
    if cfg.lookup.is_some() {
        ops[0] = mark(hash, reason, now, lookup_mark_ttl(cfg));
    }
    ops
}

/// Ends a session that died of idleness or age (`record`, found dead at
/// `now`): in both modes its record is replaced by an [`Ending`] mark that
/// stays as long as the record itself would have (until
/// [`crate::session::DEAD_SESSION_MEMORY`] after its deadline; with a lookup
/// at least ABSOLUTE_TIMEOUT, as for any end), so a browser that comes back
/// without a ticket is still told how the session died, while a mark can
/// never be allowed, touched or given data. The index entry is deleted.
pub fn timeout_ops(
    cfg: &Config,
    hash: &SessionHash,
    record: &SessionRecord,
    reason: EndReason,
    now: UnixMillis,
) -> Vec<StoreOp> {
    let mut ops = remove_ops(hash, Some(&record.user));
    let mut ttl_secs = record.kv_ttl_secs(cfg, now);
    if cfg.lookup.is_some() {
        ttl_secs = ttl_secs.max(lookup_mark_ttl(cfg));
    }
    ops[0] = mark(hash, reason, now, ttl_secs);
    ops
}

/// How long the mark of an ended session stays while a lookup is configured:
/// past the end of any session it could have been.
fn lookup_mark_ttl(cfg: &Config) -> u64 {
    (cfg.absolute_timeout / 1000).max(KV_MIN_TTL_SECS)
}

/// The write that replaces a session's record by the mark of its end.
fn mark(hash: &SessionHash, reason: EndReason, now: UnixMillis, ttl_secs: u64) -> StoreOp {
    let mark = Ending { ended: now, reason };
    StoreOp::Put {
        key: hash.record_key(),
        // Serialising plain data to JSON cannot fail.
        value: serde_json::to_string(&mark).unwrap_or_default(),
        ttl_secs,
    }
}

/// Deletes a session, and its index entry when the user is known.
pub fn remove_ops(hash: &SessionHash, user: Option<&str>) -> Vec<StoreOp> {
    let mut ops = vec![StoreOp::Delete {
        key: hash.record_key(),
    }];
    if let Some(user) = user {
        ops.push(StoreOp::Delete {
            key: user_index_key(user, hash),
        });
    }
    ops
}

#[cfg(test)]
pub(crate) mod memory {
    //! In-memory fakes of the stores, with operation counters and fault switches.

    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, HashMap};

    /// An in-memory KV. Expirations are recorded, not enforced (tests read them).
    #[derive(Default)]
    pub struct MemoryKv {
        pub data: RefCell<BTreeMap<String, (String, u64)>>,
        pub reads: Cell<u32>,
        pub writes: Cell<u32>,
        pub deletes: Cell<u32>,
        pub lists: Cell<u32>,
        /// When set, every operation fails.
        pub down: Cell<bool>,
        /// When set, every put and delete fails (429, as past one write per second per key).
        pub writes_down: Cell<bool>,
        /// When set, no operation ever answers ([`Unreachable`]).
        pub never: bool,
    }

    impl MemoryKv {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.get() {
                Err(StoreError("kv is down".into()))
            } else {
                Ok(())
            }
        }

        fn check_write(&self) -> Result<(), StoreError> {
            self.check()?;
            if self.writes_down.get() {
                return Err(StoreError("KV PUT failed: 429 Too Many Requests".into()));
            }
            Ok(())
        }

        /// The live record of a session (an ended session's mark is none).
        pub fn record(&self, hash: &SessionHash) -> Option<SessionRecord> {
            match self.stored(hash)? {
                crate::session::Stored::Live(r) => Some(r),
                crate::session::Stored::Ended(_) => None,
            }
        }

        /// What KV holds for a session; panics on a value no code would write.
        pub fn stored(&self, hash: &SessionHash) -> Option<crate::session::Stored> {
            let data = self.data.borrow();
            data.get(&hash.record_key())
                .map(|(v, _)| crate::session::Stored::parse(v).expect("a session or its mark"))
        }

        pub fn ttl(&self, key: &str) -> Option<u64> {
            self.data.borrow().get(key).map(|(_, ttl)| *ttl)
        }

        pub fn keys(&self) -> Vec<String> {
            self.data.borrow().keys().cloned().collect()
        }
    }

    impl Unreachable for MemoryKv {
        fn unreached() -> Self {
            MemoryKv {
                never: true,
                ..MemoryKv::default()
            }
        }
    }

    impl Unreachable for MemoryStates {
        fn unreached() -> Self {
            MemoryStates {
                never: true,
                ..MemoryStates::default()
            }
        }
    }

    impl Unreachable for FakeLookup {
        fn unreached() -> Self {
            FakeLookup {
                never: true,
                ..FakeLookup::default()
            }
        }
    }

    impl Kv for MemoryKv {
        async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
            if self.never {
                return std::future::pending().await;
            }
            self.check()?;
            self.reads.set(self.reads.get() + 1);
            Ok(self.data.borrow().get(key).map(|(v, _)| v.clone()))
        }
        async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
            if self.never {
                return std::future::pending().await;
            }
            self.check_write()?;
            assert!(ttl_secs >= 60, "KV refuses TTLs under 60 s");
            self.writes.set(self.writes.get() + 1);
            self.data
                .borrow_mut()
                .insert(key.into(), (value.into(), ttl_secs));
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            if self.never {
                return std::future::pending().await;
            }
            self.check_write()?;
            self.deletes.set(self.deletes.get() + 1);
            self.data.borrow_mut().remove(key);
            Ok(())
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
            if self.never {
                return std::future::pending().await;
            }
            self.check()?;
            self.lists.set(self.lists.get() + 1);
            Ok(self
                .data
                .borrow()
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        }
    }

    /// In-memory session objects, answering as the Durable Object does.
    #[derive(Default)]
    pub struct MemoryStates {
        pub objects: RefCell<HashMap<String, crate::data::DataState>>,
        pub reads: Cell<u32>,
        pub writes: Cell<u32>,
        /// When set, every call fails.
        pub down: Cell<bool>,
        /// When set, every call that is not a read fails.
        pub writes_down: Cell<bool>,
        /// When set, no call ever answers ([`Unreachable`]).
        pub never: bool,
    }

    impl MemoryStates {
        pub fn state(&self, hash: &SessionHash) -> crate::data::DataState {
            self.objects
                .borrow()
                .get(&hash.0)
                .cloned()
                .unwrap_or_default()
        }
    }

    impl SessionStates for MemoryStates {
        async fn call(
            &self,
            hash: &SessionHash,
            request: &StateRequest,
        ) -> Result<StateReply, StoreError> {
            if self.never {
                return std::future::pending().await;
            }
            let write = !request.is_read();
            if self.down.get() || (write && self.writes_down.get()) {
                return Err(StoreError("the session object is unreachable".into()));
            }
            let counter = if write { &self.writes } else { &self.reads };
            counter.set(counter.get() + 1);
            let stored = self.objects.borrow().get(&hash.0).cloned();
            let served = crate::data::serve(stored, request);
            if let Some(state) = served.store {
                self.objects.borrow_mut().insert(hash.0.clone(), state);
            }
            Ok(served.reply)
        }
    }

    /// A fake lookup endpoint: answers from a map of raw IDs, or is down.
    #[derive(Default)]
    pub struct FakeLookup {
        pub sessions: RefCell<HashMap<String, LookupSession>>,
        pub calls: Cell<u32>,
        pub down: Cell<bool>,
        /// When set, it never answers ([`Unreachable`]).
        pub never: bool,
    }

    impl FakeLookup {
        pub fn with(id: &str, user: &str) -> FakeLookup {
            let l = FakeLookup::default();
            l.add(id, user);
            l
        }
        pub fn add(&self, id: &str, user: &str) {
            self.sessions.borrow_mut().insert(
                id.into(),
                LookupSession {
                    user: user.into(),
                    claims: None,
                    created: None,
                    last_seen: None,
                },
            );
        }
    }

    impl Lookup for FakeLookup {
        async fn lookup(&self, session_id: &str) -> LookupAnswer {
            if self.never {
                return std::future::pending().await;
            }
            self.calls.set(self.calls.get() + 1);
            if self.down.get() {
                return LookupAnswer::Unavailable("lookup is down".into());
            }
            match self.sessions.borrow().get(session_id) {
                Some(s) => LookupAnswer::Valid(s.clone()),
                None => LookupAnswer::NotFound,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_answers_follow_the_protocol() {
        let ok = LookupAnswer::from_response(
            200,
            r#"{"user":"bob","claims":{"r":1},"created":10,"last_seen":20}"#,
        );
        match ok {
            LookupAnswer::Valid(s) => {
                assert_eq!(s.user, "bob");
                assert_eq!(s.created, Some(10));
                assert_eq!(s.last_seen, Some(20));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(LookupAnswer::from_response(404, ""), LookupAnswer::NotFound);
        for (status, body) in [
            (200, "not json"),
            (200, r#"{"user":""}"#),
            (200, r#"{"claims":{}}"#),
            (200, r#"{"user":"a","claims":[1]}"#),
            (200, r#"{"user":"a\r\nX-Injected: 1"}"#),
            (200, r#"{"user":"a\u0000b"}"#),
            (200, &format!(r#"{{"user":"{}"}}"#, "u".repeat(257))),
            (
                200,
                &format!(r#"{{"user":"a","claims":{{"c":"{}"}}}}"#, "x".repeat(2100)),
            ),
            (200, r#"{"user":"a","created":-5}"#),
            (200, r#"{"user":"a","created":"yesterday"}"#),
            (500, ""),
            (401, ""),
            (302, ""),
        ] {
            assert!(
                matches!(
                    LookupAnswer::from_response(status, body),
                    LookupAnswer::Unavailable(_)
                ),
                "{status} {body}"
            );
        }
    }
}
