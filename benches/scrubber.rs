//! Output scrubber throughput (MB/s) on a ~20 MB generated LLM-style markdown corpus, ASCII
//! and with ~1% non-ASCII punctuation, next to its floors:
//!
//! * `confab_full_rules_secrets_{0,10,1000}`: `Scrubber::scrub` with the full rule set
//!   (credentials, PII, high entropy) and 0, 10 or 1,000 registered exact secrets;
//! * `confab_stream_secrets_10`: `scrub_stream` (what `confab scrub` runs) into a sink;
//! * `detect_once_secrets_10`: one detection pass of all detectors (`is_clean`), without the
//!   rendering and the re-scan that `scrub` does after a redaction;
//! * `rules_only` / `entropy_only` / `literals_only_1000`: one detector family alone, to see
//!   where the time goes;
//! * `floor_aho_corasick_{10,1000}`: a plain leftmost-longest Aho-Corasick pass (the crate's
//!   defaults) over the same text with the same literals (each secret and every encoding the
//!   scrubber registers for it): what a straightforward literal scanner pays. The names keep
//!   `floor` for continuity; the scrubber's own literal pass beats it (packed searchers, run
//!   skipping), so it is a reference rather than a floor;
//! * `floor_memchr`: memchr of one byte that never occurs (memory bandwidth).
//!
//! `scrubber/secret_dense_20MB` runs the same on text with a planted value in every response
//! (one per few KB, ~1% non-ASCII; issue 14).
//!
//! `scrubber/response_8KB` gives the per-response cost for an 8 KB model answer.
//!
//! With `CONFAB_CORPUS_OUT=<file or ->` set, the binary writes the corpus instead of
//! benchmarking (see `benches/compare/run.sh`): `CONFAB_CORPUS_BYTES` (default 20 MB),
//! `CONFAB_CORPUS_NON_ASCII=1`, `CONFAB_CORPUS_DENSE=1` (the secret-dense variant), and
//! `CONFAB_SECRETS_OUT=<file>` for the ten planted registered secrets, one per line.

#[path = "compare/corpus.rs"]
mod corpus;

use aho_corasick::{AhoCorasick, MatchKind};
use confab::guard::Secret;
use confab::guard::scrub::{
    ScrubConfig, Scrubber, ScrubberBuilder, SecretKind, encodings, scrub_stream,
};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use std::hint::black_box;
use std::io::{self, Write};
use std::time::Duration;

const CORPUS_BYTES: usize = 20 * 1024 * 1024;

fn scrubber(secrets: usize, config: ScrubConfig) -> Scrubber {
    let mut b = ScrubberBuilder::new().config(config);
    for (i, s) in corpus::registered_secrets(secrets).iter().enumerate() {
        b.secret(
            SecretKind::Custom,
            format!("bench-{i}"),
            &Secret::from(s.as_str()),
        )
        .expect("registers");
    }
    b.build().expect("builds")
}

fn no_rules() -> ScrubConfig {
    ScrubConfig {
        credentials: false,
        pii: false,
        high_entropy: false,
        ..ScrubConfig::default()
    }
}

/// The literal patterns the scrubber registers per secret (`confab::guard::scrub::encodings`:
/// raw, base64 cores at three alignments, hex and percent), deduplicated across secrets.
fn literal_patterns(secrets: &[String]) -> Vec<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    secrets
        .iter()
        .flat_map(|s| encodings(s.as_bytes()))
        .map(|(_, p)| p)
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

fn floor_ac(secrets: usize) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(literal_patterns(&corpus::registered_secrets(secrets)))
        .expect("builds")
}

