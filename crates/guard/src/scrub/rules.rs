//! Credential and PII patterns: three groups of regexes, scanned together once over the text.
//!
//! All patterns compile in ASCII mode (`unicode(false)`, `utf8(false)`): a byte-oriented lazy
//! DFA keeps its speed on text with non-ASCII bytes and never fails on invalid UTF-8 (docs/ARCHITECTURE.md §9:
//! Unicode mode with boundaries drops to ~2 MB/s). Word boundaries are not written as `\b` but
//! checked on the candidate's neighbouring bytes in code, so the DFA never needs look-around.
//! Every repetition that may be long is unbounded in the regex (`+`, `{n,}`) and checked in
//! code, because a bounded repetition like `{0,4096}` is unrolled into thousands of NFA states.

use super::{Hit, HitDetail, RedactionKind};
use regex_automata::{
    Anchored, Input, MatchKind, Span, meta,
    util::{prefilter::Prefilter, syntax},
};
use std::sync::LazyLock;

/// Longest span a PEM private-key block may have from `-----BEGIN` to the end of `-----END …`
/// (an 8192-bit RSA key is ~6.5 KB). A longer block is redacted from BEGIN over its base64 body
/// up to this cap; the rest of the body is a high-entropy run and is caught by that rule.
pub const PEM_CAP: usize = 12 * 1024;

/// How a candidate is checked before it counts.
#[derive(Clone, Copy)]
enum Check {
    /// Neighbouring bytes must not be token characters.
    Bounded,
    /// Bounded, then narrowed to capture group 1 of a per-rule regex run on the match only.
    Value(usize),
    OpenAi,
    Bearer,
    Pem,
    Phone,
    Card,
    Ssn,
}

struct Rule {
    id: &'static str,
    kind: RedactionKind,
    re: &'static str,
    check: Check,
}

const CRED: RedactionKind = RedactionKind::Credential;
const PII: RedactionKind = RedactionKind::Pii;

/// Order matters: the combined regex is leftmost-first, so at one start position the rule
/// listed first wins (Anthropic before OpenAI; SSN and US phone before the card rule).
const RULES: &[Rule] = &[
    Rule {
        id: "private_key",
        kind: CRED,
        re: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        check: Check::Pem,
    },
    Rule {
        id: "bearer_credential",
        kind: CRED,
        re: r"(?i:bearer)[ \t]+[A-Za-z0-9._~+/-]+=*",
        check: Check::Bearer,
    },
    Rule {
        id: "jwt",
        kind: CRED,
        re: r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        check: Check::Bounded,
    },
    Rule {
        id: "aws_access_key_id",
        kind: CRED,
        re: r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}",
        check: Check::Bounded,
    },
    Rule {
        id: "aws_secret_access_key",
        kind: CRED,
        re: r#"(?i:aws)[A-Za-z0-9_.-]{0,20}(?i:secret)[A-Za-z0-9_.-]{0,20}["']?[ \t]*(?::=|=>|:|=)[ \t]*["']?[A-Za-z0-9/+]{40}"#,
        check: Check::Value(0),
    },
    Rule {
        id: "github_token",
        kind: CRED,
        re: r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}",
        check: Check::Bounded,
    },
    Rule {
        id: "github_pat",
        kind: CRED,
        re: r"github_pat_[A-Za-z0-9_]{22,}",
        check: Check::Bounded,
    },
    Rule {
        id: "gitlab_token",
        kind: CRED,
        re: r"glpat-[A-Za-z0-9_-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "slack_token",
        kind: CRED,
        re: r"xox[bpars]-[A-Za-z0-9-]{10,}",
        check: Check::Bounded,
    },
    Rule {
        id: "slack_webhook",
        kind: CRED,
        re: r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "stripe_key",
        kind: CRED,
        re: r"(?:sk|rk)_live_[A-Za-z0-9]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "google_api_key",
        kind: CRED,
        re: r"AIza[A-Za-z0-9_-]{35}",
        check: Check::Bounded,
    },
    Rule {
        id: "anthropic_api_key",
        kind: CRED,
        re: r"sk-ant-[A-Za-z0-9_-]{20,}",
        check: Check::Bounded,
    },
    Rule {
        id: "openai_api_key",
        kind: CRED,
        re: r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        check: Check::OpenAi,
    },
    Rule {
        id: "us_ssn",
        kind: PII,
        re: r"[0-9]{3}-[0-9]{2}-[0-9]{4}",
        check: Check::Ssn,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"(?:\([0-9]{3}\) ?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}",
        check: Check::Phone,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"0[1-9][0-9]{1,3}[ /-][0-9]{3,4}[ -][0-9]{3,4}",
        check: Check::Phone,
    },
    Rule {
        id: "payment_card",
        kind: PII,
        re: r"[0-9](?:[ -]?[0-9]){12,18}",
        check: Check::Card,
    },
    Rule {
        id: "phone",
        kind: PII,
        re: r"\+[1-9][0-9]{0,2}(?:[ .-]?\(?[0-9]{1,4}\)?){1,5}",
        check: Check::Phone,
    },
    Rule {
        id: "email",
        kind: PII,
        re: r"[A-Za-z0-9_.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        check: Check::Bounded,
    },
];

