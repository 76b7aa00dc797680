//! Session data: the small store of values a site keeps per session (a cart,
//! a draft, flash messages), held at the edge so that no server needs a
//! session store of its own.
//!
//! The origin reads it in `X-Session-Data` (compact JSON, ASCII) and
//! `X-Session-Data-Version`, and changes it with a response header
//! `X-Edge-Session-Data: <JSON object>`, a merge patch at the top level: each
//! member replaces that key's value whole, `null` removes the key. The truth
//! is the session's Durable Object, which applies patches one at a time
//! ([`DataState::apply`]): requests in flight together that change different
//! keys all keep their changes.
//!
//! This module is plain Rust: the patch parser (strict: one object, no
//! duplicate keys at any depth), the merge with its size limit and version
//! rule, what the object answers ([`serve`]), the wire format between the
//! worker and the object, and the isolate's cache of data by version.

use crate::session::{ascii_json, printable};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// Request header with the session's data (compact JSON, ASCII).
pub const DATA: &str = "X-Session-Data";
/// Request header with the data's version.
pub const VERSION: &str = "X-Session-Data-Version";
/// Request header that says the data exists but cannot be read now.
pub const STATUS: &str = "X-Session-Data-Status";
/// Response header with a change (merge patch) to the request's session data.
pub const PATCH: &str = "x-edge-session-data";
pub use crate::config::{DEFAULT_DATA_LIMIT as DEFAULT_LIMIT, MAX_DATA_LIMIT as MAX_LIMIT};
/// The longest `X-Edge-Session-Data` accepted, in bytes: a change may remove
/// many keys, but it is never much larger than the data it changes.
pub const MAX_PATCH: usize = 4 * MAX_LIMIT;
/// The Durable Object binding that holds session data.
pub const BINDING: &str = "SESSION_STATE";

/// A change to a session's data: the members of a JSON object, `null` for a removal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch(pub Map<String, Value>);

impl Patch {
    /// Parses a patch header: JSON text of one object, with no key twice in
    /// any object (parsers disagree on which duplicate wins), nesting within
    /// serde_json's limit of 128 and numbers within a double's range.
    ///
    /// ```
    /// use edge_session::data::Patch;
    /// assert!(Patch::parse(r#"{"cart":[1,2],"flash":null}"#).is_ok());
    /// assert!(Patch::parse("[1,2]").is_err());
    /// assert!(Patch::parse(r#"{"a":1,"a":2}"#).is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Patch, String> {
        if text.len() > MAX_PATCH {
            return Err(format!(
                "X-Edge-Session-Data is {} bytes; at most {MAX_PATCH} are accepted",
                text.len()
            ));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let value = Strict
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| format!("X-Edge-Session-Data is not valid JSON ({e})"))?;
        match value {
            Value::Object(members) => Ok(Patch(members)),
            _ => Err("X-Edge-Session-Data is not a JSON object".into()),
        }
    }

    /// Whether the patch changes nothing (`{}`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether applied to no data it leaves some: it sets at least one key
    /// (a patch of removals only stores nothing, and creates no guest session).
    pub fn stores_something(&self) -> bool {
        self.0.values().any(|v| !v.is_null())
    }

    /// Refuses a patch whose own values already take the data over `limit`:
    /// the result holds at least every member the patch sets, so this needs
    /// no round trip to the object.
    pub fn check_size(&self, limit: usize) -> Result<(), String> {
        let mut empty = DataState::default();
        empty
            .apply(self, limit)
            .map(drop)
            .map_err(|r| r.to_string())
    }
}