fn bench_corpus(c: &mut Criterion, name: &str, text: &[u8]) {
    let full0 = scrubber(0, ScrubConfig::default());
    let full10 = scrubber(10, ScrubConfig::default());
    let full1000 = scrubber(1000, ScrubConfig::default());
    let findings = full10.find(text).len();
    eprintln!(
        "scrubber/{name}: {} bytes, {:.3}% non-ASCII, {findings} findings with 10 secrets",
        text.len(),
        100.0 * corpus::non_ascii_fraction(text)
    );
    let rules_only = scrubber(
        0,
        ScrubConfig {
            high_entropy: false,
            ..ScrubConfig::default()
        },
    );
    let entropy_only = scrubber(
        0,
        ScrubConfig {
            high_entropy: true,
            ..no_rules()
        },
    );
    let literals_only = scrubber(1000, no_rules());
    let ac10 = floor_ac(10);
    let ac1000 = floor_ac(1000);

    let mut g = c.benchmark_group(format!("scrubber/{name}"));
    g.throughput(Throughput::Bytes(text.len() as u64));
    // 20 MB per iteration: flat sampling keeps a run to ~10 iterations per bench.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    for (label, s) in [
        ("confab_full_rules_secrets_0", &full0),
        ("confab_full_rules_secrets_10", &full10),
        ("confab_full_rules_secrets_1000", &full1000),
        ("rules_only", &rules_only),
        ("entropy_only", &entropy_only),
        ("literals_only_1000", &literals_only),
    ] {
        g.bench_function(label, |b| b.iter(|| black_box(s.scrub(black_box(text)))));
    }
    // One detection pass, no rendering and no re-scan: what the full scrub costs on top.
    g.bench_function("detect_once_secrets_10", |b| {
        b.iter(|| full10.is_clean(black_box(text)))
    });
    g.bench_function("confab_stream_secrets_10", |b| {
        b.iter(|| {
            scrub_stream(&full10, black_box(text), io::sink(), |_| Ok(()))
                .expect("sink never fails")
        })
    });
    for (label, ac) in [
        ("floor_aho_corasick_10", &ac10),
        ("floor_aho_corasick_1000", &ac1000),
    ] {
        g.bench_function(label, |b| b.iter(|| ac.find_iter(black_box(text)).count()));
    }
    g.bench_function("floor_memchr", |b| {
        b.iter(|| memchr::memchr(0, black_box(text)))
    });
    g.finish();
}

fn bench_scrubber(c: &mut Criterion) {
    let ascii = corpus::generate(corpus::Options::ascii(CORPUS_BYTES));
    bench_corpus(c, "ascii_20MB", &ascii);
    let non_ascii = corpus::generate(corpus::Options::non_ascii(CORPUS_BYTES));
    bench_corpus(c, "non_ascii_20MB", &non_ascii);
    // Issue 14: secret-dense LLM-style text (a planted value in every response, ~1%
    // non-ASCII), where the 500 MB/s goal must hold too.
    let dense = corpus::generate(corpus::Options::secret_dense(CORPUS_BYTES));
    bench_corpus(c, "secret_dense_20MB", &dense);

    // Per-response cost: an 8 KB answer, clean and with a planted credential.
    let full10 = scrubber(10, ScrubConfig::default());
    let full1000 = scrubber(1000, ScrubConfig::default());
    let clean = clean_window(&full10, &ascii, 8 * 1024);
    let mut dirty = clean.clone();
    let at = dirty.len() / 2;
    let planted = b" token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 here ";
    dirty[at..at + planted.len()].copy_from_slice(planted);
    let mut g = c.benchmark_group("scrubber/response_8KB");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    for (label, s, text) in [
        ("clean_secrets_10", &full10, &clean),
        ("clean_secrets_1000", &full1000, &clean),
        ("one_finding_secrets_10", &full10, &dirty),
    ] {
        g.bench_function(label, |b| b.iter(|| black_box(s.scrub(black_box(text)))));
    }
    g.finish();
}

/// An 8 KB window of the corpus with nothing to redact.
fn clean_window(s: &Scrubber, text: &[u8], len: usize) -> Vec<u8> {
    let mut at = 0;
    while at + len <= text.len() {
        let w = &text[at..at + len];
        if s.is_clean(w) {
            return w.to_vec();
        }
        at += len / 2;
    }
    panic!("no clean window in the corpus");
}

criterion_group!(benches, bench_scrubber);