/// The ids of the pattern rules (deduplicated), for marker checks and documentation.
pub(super) fn rule_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = RULES.iter().map(|r| r.id).collect();
    ids.dedup();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Per-rule regexes that narrow an accepted match to the secret value (group 1).
static VALUE_RES: LazyLock<Vec<regex::bytes::Regex>> = LazyLock::new(|| {
    [r#"(?-u)[:=>]\s*["']?([A-Za-z0-9/+]{40})$"#]
        .iter()
        // Compile-time constant patterns: a failure is a bug caught by every test run.
        .map(|p| regex::bytes::Regex::new(p).expect("constant value regex"))
        .collect()
});

/// Rules `[..NUM_START]` start with a literal keyword (a prefilter finds them); rules
/// `[NUM_START..EMAIL]` start with a digit, or with `(` or `+` before a digit; rule `EMAIL` has
/// an inner `@`. Each group is searched the way that suits it (the first two anchored at the
/// places a match can start, the email rule unanchored around its `@`), and the scan takes
/// the leftmost candidate of the three (the lowest rule index at a tie): exactly what one
/// leftmost-first regex over all the rules finds (`tests::groups_equal_one_regex`).
///
/// Anchored searches keep the lazy DFA small: an unanchored search over the keyword rules
/// builds thousands of states (their counted repetitions overlap), and a short `confab scrub`
/// process spent a sixth of its time building them (BENCHMARKS.md §11).
const NUM_START: usize = 14;
const EMAIL: usize = 19;

/// The compiled rule groups (see [`NUM_START`]).
pub(super) struct Patterns {
    keyword: meta::Regex,
    /// Finds every place a keyword rule may start (a prefix literal of one of them): the
    /// keyword regex only ever runs anchored there. An unanchored search would have its lazy DFA
    /// follow every rule from every byte, and the states that builds (thousands, each costing
    /// microseconds to determinize) are what a short-lived `confab scrub` process pays for.
    keyword_starts: Prefilter,
    number: meta::Regex,
    email: meta::Regex,
}

static PATTERNS: LazyLock<Result<Patterns, String>> = LazyLock::new(Patterns::compile);

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn build(rules: &[Rule]) -> Result<meta::Regex, String> {
    let pats: Vec<&str> = rules.iter().map(|r| r.re).collect();
    meta::Regex::builder()
        .syntax(syntax_config())
        .configure(
            meta::Config::new()
                // A bigger lazy-DFA cache keeps the DFA from thrashing (docs/ARCHITECTURE.md §9: 285 MB/s
                // with the default, 630 MB/s with a larger cache).
                .hybrid_cache_capacity(16 << 20)
                .nfa_size_limit(Some(64 << 20))
                .dfa_size_limit(Some(64 << 20)),
        )
        .build_many(&pats)
        .map_err(|e| format!("pattern rules do not compile: {e}"))
}

/// A candidate: start, end, index into [`RULES`].
type Cand = (usize, usize, usize);

/// What a group's last search found from some position on.
#[derive(Clone, Copy)]
enum Next {
    Unknown,
    /// No candidate up to the end of the window.
    Done,
    At(Cand),
}

/// First byte at or after `from` (before `until`) that is an ASCII digit. Sixteen bytes at a
/// time: digits are a few percent of ordinary text.
fn next_digit(hay: &[u8], mut from: usize, until: usize) -> Option<usize> {
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    while from + 16 <= until {
        let Ok(bytes) = <[u8; 16]>::try_from(&hay[from..from + 16]) else {
            break;
        };
        // Digits become 0..=9; a byte below 10 sets its high bit in `t`. The lowest flagged
        // byte is always a true one (borrows only run upwards).
        let x = u128::from_le_bytes(bytes) ^ (ONES * 0x30);
        let t = x.wrapping_sub(ONES * 10) & !x & (ONES * 0x80);
        if t != 0 {
            return Some(from + (t.trailing_zeros() / 8) as usize);
        }
        from += 16;
    }
    (from..until).find(|&i| hay[i].is_ascii_digit())
}

/// The bytes of a number rule's match that starts with a digit: digits and the separators of
/// the phone, SSN and card rules.
fn number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b' ' | b'-' | b'.' | b'/')
}

