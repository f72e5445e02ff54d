//! The logic of the `cargo fuzz` targets, kept in the library (as rustls does) so that the
//! targets in `fuzz/` are one-line shells and a plain `#[test]` replays the committed seed
//! corpora and past crashes on stable Rust.
//!
//! Each function panics exactly when it finds a bug.

use crate::generators::token::{Expected, MintContext, TokenRecipe};
use crate::guard::{Guard, Rejection, ScopeSet, Secret};
use crate::spec::{Principal, Spec};
use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::Path;
use std::sync::OnceLock;

/// The fixed time every fuzz input is judged at, so a crash reproduces forever.
pub const FUZZ_NOW: u64 = 1_796_169_600;

const SECRET: &[u8] = b"confab-example-hs256-secret-not-for-production";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "docs-api";
const LEEWAY_S: i64 = 30;

struct Fixture {
    guard: Guard,
    mint: MintContext,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // The fixture's spec is a constant of this crate; failing to build it is a build bug.
        let mut spec = Spec::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .principal(
                Principal::new("alice")
                    .scope("docs:read")
                    .owns(["doc-a1", "doc-a2"]),
            )
            .principal(
                Principal::new("bob")
                    .scope("docs:read docs:write")
                    .owns(["doc-b1"]),
            )
            .build()
            .unwrap_or_else(|e| panic!("fuzz fixture spec: {e}"));
        spec.fill_jwt_secret(&Secret::from(String::from_utf8_lossy(SECRET).into_owned()));
        let guard = spec
            .guard()
            .unwrap_or_else(|e| panic!("embedded spec: {e}"));
        let mint = MintContext::for_spec(&spec, ScopeSet::parse("docs:read"))
            .unwrap_or_else(|e| panic!("embedded spec: {e}"));
        Fixture { guard, mint }
    })
}

/// Arbitrary bytes as up to three `Authorization` values (split at `0xff`, which no header
/// byte can be). The guard must not panic, and it accepts only what carries an HS256 MAC made
/// with the key (checked here independently of the guard's own code path).
pub fn guard_header(data: &[u8]) {
    let fx = fixture();
    let values: Vec<&[u8]> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == 0xff).take(3).collect()
    };
    if fx
        .guard
        .decide(&values, &ScopeSet::new(), FUZZ_NOW)
        .is_err()
    {
        return;
    }
    let text = String::from_utf8_lossy(values.first().copied().unwrap_or_default());
    let token = text.split_whitespace().last().unwrap_or_default();
    let (signing_input, signature) = token.rsplit_once('.').unwrap_or_default();
    let mac = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    assert!(
        values.len() == 1 && mac == hmac_sha256(SECRET, signing_input.as_bytes()),
        "accepted a credential that carries no MAC made with the key"
    );
}

/// A token case built from the bytes by the shared generator catalogue, with real
/// signatures: the guard must decide it exactly as labelled.
pub fn guard_token(data: &[u8]) {
    let fx = fixture();
    let Ok(recipe) = TokenRecipe::from_bytes(data) else {
        return;
    };
    let case = recipe.mint(&fx.mint, FUZZ_NOW);
    let got = fx
        .guard
        .decide(&case.header_bytes(), &fx.mint.required_scope, FUZZ_NOW);
    let agrees = match (&case.expect, &got) {
        (Expected::Accept { sub, scopes }, Ok(who)) => &who.sub == sub && &who.scopes == scopes,
        (Expected::Reject(want), Err(r)) => want == r,
        _ => false,
    };
    assert!(
        agrees,
        "{:?}: labelled {:?}, guard said {got:?}",
        recipe, case.expect
    );
}

/// A token assembled member by member from fuzzer choices. The differential target signs it
/// and compares the guard's accept/refuse with [`DiffToken::model_accepts`], a separate and
/// deliberately plain statement of the rules.
#[derive(Debug, Arbitrary)]
pub struct DiffToken {
    alg: DiffAlg,
    typ: Option<DiffString>,
    kid: Option<DiffString>,
    crit: bool,
    jwk: bool,
    signature: DiffSignature,
    exp: Option<DiffTime>,
    nbf: Option<DiffTime>,
    iat: Option<DiffTime>,
    iss: Option<DiffString>,
    aud: Option<DiffAudience>,
    sub: Option<DiffString>,
    scope: Option<Vec<DiffScope>>,
    scope_separator: DiffSeparator,
    duplicate: Option<DiffMember>,
    extra_claims: Vec<(u8, i32)>,
}

