//! A deterministic LLM-style markdown corpus with planted secrets, shared by the `scrubber`
//! bench (in memory) and `benches/compare/run.sh` (written out through the bench binary with
//! `CONFAB_CORPUS_OUT`, see `benches/scrubber.rs`).
//!
//! The text imitates what a chat model answers: headings, prose with inline code and links,
//! bullet and numbered lists, fenced code (Python, Rust, shell, JSON), tables, ids, UUIDs,
//! git hashes, timestamps. Roughly one response in three carries a planted value: a
//! credential in a known format (AWS, GitHub, OpenAI, Slack, Stripe, JWT, a PEM key block),
//! PII (email, phone, Luhn-valid card, SSN) or one of the [`registered_secrets`] (raw or inside
//! a base64 `Basic` credential).
//!
//! The non-ASCII variant spells quotes, apostrophes, dashes, ellipses and a few loanwords the
//! way models do (“ ” ’ — … é), which makes about 1% of the bytes non-ASCII.

#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::io::{self, Write};

/// SplitMix64: tiny, seeded, good enough to pick words.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chars(&mut self, alphabet: &[u8], n: usize, out: &mut String) {
        for _ in 0..n {
            out.push(char::from(alphabet[self.below(alphabet.len())]));
        }
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_DIGIT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The seed of the benchmark corpus.
pub(crate) const SEED: u64 = 0x00c0_4fab;

/// `n` exact secrets to register, deterministic; the first ten are planted in the corpus.
pub(crate) fn registered_secrets(n: usize) -> Vec<String> {
    let mut rng = Rng::new(SEED ^ 0x5ec7);
    (0..n)
        .map(|i| {
            let mut s = format!("cfb{i:04}_");
            rng.chars(ALNUM, 28, &mut s);
            s
        })
        .collect()
}

const WORDS: &[&str] = &[
    "the",
    "the",
    "the",
    "a",
    "a",
    "to",
    "to",
    "of",
    "of",
    "and",
    "and",
    "in",
    "is",
    "is",
    "for",
    "that",
    "this",
    "with",
    "you",
    "it",
    "on",
    "as",
    "be",
    "can",
    "are",
    "by",
    "your",
    "if",
    "from",
    "or",
    "when",
    "which",
    "will",
    "should",
    "each",
    "then",
    "not",
    "all",
    "more",
    "request",
    "response",
    "service",
    "client",
    "server",
    "token",
    "user",
    "users",
    "value",
    "field",
    "function",
    "method",
    "error",
    "errors",
    "handler",
    "endpoint",
    "database",
    "query",
    "cache",
    "config",
    "configuration",
    "file",
    "files",
    "path",
    "header",
    "headers",
    "timeout",
    "retry",
    "version",
    "release",
    "build",
    "test",
    "tests",
    "document",
    "documents",
    "example",
    "default",
    "option",
    "options",
    "parameter",
    "parameters",
    "string",
    "number",
    "list",
    "object",
    "array",
    "key",
    "keys",
    "schema",
    "model",
    "prompt",
    "output",
    "input",
    "step",
    "steps",
    "first",
    "next",
    "finally",
    "also",
    "however",
    "instead",
    "usually",
    "simply",
    "safely",
    "quickly",
    "correctly",
    "explicitly",
    "automatically",
    "return",
    "returns",
    "call",
    "calls",
    "use",
    "uses",
    "using",
    "create",
    "update",
    "delete",
    "read",
    "write",
    "check",
    "checks",
    "make",
    "sure",
    "need",
    "needs",
    "want",
    "handle",
    "handles",
    "parse",
    "validate",
    "verify",
    "load",
    "store",
    "send",
    "receive",
    "configure",
    "deploy",
    "run",
    "runs",
    "install",
    "import",
    "add",
    "remove",
    "set",
    "get",
    "keep",
    "avoid",
    "important",
    "simple",
    "common",
    "recommended",
    "secure",
    "async",
    "local",
    "remote",
    "production",
    "staging",
    "environment",
    "variable",
    "variables",
    "logging",
    "metrics",
    "latency",
    "throughput",
    "memory",
    "thread",
    "threads",
    "connection",
    "pool",
    "session",
    "permission",
    "permissions",
    "scope",
    "access",
    "account",
    "project",
    "team",
    "workflow",
    "pipeline",
    "container",
    "image",
    "cluster",
    "region",
    "bucket",
    "queue",
    "message",
    "event",
    "events",
    "API",
    "HTTP",
    "JSON",
    "SQL",
    "Python",
    "Rust",
    "Docker",
    "Kubernetes",
    "Postgres",
    "Redis",
    "GitHub",
    "AWS",
    "OAuth",
    "JWT",
    "CLI",
    "SDK",
    "TLS",
    "URL",
    "UTC",
];