/// Shortest match of a number rule that starts with a digit: `0DD DDD DDD` (the second phone
/// rule); the others need 11 (`DDD-DD-DDDD`), 12 (`DDD.DDD.DDDD`) or 13 (a card) bytes.
const MIN_DIGIT_START_LEN: usize = 11;

/// A necessary condition for a number-group match at `c` (checked before running the
/// automaton there): `(` and three digits; `+` and a digit 1-9; or a digit followed by a digit,
/// or by a space or `-` and a digit (every other number rule starts with three digits). A digit
/// start must also leave [`MIN_DIGIT_START_LEN`] bytes of its run: [`Patterns::number_from`]
/// checks that on the run it has measured.
fn may_start_number(hay: &[u8], c: usize, until: usize) -> bool {
    let at = |k: usize| if c + k < until { hay[c + k] } else { 0 };
    match at(0) {
        b'(' => at(1).is_ascii_digit() && at(2).is_ascii_digit() && at(3).is_ascii_digit(),
        b'+' => matches!(at(1), b'1'..=b'9'),
        b'0'..=b'9' => {
            at(1).is_ascii_digit() || (matches!(at(1), b' ' | b'-') && at(2).is_ascii_digit())
        }
        _ => false,
    }
}

impl Patterns {
    fn compile() -> Result<Patterns, String> {
        let keyword_rules: Vec<&str> = RULES[..NUM_START].iter().map(|r| r.re).collect();
        let hirs = syntax::parse_many_with(&keyword_rules, &syntax_config())
            .map_err(|e| format!("keyword rules do not parse: {e}"))?;
        let keyword_starts = Prefilter::from_hirs_prefix(MatchKind::LeftmostFirst, &hirs)
            .ok_or("keyword rules have no literal prefixes")?;
        Ok(Patterns {
            keyword: build(&RULES[..NUM_START])?,
            keyword_starts,
            number: build(&RULES[NUM_START..EMAIL])?,
            email: build(&RULES[EMAIL..])?,
        })
    }