/// Decodes a response header value as the runtime hands it over (each byte
/// one character, as the Fetch standard reads header bytes) into text: bytes
/// of UTF-8 are read as UTF-8, `\uXXXX` escapes stay for the JSON parser.
///
/// ```
/// use edge_session::data::header_text;
/// assert_eq!(header_text("{\"a\":\"\u{c3}\u{a9}\"}").unwrap(), "{\"a\":\"é\"}");
/// assert!(header_text("\u{ff}").is_err());
/// ```
pub fn header_text(raw: &str) -> Result<String, String> {
    if raw.is_ascii() {
        return Ok(raw.to_string());
    }
    let bytes = raw
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>();
    // A character past U+00FF did not come from a byte: the text is already decoded.
    match bytes {
        None => Ok(raw.to_string()),
        Some(bytes) => String::from_utf8(bytes)
            .map_err(|_| "X-Edge-Session-Data is not valid UTF-8".to_string()),
    }
}

/// Builds a `serde_json::Value`, refusing an object that names a key twice.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if members.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("the key {key:?} appears twice")));
            }
        }
        Ok(Value::Object(members))
    }
}

/// What a session's Durable Object holds: the data (as the exact
/// `X-Session-Data` value), its version, and whether the session ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataState {
    /// 0 before the first change, one more per applied change (also after the data was removed).
    #[serde(rename = "v", default)]
    pub version: u64,
    /// Compact ASCII JSON of a non-empty object; `None` when there is no data.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The session ended: its data is gone and no change is taken.
    #[serde(rename = "e", default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
    /// When no session this object holds can still be alive (unix ms; 0:
    /// unknown), the latest deadline any request named: the object forgets
    /// everything only then (see [`on_alarm`]).
    #[serde(rename = "u", default, skip_serializing_if = "is_zero_u64")]
    pub until: u64,
    /// A guest session's creation (unix ms; 0: not a guest). A guest is never
    /// in KV: its object is where its life is kept.
    #[serde(rename = "gc", default, skip_serializing_if = "is_zero_u64")]
    pub guest_created: u64,
    /// A guest session's last use (unix ms), moved at most once per `TOUCH_INTERVAL`.
    #[serde(rename = "gl", default, skip_serializing_if = "is_zero_u64")]
    pub guest_seen: u64,
    /// A guest session's idle limit (ms; 0: none known), as the worker last
    /// sent it: an abandoned guest's object empties itself once idle that
    /// long ([`DataState::forget_at`]), not only at its absolute deadline.
    #[serde(rename = "gi", default, skip_serializing_if = "is_zero_u64")]
    pub guest_idle: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Why a patch was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The session ended.
    Ended,
    /// The result would exceed `SESSION_DATA_LIMIT`.
    TooLarge {
        /// The result's size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Ended => f.write_str("the session has ended"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "X-Edge-Session-Data would make the session data {size} bytes; SESSION_DATA_LIMIT is {limit}"
            ),
        }
    }
}