/// The corpus the environment asks for (see the module docs): `CONFAB_CORPUS_BYTES`, and
/// `CONFAB_CORPUS_DENSE=1` or `CONFAB_CORPUS_NON_ASCII=1` (ASCII otherwise).
fn corpus_options() -> corpus::Options {
    let bytes = std::env::var("CONFAB_CORPUS_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CORPUS_BYTES);
    let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    if on("CONFAB_CORPUS_DENSE") {
        corpus::Options::secret_dense(bytes)
    } else if on("CONFAB_CORPUS_NON_ASCII") {
        corpus::Options::non_ascii(bytes)
    } else {
        corpus::Options::ascii(bytes)
    }
}

/// Writes the corpus (and the planted registered secrets) when asked to; see the module docs.
fn dump_corpus() -> Option<io::Result<()>> {
    let out = std::env::var("CONFAB_CORPUS_OUT").ok()?;
    let opts = corpus_options();
    Some((|| {
        if let Ok(path) = std::env::var("CONFAB_SECRETS_OUT") {
            std::fs::write(path, corpus::registered_secrets(10).join("\n") + "\n")?;
        }
        if out == "-" {
            corpus::stream(
                opts,
                io::BufWriter::with_capacity(1 << 20, io::stdout().lock()),
            )?;
        } else {
            let f = std::fs::File::create(&out)?;
            corpus::stream(opts, io::BufWriter::with_capacity(1 << 20, f))?;
        }
        Ok(())
    })())
}

/// `CONFAB_PROFILE=<label>`: one pass of one scrubber over the corpus and exit, for callgrind
/// (`valgrind --tool=callgrind target/release/deps/scrubber-* `) without criterion's noise.
/// Labels: full_0, full_10, full_1000, rules, entropy, literals_1000, stream_10.
fn profile_once() -> Option<()> {
    let label = std::env::var("CONFAB_PROFILE").ok()?;
    let opts = corpus_options();
    let text = corpus::generate(opts);
    let default = ScrubConfig::default;
    let s = match label.as_str() {
        "full_0" => scrubber(0, default()),
        "full_10" | "stream_10" => scrubber(10, default()),
        "full_1000" => scrubber(1000, default()),
        "rules" => scrubber(
            0,
            ScrubConfig {
                high_entropy: false,
                ..default()
            },
        ),
        "entropy" => scrubber(
            0,
            ScrubConfig {
                high_entropy: true,
                ..no_rules()
            },
        ),
        "literals_1000" => scrubber(1000, no_rules()),
        other => panic!("unknown CONFAB_PROFILE {other}"),
    };
    // `CONFAB_PROFILE_PASSES=2`: the difference from one pass is the steady state, with the
    // regexes' lazy DFA states already built (as in every criterion iteration after the first).
    let passes: usize = std::env::var("CONFAB_PROFILE_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for _ in 1..passes {
        black_box(s.scrub(black_box(&text)));
    }
    let n = if label == "stream_10" {
        scrub_stream(&s, &text[..], io::sink(), |_| Ok(()))
            .expect("sink never fails")
            .redactions as usize
    } else {
        s.scrub(black_box(&text)).redactions.len()
    };
    eprintln!("{label}: {} bytes, {n} findings", text.len());
    Some(())
}

/// `CONFAB_SERVE_FAKES=<file>`: starts the harness's downstream sink (serving `doc-a1`,
/// `doc-a2` of alice and `doc-b1` of bob at `/docs/{id}`) and fake model (API key from
/// `CONFAB_FAKE_LLM_KEY`), writes `DOCS_API_URL=…` and `OPENAI_BASE_URL=…` lines to the file,
/// and serves until killed: what `benches/compare/run.sh` points a reference target at when it
/// loads it with `wrk`, as a campaign would.
fn serve_fakes() -> Option<()> {
    use confab::harness::fake_llm::FakeLlm;
    use confab::harness::sink::{Resource, Sink};
    let out = std::env::var("CONFAB_SERVE_FAKES").ok()?;
    let key = std::env::var("CONFAB_FAKE_LLM_KEY").unwrap_or_else(|_| "sk-bench".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let docs = [("doc-a1", "alice"), ("doc-a2", "alice"), ("doc-b1", "bob")];
        let resources = docs
            .iter()
            .map(|(id, owner)| Resource {
                id: (*id).to_owned(),
                owner: (*owner).to_owned(),
                marker: format!("bench-marker-{id}"),
            })
            .collect();
        let sink = Sink::start("/docs/{id}", resources)
            .await
            .expect("sink starts");
        let llm = FakeLlm::start(
            Secret::from(key.as_str()),
            1_000_000,
            vec!["confab-model".to_owned()],
        )
        .await
        .expect("fake model starts");
        let urls = format!(
            "DOCS_API_URL={}\nOPENAI_BASE_URL={}\n",
            sink.base_url(),
            llm.base_url()
        );
        std::fs::write(&out, urls).expect("writes the URLs");
        std::future::pending::<()>().await;
    });
    Some(())
}

fn main() {
    if profile_once().is_some() || serve_fakes().is_some() {
        return;
    }
    match dump_corpus() {
        Some(Ok(())) => {}
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Some(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Some(Err(e)) => {
            let _ = writeln!(io::stderr(), "corpus: {e}");
            std::process::exit(2);
        }
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