#[derive(Debug, Arbitrary, Clone, Copy, PartialEq)]
enum DiffAlg {
    Hs256,
    Hs384,
    Rs256,
    None,
    NoneUpper,
    Empty,
}

#[derive(Debug, Arbitrary)]
enum DiffString {
    Expected,
    Other(String),
    Number(i32),
    Empty,
}

#[derive(Debug, Arbitrary)]
enum DiffAudience {
    Ours,
    Other,
    ArrayWithOurs(u8),
    ArrayWithout,
    Number,
}

#[derive(Debug, Arbitrary)]
enum DiffTime {
    /// Seconds relative to now.
    Offset(i32),
    AsString(i32),
    Float(i16),
    Null,
}

#[derive(Debug, Arbitrary, Clone, Copy, PartialEq)]
enum DiffSignature {
    Good,
    Empty,
    Flipped(u8),
    OtherKey,
}

#[derive(Debug, Arbitrary, Clone, Copy)]
enum DiffScope {
    Read,
    Write,
    ReadUpper,
    Wildcard,
    Other(u8),
}

#[derive(Debug, Arbitrary, Clone, Copy)]
enum DiffSeparator {
    Space,
    DoubleSpace,
    Comma,
}

#[derive(Debug, Arbitrary, Clone, Copy)]
enum DiffMember {
    Sub,
    Exp,
    Scope,
    HeaderAlg,
}

impl DiffTime {
    fn json(&self) -> String {
        match self {
            DiffTime::Offset(o) => (FUZZ_NOW as i64 + i64::from(*o)).to_string(),
            DiffTime::AsString(o) => format!("\"{}\"", FUZZ_NOW as i64 + i64::from(*o)),
            DiffTime::Float(o) => format!("{}.5", FUZZ_NOW as i64 + i64::from(*o)),
            DiffTime::Null => "null".to_owned(),
        }
    }