    /// The shared, compiled rule set (built once per process).
    pub(super) fn get() -> Result<&'static Patterns, String> {
        PATTERNS.as_ref().map_err(Clone::clone)
    }

    /// The keyword group's leftmost candidate from `pos`: tried, anchored, at each place one
    /// of its prefix literals occurs (every match starts at one).
    fn keyword_from(&self, hay: &[u8], mut pos: usize, until: usize) -> Next {
        while let Some(lit) = self.keyword_starts.find(hay, Span::from(pos..until)) {
            let input = Input::new(hay)
                .range(lit.start..until)
                .anchored(Anchored::Yes);
            if let Some(m) = self.keyword.search(&input) {
                return Next::At((m.start(), m.end(), m.pattern().as_usize()));
            }
            pos = lit.start + 1;
        }
        Next::Done
    }

    fn unanchored(re: &meta::Regex, base: usize, hay: &[u8], pos: usize, until: usize) -> Next {
        match re.search(&Input::new(hay).range(pos..until)) {
            Some(m) => Next::At((m.start(), m.end(), base + m.pattern().as_usize())),
            None => Next::Done,
        }
    }

    /// The number group's leftmost candidate from `pos`: every match of it starts at a digit
    /// or at a `(`/`+` just before one, so only those starts are tried, anchored. A match that
    /// starts at a digit lies in a run of [`number_byte`]s of at least [`MIN_DIGIT_START_LEN`],
    /// so the digits of a shorter run (most numbers in text) are skipped together.
    fn number_from(&self, hay: &[u8], pos: usize, until: usize) -> Next {
        let try_at = |c: usize| {
            if !may_start_number(hay, c, until) {
                return None;
            }
            let input = Input::new(hay).range(c..until).anchored(Anchored::Yes);
            let m = self.number.search(&input)?;
            Some(Next::At((
                m.start(),
                m.end(),
                NUM_START + m.pattern().as_usize(),
            )))
        };
        let mut from = pos;
        while let Some(d) = next_digit(hay, from, until) {
            if let Some(c) = d.checked_sub(1)
                && c >= pos
                && matches!(hay[c], b'(' | b'+')
                && let Some(found) = try_at(c)
            {
                return found;
            }
            let run_end = hay[d..until]
                .iter()
                .position(|b| !number_byte(*b))
                .map_or(until, |k| d + k);
            // Only starts that leave a shortest match's length of the run (none in most runs).
            if let Some(last) = run_end.checked_sub(MIN_DIGIT_START_LEN) {
                for c in (d..=last).filter(|&c| hay[c].is_ascii_digit()) {
                    if let Some(found) = try_at(c) {
                        return found;
                    }
                }
            }
            // A `(` or `+` that ends the run is tried with the digit after it.
            from = run_end;
        }
        Next::Done
    }

    /// Appends every accepted candidate in `hay` to `out`.
    pub(super) fn scan(&self, hay: &[u8], out: &mut Vec<Hit>) {
        self.scan_window(hay, 0, hay.len(), out);
    }

    /// [`Patterns::scan`] of the candidates that start in `pos..until`, where `until` is a line
    /// end (a `\n` or the end of `hay`): no rule's regex matches a line break, so a candidate
    /// never crosses `until`, and the scan resumes at a match's end (an accepted PEM block may extend
    /// past it; neighbouring bytes are read from all of `hay`). So each line is scanned on its
    /// own, and scanning only some lines finds exactly what one scan of the whole text finds on
    /// them. Returns where the scan stopped.
    pub(super) fn scan_window(
        &self,
        hay: &[u8],
        mut pos: usize,
        until: usize,
        out: &mut Vec<Hit>,
    ) -> usize {
        let mut next = [Next::Unknown; 3];
        while pos < until {
            // Refresh each group whose candidate the scan has moved past.
            for (g, slot) in next.iter_mut().enumerate() {
                let stale = match *slot {
                    Next::Unknown => true,
                    Next::Done => false,
                    Next::At((s, _, _)) => s < pos,
                };
                if stale {
                    *slot = match g {
                        0 => self.keyword_from(hay, pos, until),
                        1 => self.number_from(hay, pos, until),
                        _ => Self::unanchored(&self.email, EMAIL, hay, pos, until),
                    };
                }
            }
            let best = next
                .iter()
                .filter_map(|n| match n {
                    Next::At(c) => Some(*c),
                    _ => None,
                })
                .min_by_key(|&(s, _, i)| (s, i));
            let Some((ms, me, i)) = best else {
                return until;
            };
            let rule = &RULES[i];
            match accept(rule, hay, ms, me) {
                Some((s, e)) => {
                    out.push(Hit {
                        start: s,
                        end: e,
                        ctx: ms,
                        rule: rule.id,
                        kind: rule.kind,
                        detail: HitDetail::None,
                    });
                    pos = me.max(ms + 1);
                }
                // A rejected candidate may hide a real one that starts inside it.
                None => pos = ms + 1,
            }
        }
        pos
    }
}

