//! Ctrl-C during a scan: confab stops the target it started (and everything else) and exits 2.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose environment carries `marker` (the target inherits confab's environment).
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(env) = std::fs::read(e.path().join("environ"))
            && env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_stops_the_target_and_exits_2() {
    let marker = format!(
        "CONFAB_TEST_MARKER={}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let (name, value) = marker.split_once('=').expect("marker");
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "scan",
            "--spec",
            "examples/reference/vulnerable.toml",
            "--cases",
            "1000000",
            "--concurrency",
            "2",
            "--replay-dir",
            "/nonexistent-never-written",
        ])
        .env(name, value)
        .current_dir(crate::common::repo_path("."))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("confab starts");
    // Wait until the target process is up (it carries the marker), at most 20 s.
    let start = Instant::now();
    while processes_with(&marker).len() < 2 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processes_with(&marker).len() >= 2,
        "the target never started"
    );
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "confab did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = child.stderr.take().map(|mut e| {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
        s
    });
    assert_eq!(code, Some(2), "stderr: {stderr:?}");
    assert!(stderr.unwrap_or_default().contains("interrupted"));
    let left = processes_with(&marker);
    assert!(left.is_empty(), "left running after Ctrl-C: pids {left:?}");
}