    /// The time as a number, or `None` when it is not a JSON number.
    fn value(&self) -> Option<f64> {
        match self {
            DiffTime::Offset(o) => Some(FUZZ_NOW as f64 + f64::from(*o)),
            DiffTime::Float(o) => Some(FUZZ_NOW as f64 + f64::from(*o) + 0.5),
            DiffTime::AsString(_) | DiffTime::Null => None,
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl DiffString {
    fn json(&self, expected: &str) -> String {
        match self {
            DiffString::Expected => json_string(expected),
            DiffString::Other(s) => json_string(s),
            DiffString::Number(n) => n.to_string(),
            DiffString::Empty => "\"\"".to_owned(),
        }
    }

    fn equals(&self, expected: &str) -> bool {
        match self {
            DiffString::Expected => true,
            DiffString::Other(s) => s == expected,
            DiffString::Empty => expected.is_empty(),
            DiffString::Number(_) => false,
        }
    }

    fn is_string(&self) -> bool {
        !matches!(self, DiffString::Number(_))
    }
}

impl DiffScope {
    fn text(self) -> String {
        match self {
            DiffScope::Read => "docs:read".to_owned(),
            DiffScope::Write => "docs:write".to_owned(),
            DiffScope::ReadUpper => "DOCS:READ".to_owned(),
            DiffScope::Wildcard => "docs:*".to_owned(),
            DiffScope::Other(n) => format!("x{n}"),
        }
    }
}

impl DiffToken {
    fn alg_name(&self) -> &'static str {
        match self.alg {
            DiffAlg::Hs256 => "HS256",
            DiffAlg::Hs384 => "HS384",
            DiffAlg::Rs256 => "RS256",
            DiffAlg::None => "none",
            DiffAlg::NoneUpper => "NONE",
            DiffAlg::Empty => "",
        }
    }

    fn scope_text(&self) -> Option<String> {
        let sep = match self.scope_separator {
            DiffSeparator::Space => " ",
            DiffSeparator::DoubleSpace => "  ",
            DiffSeparator::Comma => ",",
        };
        self.scope
            .as_ref()
            .map(|s| s.iter().map(|t| t.text()).collect::<Vec<_>>().join(sep))
    }

    /// The compact JWS.
    pub fn encode(&self) -> String {
        let mut header = vec![format!("\"alg\":{}", json_string(self.alg_name()))];
        if let Some(t) = &self.typ {
            header.push(format!("\"typ\":{}", t.json("JWT")));
        }
        if let Some(k) = &self.kid {
            header.push(format!("\"kid\":{}", k.json("k1")));
        }
        if self.crit {
            header.push("\"crit\":[\"exp\"]".to_owned());
        }
        if self.jwk {
            header.push("\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}".to_owned());
        }
        if let Some(DiffMember::HeaderAlg) = self.duplicate {
            header.push("\"alg\":\"HS256\"".to_owned());
        }
        let mut claims = Vec::new();
        for (name, time) in [("exp", &self.exp), ("nbf", &self.nbf), ("iat", &self.iat)] {
            if let Some(t) = time {
                claims.push(format!("\"{name}\":{}", t.json()));
            }
        }
        if let Some(i) = &self.iss {
            claims.push(format!("\"iss\":{}", i.json(ISSUER)));
        }
        if let Some(a) = &self.aud {
            let v = match a {
                DiffAudience::Ours => json_string(AUDIENCE),
                DiffAudience::Other => "\"other-api\"".to_owned(),
                DiffAudience::ArrayWithOurs(n) => format!("[\"a{n}\",\"{AUDIENCE}\"]"),
                DiffAudience::ArrayWithout => "[\"a\",\"b\"]".to_owned(),
                DiffAudience::Number => "7".to_owned(),
            };
            claims.push(format!("\"aud\":{v}"));
        }
        if let Some(s) = &self.sub {
            claims.push(format!("\"sub\":{}", s.json("alice")));
        }
        if let Some(s) = self.scope_text() {
            claims.push(format!("\"scope\":{}", json_string(&s)));
        }
        for (i, (name, value)) in self.extra_claims.iter().take(8).enumerate() {
            claims.push(format!("\"x{name}_{i}\":{value}"));
        }
        if self.has_duplicate() {
            match self.duplicate {
                Some(DiffMember::Sub) => claims.push("\"sub\":\"admin\"".to_owned()),
                Some(DiffMember::Exp) => claims.push(format!("\"exp\":{}", FUZZ_NOW + 99)),
                Some(DiffMember::Scope) => claims.push("\"scope\":\"docs:read\"".to_owned()),
                _ => {}
            }
        }
        let mut input = URL_SAFE_NO_PAD.encode(format!("{{{}}}", header.join(",")));
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(format!("{{{}}}", claims.join(","))));
        let mut mac = hmac_sha256(
            if self.signature == DiffSignature::OtherKey {
                b"another-key"
            } else {
                SECRET
            },
            input.as_bytes(),
        );
        match self.signature {
            DiffSignature::Empty => mac.clear(),
            DiffSignature::Flipped(i) => {
                let at = usize::from(i) % mac.len();
                mac[at] ^= 1 << (i % 8);
            }
            _ => {}
        }
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(mac));
        input
    }

    /// A member is repeated only when it was there in the first place.
    fn has_duplicate(&self) -> bool {
        match self.duplicate {
            None => false,
            Some(DiffMember::HeaderAlg) => true,
            Some(DiffMember::Sub) => self.sub.is_some(),
            Some(DiffMember::Exp) => self.exp.is_some(),
            Some(DiffMember::Scope) => self.scope.is_some(),
        }
    }

