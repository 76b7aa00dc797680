//! `X-Session-Assertion`: a JWT (ES256) that tells the origin a request came
//! through the worker, since identity headers alone can be forged by anyone
//! who reaches the origin directly.
//!
//! This module builds the token's header and claims, and decides when a token
//! signed earlier in the isolate can be sent again; the ECDSA P-256 signature
//! itself is made by the platform's WebCrypto in the edge layer, so the wasm
//! carries no elliptic-curve code. Public keys are served at
//! `/.edge-session/jwks.json`.

use crate::config::{Millis, UnixMillis};
use crate::data::DataView;
use crate::identity::Identity;
use crate::session::SessionHash;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How long an assertion is valid (`exp - iat`).
pub const LIFETIME: Millis = 120_000;
/// Most assertions an isolate keeps for reuse.
pub const CACHE_CAPACITY: usize = 4096;
/// The `iss` claim.
pub const ISSUER: &str = "edge-session";

/// The text the signature covers: `base64url(header).base64url(claims)`.
pub fn signing_input(
    kid: &str,
    identity: &Identity,
    session: &SessionHash,
    audience: &str,
    now: UnixMillis,
) -> String {
    let header = obj!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let iat = now / 1000;
    let mut claims = serde_json::Map::new();
    let mut set = |name: &str, value: Value| claims.insert(name.to_string(), value);
    set("iss", ISSUER.into());
    set("sid", session.0.as_str().into());
    set("src", identity.source.as_str().into());
    set("aud", audience.into());
    set("iat", iat.into());
    set("exp", (iat + LIFETIME / 1000).into());
    if identity.guest {
        // No one signed in: no subject, no authentication time, no claims.
        set("guest", true.into());
    } else {
        set("sub", identity.user.as_str().into());
        set("auth_time", (identity.created / 1000).into());
        if let Some(c) = identity
            .claims
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
        {
            set("claims", c);
        }
        if identity.remember {
            set("remember", true.into());
        }
    }
    match &identity.data {
        DataView::Present { version, json } => {
            // The origin checks that the X-Session-Data it got is the one signed.
            set("dv", (*version).into());
            set("dh", B64.encode(Sha256::digest(json.as_bytes())).into());
        }
        // Signed too, so that an assertion of a session without data cannot be
        // replayed beside `X-Session-Data-Status: unavailable`, nor one of
        // unavailable data as a session without data.
        DataView::Unavailable => {
            set("ds", "unavailable".into());
        }
        DataView::None => {}
    }
    let claims = Value::Object(claims);
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// The compact JWT: the signing input and the raw (`r || s`) signature.
pub fn token(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", B64.encode(signature))
}

/// The JWKS document for the public halves of the keys (JWK objects as the
/// platform exported them, private parts already removed).
pub fn jwks(public_keys: &[(String, Value)]) -> Value {
    let keys: Vec<Value> = public_keys
        .iter()
        .map(|(kid, jwk)| {
            obj!({
                "kty": "EC",
                "crv": jwk["crv"].clone(),
                "x": jwk["x"].clone(),
                "y": jwk["y"].clone(),
                "kid": kid.as_str(),
                "alg": "ES256",
                "use": "sig",
            })
        })
        .collect();
    obj!({ "keys": keys })
}

/// Tokens signed in this isolate, by session and tier, reused for half their
/// lifetime so that the fast path does not sign on every request.
#[derive(Debug, Default)]
pub struct Cache(HashMap<(String, &'static str), Cached>);

#[derive(Debug)]
struct Cached {
    token: String,
    identity: Identity,
    audience: String,
    signed_at: UnixMillis,
}

impl Cache {
    /// A token for exactly this identity and audience, signed less than half
    /// its lifetime ago.
    pub fn get(
        &self,
        session: &SessionHash,
        identity: &Identity,
        audience: &str,
        now: UnixMillis,
    ) -> Option<&str> {
        let c = self.0.get(&(session.0.clone(), identity.source.as_str()))?;
        let fresh = now >= c.signed_at && now - c.signed_at < LIFETIME / 2;
        (fresh && c.identity == *identity && c.audience == audience).then_some(c.token.as_str())
    }

    /// Keeps a token signed at `now`.
    pub fn insert(
        &mut self,
        session: &SessionHash,
        identity: &Identity,
        audience: &str,
        token: String,
        now: UnixMillis,
    ) {
        if self.0.len() >= CACHE_CAPACITY {
            self.0
                .retain(|_, c| now.saturating_sub(c.signed_at) < LIFETIME / 2);
            if self.0.len() >= CACHE_CAPACITY {
                self.0.clear();
            }
        }
        self.0.insert(
            (session.0.clone(), identity.source.as_str()),
            Cached {
                token,
                identity: identity.clone(),
                audience: audience.to_string(),
                signed_at: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Source;
    use serde_json::json;

    fn identity(user: &str, source: Source) -> Identity {
        Identity {
            user: user.into(),
            claims: Some(r#"{"role":"admin","name":"\uae40"}"#.into()),
            source,
            created: 1_700_000_000_123,
            data: crate::data::DataView::None,
            guest: false,
            remember: false,
        }
    }

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn claims_carry_the_identity_as_utf8_json() {
        let hash = SessionHash::of("sid");
        let input = signing_input(
            "k1",
            &identity("김철수", Source::Kv),
            &hash,
            "https://app.example",
            1_800_000_000_999,
        );
        let (header, claims) = input.split_once('.').unwrap();
        assert_eq!(
            decode(header),
            json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
        );
        assert_eq!(
            decode(claims),
            json!({
                "iss": "edge-session",
                "sub": "김철수",
                "sid": hash.0,
                "src": "kv",
                "aud": "https://app.example",
                "iat": 1_800_000_000u64,
                "exp": 1_800_000_120u64,
                "auth_time": 1_700_000_000u64,
                "claims": {"role": "admin", "name": "김"},
            })
        );
        let jwt = token(&input, &[1, 2, 3]);
        assert_eq!(jwt.split('.').count(), 3);
        assert!(jwt.ends_with(".AQID"));
    }

    #[test]
    fn a_request_with_data_signs_its_version_and_hash() {
        let hash = SessionHash::of("sid");
        let mut with_data = identity("alice", Source::Ticket);
        with_data.data = DataView::Present {
            version: 7,
            json: r#"{"cart":[1]}"#.into(),
        };
        let input = signing_input("k1", &with_data, &hash, "a", 1_800_000_000_000);
        let claims = decode(input.split_once('.').unwrap().1);
        assert_eq!(claims["dv"], 7);
        // base64url(SHA-256('{"cart":[1]}')), computed independently
        assert_eq!(claims["dh"], "WfE4rAoDZY94UyM5fNU5ZxHOZvwO8McCm0X3HJOy5MI");
        // no data, no dv or dh; unavailable data neither, and its status is signed
        for (view, status) in [
            (DataView::None, None),
            (DataView::Unavailable, Some("unavailable")),
        ] {
            with_data.data = view;
            let input = signing_input("k1", &with_data, &hash, "a", 1_800_000_000_000);
            let claims = decode(input.split_once('.').unwrap().1);
            assert!(claims.get("dv").is_none() && claims.get("dh").is_none());
            assert_eq!(claims.get("ds").and_then(Value::as_str), status);
        }
    }

    #[test]
    fn tokens_are_reused_for_half_their_lifetime_per_session_and_tier() {
        let hash = SessionHash::of("sid");
        let alice = identity("alice", Source::Ticket);
        let mut cache = Cache::default();
        let t0 = 1_800_000_000_000;
        assert_eq!(cache.get(&hash, &alice, "a", t0), None);
        cache.insert(&hash, &alice, "a", "tok".into(), t0);
        assert_eq!(
            cache.get(&hash, &alice, "a", t0 + LIFETIME / 2 - 1),
            Some("tok")
        );
        assert_eq!(cache.get(&hash, &alice, "a", t0 + LIFETIME / 2), None);
        // another tier, user, audience or session is signed anew: src always matches
        assert_eq!(
            cache.get(&hash, &identity("alice", Source::Kv), "a", t0),
            None
        );
        assert_eq!(
            cache.get(&hash, &identity("bob", Source::Ticket), "a", t0),
            None
        );
        assert_eq!(cache.get(&hash, &alice, "b", t0), None);
        assert_eq!(cache.get(&SessionHash::of("other"), &alice, "a", t0), None);
    }

    #[test]
    fn jwks_publishes_public_parts_only() {
        let exported = json!({"kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "d": "SECRET"});
        let doc = jwks(&[("k1".into(), exported)]);
        assert_eq!(
            doc,
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "X", "y": "Y", "kid": "k1", "alg": "ES256", "use": "sig"}]})
        );
        assert!(!doc.to_string().contains("SECRET"));
    }
}