const IDENTS: &[&str] = &[
    "get_user_by_id",
    "fetch_documents",
    "parse_config",
    "retry_with_backoff",
    "max_retries",
    "timeout_seconds",
    "user_id",
    "doc_id",
    "DATABASE_URL",
    "LOG_LEVEL",
    "serde_json::from_str",
    "requests.get",
    "async fn main",
    "Vec<String>",
    "HashMap",
    "self.client",
    "config.yaml",
    "Cargo.toml",
    "package.json",
    "src/main.rs",
    "app.py",
    "--verbose",
    "npm install",
    "pip install -r requirements.txt",
    "kubectl apply -f deploy.yaml",
    "createdAt",
    "getUserProfile",
    "isEnabled",
    "onSubmit",
    "useEffect",
    "README.md",
    "docker compose up",
];

const HOSTS: &[&str] = &[
    "docs.example.com",
    "api.example.com",
    "github.com/example/project",
    "developer.mozilla.org/en-US/docs/Web/HTTP",
    "www.rfc-editor.org/rfc/rfc6750",
    "pypi.org/project/requests",
    "crates.io/crates/serde",
];

const LANGS: &[&str] = &["python", "rust", "bash", "json", "yaml", "typescript"];

/// What the corpus looks like.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// Stop after at least this many bytes (the last response is cut at the limit).
    pub bytes: usize,
    /// Smart punctuation and accented words (~1% non-ASCII bytes).
    pub non_ascii: bool,
    pub seed: u64,
    /// Responses (per mille) that carry a planted value: 330 by default; the secret-dense
    /// variant (issue 14) plants one in every response, about one per 2–5 KB.
    pub plant_per_mille: u64,
}

impl Options {
    pub(crate) fn ascii(bytes: usize) -> Options {
        Options {
            bytes,
            non_ascii: false,
            seed: SEED,
            plant_per_mille: 330,
        }
    }

    pub(crate) fn non_ascii(bytes: usize) -> Options {
        Options {
            bytes,
            non_ascii: true,
            seed: SEED,
            plant_per_mille: 330,
        }
    }

    /// LLM-style text dense with secrets: a planted value in every response, ~1% non-ASCII.
    pub(crate) fn secret_dense(bytes: usize) -> Options {
        Options {
            plant_per_mille: 1000,
            ..Options::non_ascii(bytes)
        }
    }
}