impl DataState {
    /// Applies a patch, all of it or nothing: members set or (with `null`)
    /// remove their key; a result over `limit` bytes is refused. `Ok(true)`
    /// when the version moved (an empty patch changes nothing and is not counted).
    ///
    /// ```
    /// use edge_session::data::{DataState, Patch};
    /// let mut s = DataState::default();
    /// s.apply(&Patch::parse(r#"{"cart":[1],"flash":"Saved"}"#).unwrap(), 4096).unwrap();
    /// s.apply(&Patch::parse(r#"{"flash":null}"#).unwrap(), 4096).unwrap();
    /// assert_eq!((s.version, s.data.as_deref()), (2, Some(r#"{"cart":[1]}"#)));
    /// ```
    pub fn apply(&mut self, patch: &Patch, limit: usize) -> Result<bool, Refusal> {
        if self.ended {
            return Err(Refusal::Ended);
        }
        if patch.is_empty() {
            return Ok(false);
        }
        let mut members = self
            .data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Map<String, Value>>(d).ok())
            .unwrap_or_default();
        for (key, value) in &patch.0 {
            if value.is_null() {
                members.remove(key);
            } else {
                members.insert(key.clone(), value.clone());
            }
        }
        let data = (!members.is_empty()).then(|| ascii_json(&Value::Object(members)));
        let size = data.as_ref().map_or(0, String::len);
        if size > limit {
            return Err(Refusal::TooLarge { size, limit });
        }
        self.version += 1;
        self.data = data;
        Ok(true)
    }

    /// Ends the session: the data goes, later patches are refused.
    pub fn end(&mut self) {
        self.data = None;
        self.ended = true;
    }

    /// Starts over for a new owner of the session ID (attach mode: the site
    /// gave it to someone else, or gave an ended ID out again): no data, not
    /// ended. The version moves on when anything went, so that no isolate's
    /// copy of the old data (kept by version) is served to the new owner;
    /// it never goes back. `true` when something changed.
    pub fn restart(&mut self) -> bool {
        if !self.ended && self.data.is_none() {
            return false;
        }
        self.data = None;
        self.ended = false;
        self.guest_created = 0;
        self.guest_seen = 0;
        self.guest_idle = 0;
        self.version += 1;
        true
    }

    /// Whether it holds a guest session (alive or ended).
    pub fn is_guest(&self) -> bool {
        self.guest_created > 0
    }

    /// When the object may forget everything: at `until`, or sooner for a
    /// live guest once it has been idle for its limit (it cannot be used
    /// again, and nobody else can hold its ID).
    pub fn forget_at(&self) -> u64 {
        if self.is_guest() && !self.ended && self.guest_idle > 0 {
            let idle_at = self.guest_seen.saturating_add(self.guest_idle);
            if self.until == 0 {
                return idle_at;
            }
            return self.until.min(idle_at);
        }
        self.until
    }
}

/// What the worker asks of a session's Durable Object: read it (a `GET`,
/// [`StateRequest::read`]), or (the JSON body of a `POST`) apply a patch
/// within a limit, or end the session. `until` is when the session can no
/// longer be alive (unix ms), after which the object may forget everything;
/// every request names it, so that a deadline that moved later (a higher
/// `ABSOLUTE_TIMEOUT`, an attach session learned again with a later
/// `created`) moves the object's cleanup with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateRequest {
    /// The members of a patch to apply (ignored when `end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Map<String, Value>>,
    /// `SESSION_DATA_LIMIT`, for a patch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: usize,
    /// End the session: its data goes and no later patch is taken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
    /// Start over first ([`DataState::restart`]): the session ID has a new owner.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    /// Make it a guest session created at this time (unix ms), if the patch
    /// beside it is applied and the object holds no session yet.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub guest: u64,
    /// The guest was used at this time (unix ms): its last use moves to it
    /// when later (the worker sends it at most once per `TOUCH_INTERVAL`),
    /// unless the guest was already idle for `idle` ms by then: a use never
    /// revives a session that died of idleness.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub touch: u64,
    /// `IDLE_TIMEOUT`, with a touch.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub idle: u64,
    /// When the object may forget the session.
    pub until: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl StateRequest {
    /// Read the state (changing nothing but, when it moved later, the deadline).
    pub fn read(until: u64) -> StateRequest {
        StateRequest {
            patch: None,
            limit: 0,
            end: false,
            restart: false,
            guest: 0,
            touch: 0,
            idle: 0,
            until,
        }
    }

    /// Apply `patch` within `limit` bytes.
    pub fn patch(patch: &Patch, limit: usize, until: u64) -> StateRequest {
        StateRequest {
            patch: Some(patch.0.clone()),
            limit,
            ..StateRequest::read(until)
        }
    }

    /// End the session.
    pub fn end(until: u64) -> StateRequest {
        StateRequest {
            end: true,
            ..StateRequest::read(until)
        }
    }

    /// The same request, for a session ID that has a new owner.
    pub fn restarting(self) -> StateRequest {
        StateRequest {
            restart: true,
            ..self
        }
    }

    /// The same request, marking the guest used at `now` if it was not idle
    /// for `idle` ms by then.
    pub fn touching(self, now: u64, idle: u64) -> StateRequest {
        StateRequest {
            touch: now,
            idle,
            ..self
        }
    }

    /// The same request, making a new guest session of the object at `now`,
    /// which dies once idle for `idle` ms.
    pub fn new_guest(self, now: u64, idle: u64) -> StateRequest {
        StateRequest {
            guest: now,
            idle,
            ..self
        }
    }

    /// Whether it only reads (a `GET` on the wire).
    pub fn is_read(&self) -> bool {
        self.patch.is_none() && !self.end && !self.restart && self.touch == 0 && self.guest == 0
    }
}

