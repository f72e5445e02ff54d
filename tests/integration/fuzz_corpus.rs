//! Replays, on stable Rust, what `cargo fuzz` runs: the committed seed corpora and every past
//! crash (tests/fuzz_regressions/<target>/, each listed with what it found in the README
//! there), through the same library functions the fuzz targets call. Every fuzz target must
//! be in [`TARGETS`], and every seed folder must exist and hold inputs: a target whose seeds
//! went missing would otherwise pass by replaying nothing.

use crate::common::repo_path;
use confab::internal::fuzzing;
use std::path::Path;

/// A fuzz target: its name (`fuzz/fuzz_targets/<name>.rs`), its seed folders (those
/// `fuzz/smoke.sh` hands it), and the library function its shell calls.
struct Target {
    name: &'static str,
    seeds: &'static [&'static str],
    run: fn(&[u8]),
}

const TARGETS: &[Target] = &[
    Target {
        name: "guard_header",
        seeds: &["corpus/headers"],
        run: fuzzing::guard_header,
    },
    Target {
        name: "guard_token",
        seeds: &["fuzz/seeds/guard_token"],
        run: fuzzing::guard_token,
    },
    Target {
        name: "guard_differential",
        seeds: &["fuzz/seeds/guard_differential"],
        run: fuzzing::guard_differential,
    },
    Target {
        name: "jose_flat",
        seeds: &["fuzz/seeds/jose_flat"],
        run: fuzzing::jose_flat,
    },
    Target {
        name: "provenance",
        seeds: &["fuzz/seeds/provenance"],
        run: fuzzing::provenance,
    },
    Target {
        name: "scrubber",
        seeds: &["corpus/texts"],
        run: fuzzing::scrubber,
    },
    Target {
        name: "wire",
        seeds: &["fuzz/seeds/wire", "corpus/outputs"],
        run: fuzzing::wire,
    },
    Target {
        name: "wire_responses",
        seeds: &["fuzz/seeds/wire_responses"],
        run: fuzzing::wire_responses,
    },
    Target {
        name: "wire_anthropic",
        seeds: &["fuzz/seeds/wire_anthropic"],
        run: fuzzing::wire_anthropic,
    },
    Target {
        name: "wire_ollama",
        seeds: &["fuzz/seeds/wire_ollama"],
        run: fuzzing::wire_ollama,
    },
    Target {
        name: "wire_embeddings",
        seeds: &["fuzz/seeds/wire_embeddings"],
        run: fuzzing::wire_embeddings,
    },
    Target {
        name: "spec_loader",
        seeds: &["fuzz/seeds/spec_loader"],
        run: fuzzing::spec_loader,
    },
];

/// Runs every input of `dir` (README files aside) through `run`; returns how many ran.
/// `None` when the folder does not exist.
fn replay_dir(target: &str, dir: &str, run: fn(&[u8])) -> Option<usize> {
    let entries = std::fs::read_dir(repo_path(dir)).ok()?;
    let mut count = 0;
    for entry in entries.flatten() {
        let file = entry.path();
        if file.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", display(&file));
        count += 1;
    }
    Some(count)
}

fn display(p: &Path) -> String {
    p.strip_prefix(repo_path("."))
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn every_fuzz_target_is_replayed() {
    let mut shells: Vec<String> = std::fs::read_dir(repo_path("fuzz/fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    shells.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    listed.sort();
    assert_eq!(
        shells, listed,
        "fuzz/fuzz_targets and TARGETS must list the same targets"
    );
}

#[test]
fn every_target_replays_its_seeds_and_past_crashes() {
    for target in TARGETS {
        for dir in target.seeds {
            match replay_dir(target.name, dir, target.run) {
                None => panic!("{}: seed folder {dir} is missing", target.name),
                Some(0) => panic!("{}: seed folder {dir} is empty", target.name),
                Some(_) => {}
            }
        }
        // Past crashes: a folder only once a target has had one.
        let crashes = format!("tests/fuzz_regressions/{}", target.name);
        replay_dir(target.name, &crashes, target.run);
    }
}

#[test]
fn the_known_crashes_are_replayed() {
    let crashes = |name: &str| {
        let t = TARGETS.iter().find(|t| t.name == name).expect("listed");
        replay_dir(name, &format!("tests/fuzz_regressions/{name}"), t.run).unwrap_or(0)
    };
    assert!(crashes("guard_differential") >= 1);
    assert!(crashes("scrubber") >= 1);
}

#[test]
fn the_header_corpus_covers_the_families() {
    let n = replay_dir("guard_header", "corpus/headers", fuzzing::guard_header).unwrap_or(0);
    assert!(n >= 40, "only {n} header inputs");
}

#[test]
fn every_crash_file_is_explained() {
    let root = repo_path("tests/fuzz_regressions");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    for target in std::fs::read_dir(&root).expect("dir").flatten() {
        if !target.path().is_dir() {
            continue;
        }
        for crash in std::fs::read_dir(target.path()).expect("dir").flatten() {
            let name = crash.file_name().to_string_lossy().into_owned();
            assert!(
                readme.contains(&name),
                "{name} is not described in tests/fuzz_regressions/README.md"
            );
        }
    }
}