/// The corpus in memory.
pub(crate) fn generate(opts: Options) -> Vec<u8> {
    let mut out = Vec::with_capacity(opts.bytes + 16 * 1024);
    stream(opts, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// The corpus written response by response (bounded memory, for a 1 GB pipe).
pub(crate) fn stream(opts: Options, mut w: impl Write) -> io::Result<u64> {
    let mut g = Gen {
        rng: Rng::new(opts.seed),
        non_ascii: opts.non_ascii,
        plant_per_mille: opts.plant_per_mille,
        secrets: registered_secrets(10),
        out: String::with_capacity(32 * 1024),
    };
    let mut written = 0u64;
    let mut n = 0u64;
    while (written as usize) < opts.bytes {
        g.out.clear();
        g.response(n);
        n += 1;
        let left = opts.bytes - written as usize;
        let mut take = g.out.len().min(left);
        while !g.out.is_char_boundary(take) {
            take += 1;
        }
        w.write_all(&g.out.as_bytes()[..take])?;
        written += take as u64;
    }
    w.flush()?;
    Ok(written)
}

/// Share of bytes ≥ 0x80.
pub(crate) fn non_ascii_fraction(text: &[u8]) -> f64 {
    text.iter().filter(|b| **b >= 0x80).count() as f64 / text.len().max(1) as f64
}

struct Gen {
    rng: Rng,
    non_ascii: bool,
    plant_per_mille: u64,
    secrets: Vec<String>,
    out: String,
}

impl Gen {
    fn response(&mut self, n: u64) {
        let lead = [
            "Sure! Here is how you can do it.",
            "Great question.",
            "Here's a step-by-step explanation.",
            "Below is a summary of the changes.",
            "Let's break this down.",
        ];
        let s = self.rng.pick(&lead).to_owned();
        self.prose_fixed(&s);
        self.out.push_str("\n\n");
        let sections = 2 + self.rng.below(4);
        for _ in 0..sections {
            self.out
                .push_str(if self.rng.chance(500) { "## " } else { "### " });
            self.title();
            self.out.push_str("\n\n");
            match self.rng.below(6) {
                0 | 1 => {
                    let n = 1 + self.rng.below(3);
                    self.paragraphs(n)
                }
                2 => self.list(),
                3 => self.code(),
                4 => self.table(),
                _ => {
                    self.paragraphs(1);
                    self.code();
                }
            }
        }
        if self.rng.chance(self.plant_per_mille) {
            self.plant(n);
        }
        self.paragraphs(1);
        self.out.push_str("\n---\n\n");
    }

    fn title(&mut self) {
        let n = 2 + self.rng.below(4);
        for i in 0..n {
            let w = self.rng.pick(WORDS);
            if i == 0 {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    self.out.extend(f.to_uppercase());
                    self.out.push_str(c.as_str());
                }
            } else {
                self.out.push(' ');
                self.out.push_str(w);
            }
        }
    }

    fn prose_fixed(&mut self, s: &str) {
        if self.non_ascii {
            self.out.push_str(&s.replace('\'', "\u{2019}"));
        } else {
            self.out.push_str(s);
        }
    }

    fn sentence(&mut self) {
        let n = 8 + self.rng.below(14);
        let mut quoted = false;
        for i in 0..n {
            if i > 0 {
                self.out.push(' ');
            }
            let r = self.rng.below(1000);
            let w = self.rng.pick(WORDS);
            match r {
                0..=39 => {
                    self.out.push('`');
                    let id = self.rng.pick(IDENTS);
                    self.out.push_str(id);
                    self.out.push('`');
                }
                40..=49 => {
                    let host = self.rng.pick(HOSTS);
                    self.out.push('[');
                    self.out.push_str(w);
                    self.out.push_str("](https://");
                    self.out.push_str(host);
                    self.out.push(')');
                }
                50..=62 => {
                    let v = self.rng.next() % 10_000;
                    self.out.push_str(&v.to_string());
                }
                63..=70 if !quoted => {
                    quoted = true;
                    self.out
                        .push_str(if self.non_ascii { "\u{201c}" } else { "\"" });
                    self.out.push_str(w);
                }
                71..=78 if quoted => {
                    quoted = false;
                    self.out.push_str(w);
                    self.out
                        .push_str(if self.non_ascii { "\u{201d}" } else { "\"" });
                }
                79..=84 => {
                    self.out
                        .push_str(if self.non_ascii { "\u{2014}" } else { "--" });
                    self.out.push(' ');
                    self.out.push_str(w);
                }
                85..=87 => {
                    self.out.push_str(if self.non_ascii {
                        self.rng
                            .pick(&["café", "résumé", "naïve", "déjà vu", "façade"])
                    } else {
                        self.rng
                            .pick(&["cafe", "resume", "naive", "deja vu", "facade"])
                    });
                }
                88..=92 => {
                    self.out
                        .push_str(self.rng.pick(&["don't", "it's", "you'll", "won't"]));
                    if self.non_ascii {
                        // The apostrophe a model prints.
                        let at = self.out.rfind('\'').unwrap_or(self.out.len());
                        self.out.replace_range(at..at + 1, "\u{2019}");
                    }
                }
                _ => self.out.push_str(w),
            }
        }
        if quoted {
            self.out
                .push_str(if self.non_ascii { "\u{201d}" } else { "\"" });
        }
        if self.rng.chance(40) {
            self.out
                .push_str(if self.non_ascii { "\u{2026}" } else { "..." });
        } else {
            self.out.push('.');
        }
    }

    fn paragraphs(&mut self, n: usize) {
        for _ in 0..n {
            let s = 2 + self.rng.below(5);
            for i in 0..s {
                if i > 0 {
                    self.out.push(' ');
                }
                let first = self.out.len();
                self.sentence();
                // Capitalise the sentence's first letter.
                if let Some(c) = self.out[first..].chars().next()
                    && c.is_ascii_lowercase()
                {
                    self.out
                        .replace_range(first..first + 1, &c.to_ascii_uppercase().to_string());
                }
            }
            self.out.push_str("\n\n");
        }
    }

    fn list(&mut self) {
        let n = 3 + self.rng.below(5);
        let numbered = self.rng.chance(500);
        for i in 0..n {
            if numbered {
                self.out.push_str(&format!("{}. ", i + 1));
            } else {
                self.out.push_str("- ");
            }
            if self.rng.chance(400) {
                self.out.push_str("**");
                self.title();
                self.out.push_str("**: ");
            }
            self.sentence();
            self.out.push('\n');
        }
        self.out.push('\n');
    }

    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        self.rng.chars(HEX, n, &mut s);
        s
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn code(&mut self) {
        let lang = self.rng.pick(LANGS);
        self.out.push_str("```");
        self.out.push_str(lang);
        self.out.push('\n');
        let lines = 4 + self.rng.below(14);
        for _ in 0..lines {
            let id = self.rng.pick(IDENTS);
            let w = self.rng.pick(WORDS);
            let n = self.rng.next() % 1000;
            let line = match (lang, self.rng.below(8)) {
                ("python", 0) => format!("def {}(user_id: int, timeout: float = 30.0) -> dict:", w.to_lowercase()),
                ("python", 1) => format!("    resp = requests.get(f\"https://api.example.com/v2/{w}/{{user_id}}\", timeout=timeout)"),
                ("python", 2) => "    headers = {\"Authorization\": f\"Bearer {token}\", \"Accept\": \"application/json\"}".to_owned(),
                ("python", 3) => format!("    logger.info(\"{w} took %.2f ms\", elapsed * 1000)  # {id}"),
                ("python", _) => format!("    {w}_count = len(items) + {n}"),
                ("rust", 0) => format!("pub async fn {}(client: &Client, id: u64) -> Result<{}, Error> {{", w.to_lowercase(), "Response"),
                ("rust", 1) => format!("    let {w} = client.get(format!(\"{{base}}/v1/{w}/{{id}}\")).send().await?;"),
                ("rust", 2) => format!("    tracing::debug!(%id, \"loaded {w} in {n} ms\");"),
                ("rust", 3) => "    }".to_owned(),
                ("rust", _) => format!("    let {w}_len = items.iter().filter(|x| x.is_valid()).count(); // {id}"),
                ("bash", 0) => format!("export {}_URL=\"https://{}\"", w.to_uppercase(), self.rng.pick(HOSTS)),
                ("bash", 1) => format!("git checkout {}", self.hex(40)),
                ("bash", 2) => format!("curl -sS -H 'Accept: application/json' https://api.example.com/v1/{w}?limit={n}"),
                ("bash", _) => format!("{id} # {w}"),
                ("json", 0) => format!("  \"id\": \"{}\",", self.uuid()),
                ("json", 1) => format!("  \"created_at\": \"2025-0{}-1{}T12:{:02}:00Z\",", 1 + n % 9, n % 10, n % 60),
                ("json", 2) => format!("  \"commit\": \"{}\",", self.hex(40)),
                ("json", _) => format!("  \"{w}\": {n},"),
                ("yaml", 0) => format!("  image: registry.example.com/{w}:1.{}.{}", n % 20, n % 7),
                ("yaml", _) => format!("  {w}: {n}"),
                (_, 0) => format!("export async function {}(id: string): Promise<{}> {{", w.to_lowercase(), "Item"),
                (_, _) => format!("  const {w} = await fetch(`/api/{w}/${{id}}`); // {id}"),
            };
            self.out.push_str(&line);
            self.out.push('\n');
        }
        self.out.push_str("```\n\n");
    }

    fn table(&mut self) {
        self.out
            .push_str("| Name | Type | Default | Description |\n|---|---|---|---|\n");
        for _ in 0..3 + self.rng.below(5) {
            let id = self.rng.pick(IDENTS);
            let ty = self
                .rng
                .pick(&["string", "int", "bool", "duration", "list"]);
            let d = self.rng.next() % 500;
            self.out.push_str(&format!("| `{id}` | {ty} | {d} | "));
            self.sentence();
            self.out.push_str(" |\n");
        }
        self.out.push('\n');
    }

    /// One planted value, in a sentence or a config snippet.
    fn plant(&mut self, n: u64) {
        let mut v = String::new();
        let kind = self.rng.below(15);
        match kind {
            0 => {
                v.push_str("AKIA");
                self.rng.chars(UPPER_DIGIT, 16, &mut v);
                self.out.push_str(&format!(
                    "Set `AWS_ACCESS_KEY_ID={v}` in your shell before running the script.\n\n"
                ));
            }
            1 => {
                let mut s = String::new();
                self.rng.chars(B64, 40, &mut s);
                self.out.push_str(&format!(
                    "```ini\n[default]\naws_secret_access_key = {s}\nregion = eu-west-1\n```\n\n"
                ));
            }
            2 => {
                v.push_str("ghp_");
                self.rng.chars(ALNUM, 36, &mut v);
                self.out.push_str(&format!(
                    "Then authenticate with the token `{v}` and push again.\n\n"
                ));
            }
            3 => {
                v.push_str("sk-proj-");
                self.rng.chars(ALNUM, 48, &mut v);
                self.out.push_str(&format!(
                    "```python\nclient = OpenAI(api_key=\"{v}\")\n```\n\n"
                ));
            }
            4 => {
                v.push_str("xoxb-");
                let a = self.rng.next() % 1_000_000_000_000;
                let b = self.rng.next() % 1_000_000_000_000;
                let mut c = String::new();
                self.rng.chars(ALNUM, 24, &mut c);
                v.push_str(&format!("{a}-{b}-{c}"));
                self.out.push_str(&format!(
                    "The bot token is {v}; rotate it after the demo.\n\n"
                ));
            }
            5 => {
                v.push_str("sk_live_");
                self.rng.chars(ALNUM, 24, &mut v);
                self.out.push_str(&format!("STRIPE_SECRET_KEY={v}\n\n"));
            }
            6 => {
                let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
                let payload = URL_SAFE_NO_PAD.encode(format!(
                    r#"{{"sub":"user-{n}","iat":1735689600,"exp":1735693200,"scope":"docs:read"}}"#
                ));
                let mut sig = String::new();
                self.rng.chars(ALNUM, 43, &mut sig);
                self.out.push_str(&format!(
                    "```bash\ncurl -H \"Authorization: Bearer {header}.{payload}.{sig}\" https://api.example.com/v1/me\n```\n\n"
                ));
            }
            7 => {
                self.out.push_str("```\n-----BEGIN RSA PRIVATE KEY-----\n");
                for _ in 0..12 {
                    let mut l = String::new();
                    self.rng.chars(B64, 64, &mut l);
                    self.out.push_str(&l);
                    self.out.push('\n');
                }
                self.out.push_str("-----END RSA PRIVATE KEY-----\n```\n\n");
            }
            8 => {
                let user = self.rng.pick(&["jane.doe", "j.smith", "ops-team", "alex"]);
                self.out.push_str(&format!(
                    "Contact {user}{n}@example.org if the job fails.\n\n"
                ));
            }
            9 => {
                let p = self.rng.next() % 10_000;
                self.out.push_str(&format!(
                    "Call support at (415) 555-{p:04} during business hours.\n\n"
                ));
            }
            10 => {
                self.out
                    .push_str("Use the test card 4111 1111 1111 1111 with any future expiry.\n\n");
            }
            11 => {
                self.out
                    .push_str("The form field expects an SSN such as 123-45-6789.\n\n");
            }
            12 | 13 => {
                let s = self.secrets[self.rng.below(self.secrets.len())].clone();
                self.out.push_str(&format!(
                    "Your deployment key is `{s}`; keep it out of logs.\n\n"
                ));
            }
            _ => {
                let s = self.secrets[self.rng.below(self.secrets.len())].clone();
                let basic = STANDARD.encode(format!("deploy:{s}"));
                self.out
                    .push_str(&format!("Authorization: Basic {basic}\n\n"));
            }
        }
    }
}