/// The object's answer (JSON body of a 200): the state after the request,
/// and why a patch was not applied, when it was not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WireReply", into = "WireReply")]
pub struct StateReply {
    /// The state after the request.
    pub state: DataState,
    /// Why a patch was not applied, when it was not.
    pub refused: Option<String>,
}

/// [`StateReply`] as it travels: flat, with short names.
#[derive(Clone, Serialize, Deserialize)]
struct WireReply {
    #[serde(default)]
    v: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    e: bool,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    gc: u64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    gl: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

impl From<WireReply> for StateReply {
    fn from(w: WireReply) -> StateReply {
        StateReply {
            state: DataState {
                version: w.v,
                data: w.d,
                ended: w.e,
                until: 0,
                guest_created: w.gc,
                guest_seen: w.gl,
                guest_idle: 0,
            },
            refused: w.refused,
        }
    }
}

impl From<StateReply> for WireReply {
    fn from(r: StateReply) -> WireReply {
        WireReply {
            v: r.state.version,
            d: r.state.data,
            e: r.state.ended,
            gc: r.state.guest_created,
            gl: r.state.guest_seen,
            refused: r.refused,
        }
    }
}

/// What an object does for one request: its reply, the state to store when
/// it changed, and when to set its alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The answer.
    pub reply: StateReply,
    /// The state to store, when it changed.
    pub store: Option<DataState>,
    /// The time to set the object's alarm to, when it must be (re)set.
    pub alarm: Option<u64>,
}

/// Answers one request against the stored state. Nothing is stored for a
/// read of an object that holds nothing; the alarm is set by the first write
/// and set again whenever the deadline moves later (it never moves earlier).
pub fn serve(stored: Option<DataState>, request: &StateRequest) -> Served {
    let existed = stored.is_some();
    let mut state = stored.unwrap_or_default();
    let mut changed = false;
    let mut refused = None;
    if request.end {
        changed = !state.ended || state.data.is_some();
        state.end();
    } else {
        if request.restart {
            changed = state.restart();
        }
        if let Some(members) = &request.patch {
            match state.apply(&Patch(members.clone()), request.limit) {
                Ok(applied) => {
                    changed |= applied;
                    if applied && request.guest > 0 && !state.is_guest() && state.version == 1 {
                        state.guest_created = request.guest;
                        state.guest_seen = request.guest;
                        state.guest_idle = request.idle;
                    }
                }
                Err(refusal) => refused = Some(refusal.to_string()),
            }
        }
        let alive = request.touch.saturating_sub(state.guest_seen) < request.idle;
        if state.is_guest() && !state.ended && request.touch > state.guest_seen && alive {
            state.guest_seen = request.touch;
            state.guest_idle = request.idle;
            changed = true;
        }
    }
    let moved = request.until > state.until;
    state.until = state.until.max(request.until);
    let write = changed || (moved && existed);
    let alarm = (write && (moved || !existed)).then_some(state.forget_at());
    Served {
        store: write.then(|| state.clone()),
        alarm: alarm.filter(|&at| at > 0),
        reply: StateReply { state, refused },
    }
}

/// What the object's alarm does at `now`: `Some(at)` sets it again for a
/// deadline that moved later meanwhile (a guest used since); `None` forgets
/// everything (no session it could hold is alive any more).
pub fn on_alarm(stored: Option<&DataState>, now: u64) -> Option<u64> {
    stored.map(DataState::forget_at).filter(|&at| at > now)
}