/// A byte that continues an identifier or token: a match must not be glued to one.
fn tokenish(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn left_ok(hay: &[u8], s: usize, also: &[u8]) -> bool {
    s == 0 || !(tokenish(hay[s - 1]) || also.contains(&hay[s - 1]))
}

fn right_ok(hay: &[u8], e: usize, also: &[u8]) -> bool {
    e >= hay.len() || !(tokenish(hay[e]) || also.contains(&hay[e]))
}

fn accept(rule: &Rule, hay: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let m = &hay[s..e];
    match rule.check {
        Check::Bounded => (left_ok(hay, s, b"-") && right_ok(hay, e, b"")).then_some((s, e)),
        Check::Value(i) => {
            // The key name is context enough on the left (`MY_AWS_SECRET_KEY=` must count).
            if !right_ok(hay, e, b"/+") {
                return None;
            }
            let caps = VALUE_RES.get(i)?.captures(m)?;
            let g = caps.get(1)?;
            Some((s + g.start(), s + g.end()))
        }
        Check::OpenAi => {
            let ok = left_ok(hay, s, b"-")
                && right_ok(hay, e, b"")
                && m.iter().any(u8::is_ascii_digit)
                && m[3..].iter().any(u8::is_ascii_alphabetic);
            ok.then_some((s, e))
        }
        Check::Bearer => {
            if !left_ok(hay, s, b"-") {
                return None;
            }
            // The credential is what follows the scheme and its blanks.
            let v = 6 + m[6..]
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            let tok = &m[v..];
            // Prose ("a Bearer token", "Bearer authentication") is not a credential: ask for
            // some length and a digit or mixed case, as real tokens have.
            let digit = tok.iter().any(u8::is_ascii_digit);
            let mixed =
                tok.iter().any(u8::is_ascii_uppercase) && tok.iter().any(u8::is_ascii_lowercase);
            (tok.len() >= 16 && (digit || mixed)).then_some((s + v, e))
        }
        Check::Pem => Some((s, pem_end(hay, e))),
        Check::Phone => {
            let digits = m.iter().filter(|b| b.is_ascii_digit()).count();
            let ok = (10..=15).contains(&digits)
                && left_ok(hay, s, b"-.+/")
                && right_ok(hay, e, b"-/")
                && !(e < hay.len()
                    && hay[e] == b'.'
                    && hay.get(e + 1).is_some_and(u8::is_ascii_digit));
            ok.then_some((s, e))
        }
        Check::Card => {
            let digits: Vec<u8> = m
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|b| b - b'0')
                .collect();
            let ok = left_ok(hay, s, b"-.+/")
                && right_ok(hay, e, b"-/")
                && !(e < hay.len()
                    && hay[e] == b'.'
                    && hay.get(e + 1).is_some_and(u8::is_ascii_digit))
                && card_prefix(&digits)
                && luhn(&digits);
            ok.then_some((s, e))
        }
        Check::Ssn => {
            let ok = left_ok(hay, s, b"-.+/") && right_ok(hay, e, b"-/") && ssn_valid(m);
            ok.then_some((s, e))
        }
    }
}

/// Issuer prefixes of the major networks (Visa, Mastercard, Amex, Discover, JCB, Diners):
/// with Luhn this keeps long order numbers and timestamps out.
fn card_prefix(d: &[u8]) -> bool {
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, x| a * 10 + u32::from(*x));
    let len = d.len();
    match d.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&n(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&n(4)) && len == 16,
        Some(3) => {
            (matches!(n(2), 34 | 37) && len == 15)
                || ((3528..=3589).contains(&n(4)) && len >= 16)
                || (matches!(n(2), 36 | 38 | 39) && len >= 14)
                || ((300..=305).contains(&n(3)) && len >= 14)
        }
        Some(6) => (n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3))) && len >= 16,
        _ => false,
    }
}

