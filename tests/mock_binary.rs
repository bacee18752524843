//! The `loadchain-mock` binary: start-up line, exit codes, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_loadchain-mock");

#[test]
fn help_describes_the_mock_not_loadchain() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.starts_with("A configurable OpenAI-compatible mock API server"),
        "{help}"
    );
}

#[test]
fn bad_flags_exit_with_status_two_and_one_line() {
    let out = Command::new(BIN)
        .args(["--latency", "foo:1ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("unknown latency distribution \"foo\""),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_file_exits_with_status_two_naming_the_file() {
    let path = std::env::temp_dir().join(format!("loadchain-mock-bin-{}.toml", std::process::id()));
    std::fs::write(&path, "seed = 1\nfailure_rate = 5\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("failure_rate"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[cfg(unix)]
#[test]
fn prints_the_url_and_shuts_down_cleanly_on_sigterm() {
    start_then_terminate(&["--latency", "fixed:10ms", "--port", "0"], |_| {});
}

/// `--keep-cpus-awake`: one spinner per CPU at SCHED_IDLE while the mock runs, all gone at
/// exit (which SIGTERM still reaches).
#[cfg(target_os = "linux")]
#[test]
fn keep_cpus_awake_runs_idle_class_spinners() {
    start_then_terminate(&["--keep-cpus-awake", "--port", "0"], |pid| {
        let cpus = std::thread::available_parallelism().unwrap().get();
        let mut spinners = 0;
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let path = task.unwrap().path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.starts_with("mock-awake-") {
                let stat = std::fs::read_to_string(path.join("stat")).unwrap();
                // The policy is field 41; fields after the ")" of comm start at 3. 5: SCHED_IDLE.
                let after = stat.rsplit_once(") ").unwrap().1;
                assert_eq!(after.split(' ').nth(41 - 3), Some("5"), "{stat}");
                spinners += 1;
            }
        }
        assert_eq!(spinners, cpus);
    });
}

/// Starts the mock with `args`, checks its URL line, runs `check` on its pid, then sends
/// SIGTERM and waits (bounded) for a clean exit.
#[cfg(unix)]
fn start_then_terminate(args: &[&str], check: impl FnOnce(u32)) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("loadchain-mock listening on http://127.0.0.1:"),
        "{line}"
    );
    check(child.id());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Bounded wait: poll for exit for up to 10 s.
    for _ in 0..1000 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    panic!("loadchain-mock did not exit after SIGTERM");
}