/// The session data as a forwarded request carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DataView {
    /// The session has no data (neither header).
    #[default]
    None,
    /// The data and its version.
    Present {
        /// `X-Session-Data-Version`.
        version: u64,
        /// `X-Session-Data`.
        json: Rc<str>,
    },
    /// It has data that cannot be read now (`X-Session-Data-Status: unavailable`).
    Unavailable,
}

impl DataView {
    /// The view of a state. Data stored before DEL was escaped is escaped here.
    pub fn of(state: &DataState) -> DataView {
        match &state.data {
            Some(json) if !state.ended => DataView::Present {
                version: state.version,
                json: Rc::from(printable(json).as_ref()),
            },
            _ => DataView::None,
        }
    }
}

/// Most bytes of data an isolate keeps in its cache.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The data an isolate has read, by session hash and version: a request whose
/// ticket names a version the isolate already holds reads no store.
///
/// A browser's requests in flight together can answer in any order, so the
/// ticket it keeps may name an older version than one of its changes made
/// elsewhere. Two rules keep that from hiding a change for long: an isolate
/// that applies a change forgets the session rather than keeping its result
/// (the next read asks the object, which has every change), and an entry is
/// trusted for at most `ttl` (the caller's `TICKET_TTL`) after it was read.
#[derive(Debug, Default)]
pub struct DataCache {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    version: u64,
    /// The highest floor this read answers: its version, or the floor it was
    /// read for when the object was behind it (a data-version cookie that
    /// claims more than the object has: the object is the truth).
    covers: u64,
    view: DataView,
    read_at: u64,
}

impl DataCache {
    /// The cached view of a session, when it is at least version `floor` and
    /// was read less than `ttl` ms before `now`.
    pub fn get(&self, hash: &str, floor: u64, now: u64, ttl: u64) -> Option<DataView> {
        self.entries
            .get(hash)
            .filter(|e| e.covers >= floor && now.saturating_sub(e.read_at) < ttl)
            .map(|e| e.view.clone())
    }

    /// The newest version the isolate knows of a session (0 when none).
    pub fn version(&self, hash: &str) -> u64 {
        self.entries.get(hash).map_or(0, |e| e.version)
    }

    /// Remembers a session's state as read at `now` for a request that had
    /// to see version `floor` at least, unless a newer one is already held;
    /// an ended session is forgotten.
    pub fn put(&mut self, hash: &str, state: &DataState, floor: u64, now: u64) {
        if state.ended {
            self.forget(hash);
            return;
        }
        if self.version(hash) > state.version {
            return;
        }
        let size = state.data.as_ref().map_or(0, String::len) + hash.len();
        if self.bytes + size > CACHE_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        self.forget(hash);
        let entry = Entry {
            version: state.version,
            covers: state.version.max(floor),
            view: DataView::of(state),
            read_at: now,
        };
        self.entries.insert(hash.to_string(), entry);
        self.bytes += size;
    }

    /// What it holds of a session now, to put back later ([`DataCache::restore`]).
    pub fn save(&self, hash: &str) -> SavedData {
        SavedData(self.entries.get(hash).cloned())
    }

    /// Holds of a session what it held when `saved` was made.
    pub fn restore(&mut self, hash: &str, saved: SavedData) {
        self.forget(hash);
        if let Some(entry) = saved.0 {
            self.bytes += entry_size(&entry) + hash.len();
            self.entries.insert(hash.to_string(), entry);
        }
    }

    /// Drops a session's entry.
    pub fn forget(&mut self, hash: &str) {
        if let Some(entry) = self.entries.remove(hash) {
            self.bytes = self.bytes.saturating_sub(entry_size(&entry) + hash.len());
        }
    }
}

/// What a [`DataCache`] held of one session ([`DataCache::save`]).
#[derive(Debug)]
pub struct SavedData(Option<Entry>);

/// The bytes of data an entry holds.
fn entry_size(entry: &Entry) -> usize {
    match &entry.view {
        DataView::Present { json, .. } => json.len(),
        _ => 0,
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
