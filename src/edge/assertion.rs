//! ES256 signatures through the platform's WebCrypto (`crypto.subtle`): the
//! keys of `ASSERTION_KEYS` are imported once per isolate, their public halves
//! exported for the JWKS, and tokens reused per [`crate::assertion::Cache`].

use super::js::{call, js_error, object};
use crate::assertion;
use crate::config::AssertionKey;
use crate::identity::Identity;
use crate::session::SessionHash;
use js_sys::{self, Array, Reflect, Uint8Array};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsValue;

/// The imported keys of one `ASSERTION_KEYS` value.
pub struct Signer {
    source: Vec<AssertionKey>,
    /// The signing key (the first) as a WebCrypto `CryptoKey`.
    signing: JsValue,
    /// Every key's id and public JWK, for the JWKS.
    public: Vec<(String, Value)>,
}

thread_local! {
    static SIGNER: RefCell<Option<Rc<Signer>>> = const { RefCell::new(None) };
    static TOKENS: RefCell<assertion::Cache> = RefCell::default();
}

fn subtle() -> Result<JsValue, String> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(js_error)?;
    Reflect::get(&crypto, &"subtle".into()).map_err(js_error)
}

/// Imports `keys` (or returns the isolate's signer for the same keys).
/// An error names what WebCrypto refused, for the `ASSERTION_KEYS` config error.
pub async fn signer(keys: &[AssertionKey]) -> Result<Rc<Signer>, String> {
    if let Some(s) = SIGNER.with(|s| s.borrow().clone()) {
        if s.source == keys {
            return Ok(s);
        }
    }
    let subtle = subtle()?;
    let algorithm = object(&[("name", "ECDSA"), ("namedCurve", "P-256")]);
    let mut signing = JsValue::UNDEFINED;
    let mut public = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let der = Uint8Array::from(key.pkcs8.as_slice());
        let usages: Array = [JsValue::from("sign")].into_iter().collect();
        let imported = call(
            &subtle,
            "importKey",
            &[
                "pkcs8".into(),
                der.into(),
                algorithm.clone(),
                JsValue::TRUE,
                usages.into(),
            ],
        )
        .await
        .map_err(|e| format!("key `{}` is not an ECDSA P-256 PKCS#8 key ({e})", key.kid))?;
        let jwk = call(&subtle, "exportKey", &["jwk".into(), imported.clone()]).await?;
        let text = js_sys::JSON::stringify(&jwk).map_err(js_error)?;
        let mut value: Value =
            serde_json::from_str(&String::from(text)).map_err(|e| e.to_string())?;
        if let Some(o) = value.as_object_mut() {
            o.remove("d");
        }
        public.push((key.kid.clone(), value));
        if i == 0 {
            signing = imported;
        }
    }
    let s = Rc::new(Signer {
        source: keys.to_vec(),
        signing,
        public,
    });
    SIGNER.with(|cell| *cell.borrow_mut() = Some(Rc::clone(&s)));
    Ok(s)
}

/// The assertion this isolate signed for the same session, tier, identity
/// and audience less than half its lifetime ago, if any: no signing, no await.
pub fn cached(
    identity: &Identity,
    session: &SessionHash,
    audience: &str,
    now: u64,
) -> Option<String> {
    TOKENS.with(|t| {
        t.borrow()
            .get(session, identity, audience, now)
            .map(str::to_string)
    })
}

impl Signer {
    /// The public keys, by key id.
    pub fn public_keys(&self) -> &[(String, Value)] {
        &self.public
    }

    /// The assertion for this request: reused from the isolate's cache when
    /// one was signed for the same session, tier, identity and audience less
    /// than half its lifetime ago, otherwise signed now.
    pub async fn assertion(
        &self,
        identity: &Identity,
        session: &SessionHash,
        audience: &str,
        now: u64,
    ) -> Result<String, String> {
        if let Some(token) = cached(identity, session, audience, now) {
            return Ok(token);
        }
        let kid = &self.source[0].kid;
        let input = assertion::signing_input(kid, identity, session, audience, now);
        let algorithm = object(&[("name", "ECDSA"), ("hash", "SHA-256")]);
        let data = Uint8Array::from(input.as_bytes());
        let signature = call(
            &subtle()?,
            "sign",
            &[algorithm, self.signing.clone(), data.into()],
        )
        .await?;
        let bytes = Uint8Array::new(&signature).to_vec();
        let token = assertion::token(&input, &bytes);
        TOKENS.with(|t| {
            t.borrow_mut()
                .insert(session, identity, audience, token.clone(), now)
        });
        Ok(token)
    }
}
