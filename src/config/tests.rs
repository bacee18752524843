//! Config building, flag rules and redaction.

use std::time::Duration;

use loadchain_mock::Latency;

use super::*;
use crate::cli::{Cli, Command};
use crate::endpoint::Endpoint;
use clap::Parser;

fn sweep(args: &[&str]) -> Result<SweepConfig, ConfigError> {
    let mut all = vec!["loadchain", "sweep"];
    all.extend_from_slice(args);
    let Command::Sweep(a) = Cli::try_parse_from(all).unwrap().command else {
        panic!("not a sweep")
    };
    sweep_config(&a, String::new())
}

#[test]
fn limits_and_sizes_are_sorted_and_deduplicated() {
    let c = sweep(&["--limits", "10,1,5,5", "--sizes", "50,10"]).unwrap();
    assert_eq!(c.limits, vec![1, 5, 10]);
    assert_eq!(c.sizes, vec![10, 50]);
    assert!(matches!(c.workload.endpoint, Endpoint::Embedded(_)));
}

#[test]
fn mock_flags_override_the_embedded_defaults() {
    let c = sweep(&["--mock-latency", "fixed:5ms", "--mock-failure-rate", "0"]).unwrap();
    let Endpoint::Embedded(m) = c.workload.endpoint else {
        panic!("not embedded")
    };
    assert_eq!(m.latency, Latency::Fixed(Duration::from_millis(5)));
    assert_eq!(m.failure_rate, 0.0);
    assert_eq!(m.conn_cost, Duration::from_micros(1500));
    let c = sweep(&[
        "--mock-reset-rate",
        "0.1",
        "--mock-truncate-rate",
        "0.2",
        "--mock-slow-body",
        "1kB/s",
    ])
    .unwrap();
    let Endpoint::Embedded(m) = c.workload.endpoint else {
        panic!("not embedded")
    };
    assert_eq!((m.reset_rate, m.truncate_rate), (0.1, 0.2));
    assert_eq!(m.slow_body.map(|r| r.bytes_per_sec()), Some(1000));
    let err = sweep(&[
        "--target",
        "http://127.0.0.1:1/v1",
        "--mock-slow-body",
        "1kB/s",
    ])
    .unwrap_err();
    assert!(err.to_string().starts_with("--mock-*"), "{err}");
}

#[test]
fn mock_flags_with_a_target_are_rejected() {
    let err = sweep(&["--target", "http://127.0.0.1:1/v1", "--mock-seed", "1"]).unwrap_err();
    assert!(err.to_string().starts_with("--mock-*"), "{err}");
}

#[test]
fn raw_mode_needs_a_target() {
    let err = sweep(&["--api", "raw"]).unwrap_err();
    assert!(err.to_string().starts_with("--api"), "{err}");
}

#[test]
fn header_values_are_redacted_in_the_command() {
    let cmd = redacted_command(
        [
            "/usr/bin/loadchain",
            "sweep",
            "-H",
            "Authorization: Bearer sk-1",
            "--n",
            "5",
        ]
        .map(String::from),
    );
    assert_eq!(cmd, "loadchain sweep -H 'Authorization: <redacted>' --n 5");
}

#[test]
fn a_limit_past_the_open_file_limit_is_refused_with_the_ulimit_to_use() {
    let embedded = Endpoint::Embedded(embedded_mock_defaults());
    let err = check_open_files("--limits", 5000, &embedded, Some(1024)).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("--limits: 5000 concurrent"), "{text}");
    assert!(text.contains("`ulimit -n 10064`"), "{text}");
    assert!(check_open_files("--limits", 480, &embedded, Some(1024)).is_ok());
    assert!(check_open_files("--limits", 5000, &embedded, None).is_ok());
}

#[test]
fn url_credentials_are_redacted_in_the_command() {
    let cmd = redacted_command(
        [
            "loadchain",
            "sweep",
            "--target",
            "http://user:pw-canary@127.0.0.1:9/v1?key=q-canary",
            "--target=https://u:p-canary@h/v1",
        ]
        .map(String::from),
    );
    assert!(!cmd.contains("canary"), "{cmd}");
    assert!(cmd.contains("127.0.0.1:9/v1?key=<redacted>"), "{cmd}");
}

#[test]
fn anthropic_reads_its_own_key_variable_and_refuses_what_openai_refuses() {
    let Command::Sweep(a) = Cli::try_parse_from(["loadchain", "sweep", "--api", "anthropic"])
        .unwrap()
        .command
    else {
        panic!("not a sweep")
    };
    assert_eq!(a.common.target.key_env(), "ANTHROPIC_API_KEY");
    let Command::Sweep(a) = Cli::try_parse_from(["loadchain", "sweep"]).unwrap().command else {
        panic!("not a sweep")
    };
    assert_eq!(a.common.target.key_env(), "OPENAI_API_KEY");
    let c = sweep(&["--api", "anthropic", "--stream"]).unwrap();
    assert_eq!(c.workload.api, crate::endpoint::ApiFormat::Anthropic);
    let t = ["--target", "http://127.0.0.1:1", "--api", "anthropic"];
    let err = sweep(&[&t[..], &["--method", "GET"]].concat()).unwrap_err();
    assert!(err.to_string().starts_with("--method"), "{err}");
    let err = sweep(&[&t[..], &["--body", "x"]].concat()).unwrap_err();
    assert!(err.to_string().starts_with("--body"), "{err}");
    let Endpoint::Remote(target) = sweep(&t).unwrap().workload.endpoint else {
        panic!("a target is remote")
    };
    assert_eq!(target.url().path(), "/v1/messages");
}

#[test]
fn a_price_comes_from_the_flag_or_the_chain_file_and_cost_checks_need_one() {
    let c = sweep(&["--price", "in=0.15,out=0.60"]).unwrap();
    let p = c.workload.price.unwrap();
    assert_eq!((p.input, p.output), (0.15, 0.60));
    assert!(sweep(&[]).unwrap().workload.price.is_none());
    let err = sweep(&["--fail-on", "cost>5"]).unwrap_err();
    assert!(err.to_string().contains("needs a price"), "{err}");
    assert!(sweep(&["--fail-on", "cost>5", "--price", "in=1,out=1"]).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("c.toml");
    let steps = "[[steps]]\nname = \"a\"\nprompt = \"{{topic}}\"\n";
    std::fs::write(&chain, format!("price = \"in=2,out=4\"\n{steps}")).unwrap();
    let path = chain.to_str().unwrap();
    let c = sweep(&["--chain", path]).unwrap();
    assert_eq!(c.workload.price.unwrap().output, 4.0);
    // The flag wins over the file.
    let c = sweep(&["--chain", path, "--price", "in=1,out=1"]).unwrap();
    assert_eq!(c.workload.price.unwrap().output, 1.0);
    std::fs::write(&chain, format!("price = \"in=2\"\n{steps}")).unwrap();
    let err = sweep(&["--chain", path]).unwrap_err().to_string();
    assert!(err.contains("price"), "{err}");
}