    /// The rules, stated plainly over what was put into the token: accept iff every one holds.
    pub fn model_accepts(&self) -> bool {
        let now = FUZZ_NOW as f64;
        let leeway = LEEWAY_S as f64;
        let signed_by_us = self.signature == DiffSignature::Good;
        let header_ok = self.alg == DiffAlg::Hs256
            && !self.crit
            && !self.jwk
            && self.kid.as_ref().is_none_or(DiffString::is_string)
            && self.typ.as_ref().is_none_or(DiffString::is_string)
            && !self.has_duplicate();
        let times_are_numbers = [&self.exp, &self.nbf, &self.iat]
            .iter()
            .all(|t| t.as_ref().is_none_or(|t| t.value().is_some()));
        let exp_ok = self
            .exp
            .as_ref()
            .and_then(DiffTime::value)
            .is_some_and(|exp| now < exp + leeway);
        let nbf_ok = self
            .nbf
            .as_ref()
            .and_then(DiffTime::value)
            .is_none_or(|nbf| nbf <= now + leeway);
        let iss_ok = self.iss.as_ref().is_some_and(|i| i.equals(ISSUER));
        let aud_ok = matches!(
            self.aud,
            Some(DiffAudience::Ours | DiffAudience::ArrayWithOurs(_))
        );
        let sub_ok = match &self.sub {
            Some(DiffString::Expected) => true,
            Some(DiffString::Other(s)) => !s.is_empty(),
            Some(DiffString::Empty | DiffString::Number(_)) | None => false,
        };
        let scope_ok = self
            .scope_text()
            .is_some_and(|s| s.split(' ').any(|t| t == "docs:read"));
        signed_by_us
            && header_ok
            && times_are_numbers
            && exp_ok
            && nbf_ok
            && iss_ok
            && aud_ok
            && sub_ok
            && scope_ok
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec()
}

/// The guard against the plain model of the rules: any disagreement is a bug in one of them.
pub fn guard_differential(data: &[u8]) {
    let Ok(token) = DiffToken::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let fx = fixture();
    let header = format!("Bearer {}", token.encode());
    let got = fx.guard.decide(
        &[header.as_bytes()],
        &ScopeSet::parse("docs:read"),
        FUZZ_NOW,
    );
    let model = token.model_accepts();
    // An oversized token is refused before anything else; the model ignores size.
    if got == Err(Rejection::Oversized) {
        return;
    }
    assert_eq!(
        got.is_ok(),
        model,
        "guard {got:?} but model says accept={model} for {token:?}"
    );
}

/// Fuzzer choices for the provenance target.
#[derive(Debug, Arbitrary)]
pub struct ProvenanceInput {
    /// Ids the principal owns.
    owned: Vec<String>,
    /// Ids shared with the principal (permitted, not owned).
    shared: Vec<String>,
    /// Ids the user put in the request.
    supplied: Vec<String>,
    /// What the model proposes.
    candidate: String,
    /// The model's value, or the user's.
    from_user: bool,
}

/// No input ever yields an authorized id outside the permitted set, one that fails its
/// pattern, or (from the model) one the user did not supply and the principal does not own.
pub fn provenance(data: &[u8]) {
    use crate::guard::provenance::{
        MemoryPermissions, RequestContext, ResourceKind, Untrusted, Validator,
    };
    let Ok(input) = ProvenanceInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    static KIND: OnceLock<Option<ResourceKind>> = OnceLock::new();
    // Compiled once: the pattern is a constant, and compiling it per input would make the
    // target measure the regex compiler.
    let Some(kind) = KIND
        .get_or_init(|| ResourceKind::with_default_pattern("doc").ok())
        .as_ref()
    else {
        return;
    };
    let mut store = MemoryPermissions::new();
    for id in &input.owned {
        store.own("alice", "doc", id);
    }
    for id in &input.shared {
        store.share("alice", "doc", id);
    }
    let mut ctx = RequestContext::new("alice");
    for id in &input.supplied {
        ctx.supply(kind, id.clone());
    }
    let validator = Validator::new(&store, &ctx);
    let value = if input.from_user {
        Untrusted::from_user(input.candidate.clone())
    } else {
        Untrusted::from_llm(input.candidate.clone())
    };
    let Ok(id) = validator.authorize(kind, value) else {
        return;
    };
    let id = id.as_str();
    let permitted = input.owned.iter().chain(&input.shared).any(|o| o == id);
    let based = input.from_user
        || input.owned.iter().any(|o| o == id)
        || input.supplied.iter().any(|s| s == id);
    let shaped = id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    assert!(
        permitted && based && shaped && id == input.candidate,
        "authorized {id:?} (permitted {permitted}, based {based}, shaped {shaped})"
    );
}

/// The guard reads token JSON with a flat scanner and falls back to serde outside its subset:
/// wherever the scanner answers, it must answer as serde does (a differential oracle).
pub fn jose_flat(data: &[u8]) {
    if let Some(agree) = crate::guard::internal::jose_flat_agrees_with_serde(data) {
        assert!(agree, "flat JSON scanner and serde disagree");
    }
}

/// Fuzzer choices for the scrubber target.
#[derive(Debug, Arbitrary)]
pub struct ScrubInput {
    secret: String,
    before: Vec<u8>,
    after: Vec<u8>,
    encoding: u8,
}

/// After scrubbing, no registered secret (nor its encodings) remains; scrubbing is
/// idempotent, with the registered secret and with the full rule set; invalid UTF-8 anywhere
/// never panics.
pub fn scrubber(data: &[u8]) {
    use crate::guard::Secret;
    use crate::guard::scrub::{ScrubConfig, Scrubber, ScrubberBuilder, SecretKind};
    // The full rule set is built once (its regexes are constants); the per-input scrubber
    // holds only the input's secret, which is what the property is about.
    static FULL: OnceLock<Option<Scrubber>> = OnceLock::new();
    if let Some(full) = FULL.get_or_init(|| Scrubber::with_defaults().ok()).as_ref() {
        let once = full.scrub(data).text.into_owned();
        let twice = full.scrub(&once).text.into_owned();
        assert!(once == twice, "full rule set: scrubbing is not idempotent");
    }
    let Ok(input) = ScrubInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let secret = Secret::from(input.secret.clone());
    let mut b = ScrubberBuilder::new().config(ScrubConfig::literals_only());
    // Secrets the builder refuses (too short, marker-like) are simply not this input's case.
    if b.secret(SecretKind::Custom, "fuzz", &secret).is_err() {
        return;
    }
    let Ok(scrubber) = b.build() else { return };
    let s = input.secret.as_bytes();
    let planted: Vec<u8> = match input.encoding % 5 {
        0 => s.to_vec(),
        1 => base64::engine::general_purpose::STANDARD
            .encode(s)
            .into_bytes(),
        2 => URL_SAFE_NO_PAD.encode(s).into_bytes(),
        3 => s
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        _ => s
            .iter()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
            .into_bytes(),
    };
    let mut text = input.before.clone();
    text.extend_from_slice(&planted);
    text.extend_from_slice(&input.after);
    let once = scrubber.scrub(&text).text.into_owned();
    assert!(
        !contains(&once, s),
        "the raw secret survived scrubbing (encoding {})",
        input.encoding % 5
    );
    assert!(
        !contains(&once, &planted),
        "the planted encoding survived scrubbing (encoding {})",
        input.encoding % 5
    );
    let twice = scrubber.scrub(&once).text.into_owned();
    assert!(once == twice, "scrubbing is not idempotent");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The fake model's request parsing never panics, and for every turn it could answer, the
/// SSE stream reassembles into the same message as the JSON answer.
pub fn wire(data: &[u8]) {
    use crate::generators::output::{ModelTurn, ToolCall};
    let _ = crate::wire::parse_request(data);
    let mut u = Unstructured::new(data);
    let Ok(text) = String::arbitrary(&mut u) else {
        return;
    };
    let Ok(name) = String::arbitrary(&mut u) else {
        return;
    };
    let turn = if text.len() % 2 == 0 {
        ModelTurn::Text { content: text }
    } else {
        ModelTurn::ToolCalls {
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name,
                arguments: serde_json::json!({"id": text}),
            }],
        }
    };
    let sse = crate::wire::sse_body("id", "m", &turn, true);
    let decoded = crate::wire::decode_sse(&sse);
    assert_eq!(decoded, Some(turn.to_openai_message()), "SSE round trip");
}