/// The Luhn checksum (ISO/IEC 7812-1).
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| {
            let x = u32::from(*x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

/// SSA rules: area 000, 666 and 900–999, group 00 and serial 0000 are never issued; the
/// Woolworth wallet number 078-05-1120 and the 1940s advert 219-09-9999 are well-known fakes.
pub fn ssn_valid(m: &[u8]) -> bool {
    if m.len() != 11 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        m[r].iter()
            .fold(0u32, |a, b| a * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    let (area, group, serial) = (num(0..3), num(4..6), num(7..11));
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && m != b"078-05-1120"
        && m != b"219-09-9999"
}

/// Where a PEM private-key block whose BEGIN line ends at `after` ends: at the end of its
/// `-----END …-----` line if that comes within [`PEM_CAP`] over PEM body bytes only (base64,
/// line breaks, escaped `\n`, `Proc-Type:`/`DEK-Info:` header lines); else at the end of the
/// base64 body that follows (capped), so a truncated block is still redacted.
fn pem_end(hay: &[u8], after: usize) -> usize {
    let limit = hay.len().min(after.saturating_add(PEM_CAP));
    let window = &hay[after..limit];
    let body_or_header = |b: &u8| b.is_ascii_alphanumeric() || b" \t\r\n+/=\\:,-".contains(b);
    if let Some(p) = memchr::memmem::find(window, b"-----END ")
        && window[..p].iter().all(body_or_header)
        && let Some(q) = memchr::memmem::find(&window[p + 9..], b"-----")
    {
        return after + p + 9 + q + 5;
    }
    let body = |b: &u8| b.is_ascii_alphanumeric() || b"\r\n+/=\\".contains(b);
    after + window.iter().take_while(|b| body(b)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan as it was: one leftmost-first regex over all the rules.
    fn scan_one_regex(re: &meta::Regex, hay: &[u8]) -> Vec<(usize, usize, usize, &'static str)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos <= hay.len() {
            let Some(m) = re.search(&Input::new(hay).range(pos..)) else {
                break;
            };
            let rule = &RULES[m.pattern().as_usize()];
            match accept(rule, hay, m.start(), m.end()) {
                Some((s, e)) => {
                    out.push((s, e, m.start(), rule.id));
                    pos = m.end().max(m.start() + 1);
                }
                None => pos = m.start() + 1,
            }
        }
        out
    }

    #[test]
    fn groups_are_what_they_claim() {
        // Every number-group rule starts with a digit, `(` or `+`; keyword rules with a literal.
        for r in &RULES[NUM_START..EMAIL] {
            assert!(
                r.re.starts_with("[0-9]")
                    || r.re.starts_with("0")
                    || r.re.starts_with(r"(?:\(")
                    || r.re.starts_with(r"\+"),
                "{}",
                r.id
            );
        }
        assert_eq!(RULES[EMAIL].id, "email");
        assert_eq!(RULES.len(), EMAIL + 1);
        // No rule may match a line break (the re-scan after a redaction relies on it).
        let p = Patterns::get().expect("compiles");
        for re in [&p.keyword, &p.number, &p.email] {
            for hay in [&b"\n"[..], b"a\nb", b"1\n2"] {
                for s in 0..hay.len() {
                    let m = re.search(&Input::new(hay).range(s..).anchored(Anchored::Yes));
                    assert!(m.is_none_or(|m| !hay[m.range()].contains(&b'\n')));
                }
            }
        }
        // Nor do the patterns name one: no `\s`, `\n`, negated class or `.`-any.
        for r in RULES {
            assert!(
                !(r.re.contains(r"\s") || r.re.contains(r"\n") || r.re.contains("[^")),
                "{}",
                r.id
            );
        }
    }

    #[test]
    fn groups_equal_one_regex() {
        let one = build(RULES).expect("compiles");
        let groups = Patterns::get().expect("compiles");
        const FRAGS: &[&[u8]] = &[
            b" ",
            b"\n",
            b"-",
            b".",
            b"/",
            b"+",
            b"(",
            b")",
            b"@",
            b"_",
            b"x",
            b"A",
            b"0",
            b"1",
            b"5",
            b"9",
            b"\xc3\xa9",
            b"\xff",
            b"555",
            b"123",
            b"4567",
            b"45",
            b"6789",
            b"020",
            b"+44",
            b"+1",
            b"(555)",
            b"4111",
            b"1111",
            b"4111 1111 1111 1111",
            b"555-123-4567",
            b"123-45-6789",
            b"(555) 123-4567",
            b"+44 20 7946 0958",
            b"jane.doe",
            b"example.com",
            b"jane@example.com",
            b"Bearer ",
            b"bearer\t",
            b"aws",
            b"AWS_SECRET",
            b"secret",
            b"=",
            b"AKIAIOSFODNN7EXAMPLE",
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            b"ghp_",
            b"a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            b"sk-",
            b"sk-ant-",
            b"proj-",
            b"eyJhbGciOiJIUzI1NiJ9",
            b"eyJzdWIiOiIxIn0",
            b"xoxb-",
            b"glpat-",
            b"AIza",
            b"https://hooks.slack.com/services/",
            b"-----BEGIN RSA PRIVATE KEY-----",
            b"-----END RSA PRIVATE KEY-----",
            b"MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf",
            b"sk_live_",
            b"github_pat_",
            // Number runs around the shortest match of each number rule.
            b"0201 234 5678",
            b"020/123 4567",
            b"+1 (555) 123-4567",
            b"555.123.4567",
            b"1234567890123",
            b"4111-1111-1111-1111",
            b"12.34.56",
            b"2025-02-17",
        ];
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..30_000 {
            let n = 1 + (next() % 30) as usize;
            let mut t = Vec::new();
            for _ in 0..n {
                t.extend_from_slice(FRAGS[(next() % FRAGS.len() as u64) as usize]);
            }
            let mut got = Vec::new();
            groups.scan(&t, &mut got);
            let got: Vec<_> = got
                .iter()
                .map(|h| (h.start, h.end, h.ctx, h.rule))
                .collect();
            assert_eq!(
                got,
                scan_one_regex(&one, &t),
                "{:?}",
                String::from_utf8_lossy(&t)
            );
        }
    }

    #[test]
    fn next_digit_finds_the_first() {
        let hay = b"abcdefghij0klmnopqrstuvwxyz9 (1) \xff\x2f\x3a5";
        for from in 0..hay.len() {
            for until in from..=hay.len() {
                let want = (from..until).find(|&i| hay[i].is_ascii_digit());
                assert_eq!(next_digit(hay, from, until), want, "{from}..{until}");
            }
        }
    }
}
