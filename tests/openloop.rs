//! `sweep --rates`: an open-loop sweep against the embedded mock end to end (report files,
//! schema, max sustainable rate) and its usage errors.

use serde_json::Value;

use crate::common::loadchain;

#[test]
fn an_open_loop_sweep_reports_rates_latency_from_intended_start_and_the_knee() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("open");
    // Capacity 2 × 20 ms = 100 requests/s: 25/s is kept up with, 400/s is not.
    let run = loadchain()
        .args([
            "sweep",
            "--rates",
            "25,400",
            "--arrivals",
            "constant",
            "--n",
            "80",
            "--steps",
            "1",
            "--pooling",
            "on",
            "--mock-capacity",
            "2",
            "--mock-latency",
            "fixed:20ms",
            "--mock-failure-rate",
            "0",
            "--json",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let runs = stdout["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(stdout["max_sustainable_rate"], 25.0);
    let (low, high) = (&runs[0], &runs[1]);
    assert_eq!(
        (low["offered_rate"].as_f64(), low["arrivals"].as_u64()),
        (Some(25.0), Some(80))
    );
    // 80 arrivals in 0.2 s, served at 100/s: the last waits ~0.6 s at the server.
    assert!(
        high["achieved_rate"].as_f64().unwrap() < 0.95 * 400.0,
        "{high}"
    );
    assert!(
        high["latency"]["p99_us"].as_u64().unwrap() > 300_000,
        "{high}"
    );
    assert!(low["service_latency"]["p50_us"].as_u64().unwrap() >= 20_000);
    for f in ["report.json", "summary.md", "latency_vs_rate.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("Max sustainable rate: 25 chains/s"), "{md}");
}

#[test]
fn open_loop_flags_refuse_what_cannot_work() {
    for (args, says) in [
        (&["--max-concurrency", "2"][..], "--max-concurrency"),
        (&["--duration", "5s", "--sizes", "5,10"][..], "--duration"),
        (&["--rates", "10", "--sizes", "5,10"][..], "--sizes"),
        (&["--rates", "0"][..], "positive rate"),
        (&["--rates", "10", "--arrivals", "gamma:-1"][..], "gamma:CV"),
    ] {
        let run = loadchain()
            .arg("sweep")
            .args(args)
            .args(["--no-report", "-q"])
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&run.get_output().stderr).to_string();
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn duration_with_limits_is_a_closed_loop_soak_sized_by_what_it_finished() {
    // Limit 4 at 20 ms a call for 1 s: about 200 chains if nothing else takes time.
    let run = loadchain()
        .args([
            "sweep",
            "--limits",
            "1,4",
            "--duration",
            "1s",
            "--steps",
            "1",
        ])
        .args(["--pooling", "on", "--mock-latency", "fixed:20ms"])
        .args(["--mock-failure-rate", "0", "--json", "-q", "--no-report"])
        .assert()
        .success();
    let stdout: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    let runs = stdout["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{stdout}");
    for r in runs {
        let wall = r["wall_ms"].as_f64().unwrap();
        // Starts stop at 1 s; the chains in flight then finish.
        assert!((1000.0..3000.0).contains(&wall), "{r}");
        assert_eq!(r["size"], r["chains_ok"], "the size is what finished: {r}");
        assert!(r.get("partial").is_none_or(|p| p == false), "{r}");
    }
    let (one, four) = (
        runs[0]["chains_ok"].as_u64().unwrap(),
        runs[1]["chains_ok"].as_u64().unwrap(),
    );
    // Generous: a busy machine adds time per call, but 4 in flight still finish far more.
    assert!((10..=55).contains(&one), "limit 1 in 1 s: {one}");
    assert!(four > 2 * one, "limit 4 keeps 4 in flight: {four} vs {one}");
}

#[test]
fn duration_does_not_go_with_sizes() {
    loadchain()
        .args([
            "sweep",
            "--limits",
            "1",
            "--duration",
            "1s",
            "--sizes",
            "10,20",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--duration"));
}