/// A turn made from fuzz bytes: text, or tool calls whose names and string arguments are
/// arbitrary (several of them: parallel calls).
fn fuzz_turn(u: &mut Unstructured<'_>) -> Option<crate::wire::ModelTurn> {
    use crate::wire::{ModelTurn, ToolCall};
    let text = String::arbitrary(u).ok()?;
    if bool::arbitrary(u).ok()? {
        return Some(ModelTurn::Text { content: text });
    }
    let n = u.int_in_range(1..=3u8).ok()?;
    let mut tool_calls = Vec::new();
    for k in 0..n {
        let name = String::arbitrary(u).ok()?;
        tool_calls.push(ToolCall {
            id: format!("call_{k}"),
            name,
            arguments: serde_json::json!({"id": text, "n": k}),
        });
    }
    Some(ModelTurn::ToolCalls { tool_calls })
}

/// The request a turn answers: the parsed one, or a default when the bytes did not parse.
fn fuzz_request(
    parsed: Result<crate::wire::ChatRequest, crate::wire::WireError>,
) -> crate::wire::ChatRequest {
    parsed.unwrap_or_else(|_| crate::wire::ChatRequest {
        model: "m".into(),
        ..Default::default()
    })
}

/// OpenAI Responses: the parser never panics on any bytes, and a streamed answer reassembles
/// (as the SDK's accumulator does) into the JSON answer's output items.
pub fn wire_responses(data: &[u8]) {
    use crate::wire::responses;
    let req = fuzz_request(responses::parse_request(data));
    let Some(turn) = fuzz_turn(&mut Unstructured::new(data)) else {
        return;
    };
    let whole = responses::response_json(1, &req, &turn);
    let streamed = responses::decode_sse(&responses::sse_body(1, &req, &turn));
    assert_eq!(
        streamed.map(serde_json::Value::from),
        Some(whole["output"].clone()),
        "SSE round trip"
    );
}

