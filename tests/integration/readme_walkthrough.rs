//! The README's walk-through, run as written: every command of the block between the
//! `walkthrough` markers, in order, in a scratch folder holding a copy of the Flask example,
//! with this build's `confab` first on PATH; each must exit with the code its comment names.

use crate::common::{Tool, repo_path, require};
use std::process::Command;

/// The commands of the README's walk-through, each with the exit code its comment expects.
fn walkthrough() -> Vec<(String, i32)> {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README.md");
    let begin = readme
        .find("<!-- walkthrough: begin -->")
        .expect("the README has a walk-through");
    let end = readme.find("<!-- walkthrough: end -->").expect("its end");
    readme[begin..end]
        .lines()
        .filter(|l| !l.starts_with("```") && !l.starts_with("<!--") && !l.trim().is_empty())
        .map(|line| {
            let (command, comment) = line
                .split_once(" # ")
                .expect("every line says its exit code");
            let code = comment
                .trim()
                .strip_prefix("exit ")
                .and_then(|c| c.split(':').next())
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or_else(|| panic!("no exit code in {line:?}"));
            (command.trim().to_owned(), code)
        })
        .collect()
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let steps = walkthrough();
    assert!(steps.len() >= 6, "{steps:?}");
    // Creating a venv and installing Flask needs python3 with venv and the package index.
    if !require(Tool::Python3) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let flask = dir.path().join("examples/flask");
    std::fs::create_dir_all(&flask).expect("mkdir");
    for file in [
        "app.py",
        "requirements.txt",
        "vulnerable.toml",
        "hardened.toml",
    ] {
        std::fs::copy(repo_path("examples/flask").join(file), flask.join(file)).expect("copy");
    }
    // One script, so `. .venv/bin/activate` carries to the next lines as in a terminal.
    let mut script = String::from("set -u\n");
    for (n, (command, code)) in steps.iter().enumerate() {
        script.push_str(&format!(
            "{command}\nrc=$?\nif [ $rc -ne {code} ]; then echo \"step {}: `{}` exited $rc, the README says {code}\" >&2; exit 99; fi\n",
            n + 1,
            command.replace('`', "'")
        ));
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_confab"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("VIRTUAL_ENV")
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(dir.path().join("report.html").is_file());
    assert!(dir.path().join("my-api.toml").is_file());
}
