//! Replays, on stable Rust, what `cargo fuzz` runs: the committed seed corpora and every past
//! crash (tests/fuzz_regressions/<target>/, each listed with what it found in the README
//! there), through the same library functions the fuzz targets call.

use crate::common::repo_path;
use std::path::Path;

fn replay(target: &str, dirs: &[&str], run: fn(&[u8])) -> usize {
    let mut count = 0;
    for dir in dirs {
        let path = repo_path(dir);
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
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
    }
    count
}

fn display(p: &Path) -> String {
    p.strip_prefix(repo_path("."))
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn guard_header_seeds_and_crashes() {
    let n = replay(
        "guard_header",
        &["corpus/headers", "tests/fuzz_regressions/guard_header"],
        confab::internal::fuzzing::guard_header,
    );
    assert!(n >= 40, "only {n} inputs");
}

#[test]
fn guard_token_seeds_and_crashes() {
    replay(
        "guard_token",
        &[
            "fuzz/seeds/guard_token",
            "tests/fuzz_regressions/guard_token",
        ],
        confab::internal::fuzzing::guard_token,
    );
}

#[test]
fn guard_differential_seeds_and_crashes() {
    let n = replay(
        "guard_differential",
        &[
            "fuzz/seeds/guard_differential",
            "tests/fuzz_regressions/guard_differential",
        ],
        confab::internal::fuzzing::guard_differential,
    );
    assert!(n >= 1, "the differential crash file must be replayed");
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

#[test]
fn provenance_scrubber_wire_and_spec_seeds_and_crashes() {
    type Target<'a> = (&'a str, &'a [&'a str], fn(&[u8]));
    let targets: [Target; 4] = [
        (
            "provenance",
            &["fuzz/seeds/provenance", "tests/fuzz_regressions/provenance"],
            confab::internal::fuzzing::provenance,
        ),
        (
            "scrubber",
            &[
                "corpus/texts",
                "fuzz/seeds/scrubber",
                "tests/fuzz_regressions/scrubber",
            ],
            confab::internal::fuzzing::scrubber,
        ),
        (
            "wire",
            &[
                "fuzz/seeds/wire",
                "corpus/outputs",
                "tests/fuzz_regressions/wire",
            ],
            confab::internal::fuzzing::wire,
        ),
        (
            "spec_loader",
            &[
                "fuzz/seeds/spec_loader",
                "tests/fuzz_regressions/spec_loader",
            ],
            confab::internal::fuzzing::spec_loader,
        ),
    ];
    for (name, dirs, run) in targets {
        replay(name, dirs, run);
    }
}