/// Anthropic Messages: the parser never panics, and a streamed answer reassembles into the
/// JSON message (tool inputs from their `input_json_delta` pieces).
pub fn wire_anthropic(data: &[u8]) {
    use crate::wire::anthropic;
    let req = fuzz_request(anthropic::parse_request(data));
    let Some(turn) = fuzz_turn(&mut Unstructured::new(data)) else {
        return;
    };
    let streamed = anthropic::decode_sse(&anthropic::sse_body(1, &req, &turn));
    assert_eq!(
        streamed,
        Some(anthropic::message_json(1, &req, &turn)),
        "SSE round trip"
    );
}

/// Ollama: both parsers never panic, and streamed chat and generate answers (NDJSON)
/// reassemble into the JSON ones.
pub fn wire_ollama(data: &[u8]) {
    use crate::wire::ollama;
    let _ = ollama::parse_generate(data);
    let req = fuzz_request(ollama::parse_chat(data));
    let Some(turn) = fuzz_turn(&mut Unstructured::new(data)) else {
        return;
    };
    let chat = ollama::decode_ndjson(&ollama::chat_ndjson(&req, &turn));
    assert_eq!(
        chat,
        Some(ollama::chat_json(&req, &turn)),
        "chat NDJSON round trip"
    );
    let generate = ollama::decode_ndjson(&ollama::generate_ndjson(&req, &turn));
    assert_eq!(
        generate,
        Some(ollama::generate_json(&req, &turn)),
        "generate NDJSON round trip"
    );
}

/// Embeddings: the parser never panics; what it accepts is answered with one unit vector of
/// the asked dimension per input, the same for the same input.
pub fn wire_embeddings(data: &[u8]) {
    use crate::wire::embeddings;
    let Ok(mut req) = embeddings::parse_request(data) else {
        return;
    };
    // Bounded work per input: a few inputs of a small dimension.
    req.inputs.truncate(4);
    req.dimensions = Some(req.dimensions.unwrap_or(8).min(64));
    let _ = req.as_chat();
    let answer = embeddings::answer(&req, false);
    let data = answer["data"].as_array().map_or(0, Vec::len);
    assert_eq!(data, req.inputs.len(), "one vector per input");
    for input in &req.inputs {
        let v = embeddings::vector(input, 64);
        assert_eq!(v, embeddings::vector(input, 64), "deterministic");
        assert!(v.iter().all(|x| x.is_finite()), "finite");
    }
}

/// The spec loader never panics on any text, and what it accepts it can locate errors in.
pub fn spec_loader(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(spec) = Spec::parse(&text, "fuzz.toml", Path::new("/nonexistent")) {
        let _ = spec.guard();
        let _ = spec.error_at("auth.alg", "probe");
    }
}
