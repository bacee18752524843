//! LLM serving metrics end to end against the embedded mock: TTFT, ITL and TPOT match what
//! the mock was told to do; --slo gives slo_attainment and goodput in every report format
//! and in --fail-on; bad --slo input is a usage error naming the flag.

use serde_json::Value;

use crate::common::loadchain;

/// A streamed sweep: 20 tokens 5 ms apart after a 100 ms first token.
fn paced_sweep(out: &std::path::Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    loadchain()
        .args([
            "sweep",
            "--n",
            "8",
            "--limits",
            "1,4",
            "--pooling",
            "on",
            "--steps",
            "1",
            "--stream",
            "--mock-latency",
            "fixed:0ms",
            "--mock-ttft",
            "fixed:100ms",
            "--mock-token-time",
            "5ms",
            "--mock-output-tokens",
            "20",
            "--json",
            "-q",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
}

fn ms(v: &Value) -> f64 {
    v.as_u64().unwrap() as f64 / 1000.0
}

#[test]
fn ttft_itl_and_tpot_match_the_mock_and_slo_reaches_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paced");
    let run = paced_sweep(&out, &["--slo", "ttft<1s,itl<1s,e2e<10s"]).success();
    let report: Value = serde_json::from_slice(&run.get_output().stdout).unwrap();
    for r in report["runs"].as_array().unwrap() {
        // Generous bounds for a shared 2-core machine; the README quotes tight figures.
        let (ttft, itl, tpot) = (
            ms(&r["ttft"]["p50_us"]),
            ms(&r["itl"]["p50_us"]),
            ms(&r["tpot"]["p50_us"]),
        );
        assert!((99.0..130.0).contains(&ttft), "TTFT p50 {ttft} ms: {r}");
        assert!((3.5..8.0).contains(&itl), "ITL p50 {itl} ms: {r}");
        assert!((3.5..8.0).contains(&tpot), "TPOT p50 {tpot} ms: {r}");
        assert_eq!(r["itl"]["count"], 8 * 19, "19 gaps per call");
        assert_eq!(
            r["tokens_from"], "usage",
            "loadchain asks for include_usage"
        );
        assert_eq!(r["slo_attainment"], 1.0);
        let goodput = r["goodput"].as_f64().unwrap();
        let calls_per_s = r["calls_per_s"].as_f64().unwrap();
        assert!(
            (goodput - calls_per_s).abs() < 1e-6,
            "{goodput} vs {calls_per_s}"
        );
    }
    for chart in ["ttft.png", "itl.png"] {
        assert!(out.join(chart).is_file(), "{chart}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## LLM serving"), "{md}");
    assert!(
        md.contains("![ttft](ttft.png)") && md.contains("100.0 %"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for col in [
        "itl_p50_ms",
        "tpot_p50_ms",
        "tokens_from",
        "slo_attainment",
        "goodput",
    ] {
        assert!(header.split(',').any(|h| h == col), "{col} in {header}");
    }
}

#[test]
fn a_tight_slo_breaks_fail_on_and_the_terminal_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // No call reaches its first token within 50 ms: attainment 0, exit 1.
    let run = loadchain()
        .args([
            "sweep",
            "--n",
            "3",
            "--limits",
            "1",
            "--pooling",
            "on",
            "--steps",
            "1",
            "--stream",
            "--mock-ttft",
            "fixed:60ms",
            "--slo",
            "ttft<50ms",
            "--fail-on",
            "slo<95%",
            "-q",
            "--out",
        ])
        .arg(dir.path().join("tight"))
        .assert()
        .code(1);
    let out = run.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("LLM serving") && stdout.contains("0.0 %"),
        "{stdout}"
    );
    assert!(
        stderr.contains("slo<95.00% broken: measured 0.00%"),
        "{stderr}"
    );
}

#[test]
fn bad_slo_input_is_a_usage_error_naming_the_flag() {
    for args in [
        &["--slo", "ttft<soon"][..],
        &["--slo", "p99<1s"],
        &["--fail-on", "goodput<10"],
        &["--slo", "itl<50ms"], // without --stream
    ] {
        let out = loadchain()
            .args(["sweep", "--n", "1", "--limits", "1", "--no-report"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        // The first line names the flag (and, for --fail-on, the --slo it needs).
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(args[0]) && first.contains("--slo"),
            "{args:?}: {stderr}"
        );
    }
}
