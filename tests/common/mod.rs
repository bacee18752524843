//! Shared helpers: mock configs, sweep configs and a handle on the built binary.

use std::sync::Arc;
use std::time::Duration;

use loadchain::chain::Chain;
use loadchain::endpoint::{ClientOptions, HttpClient};
use loadchain::endpoint::{Endpoint, embedded_target};
use loadchain::record::Pooling;
use loadchain::runner::{RetryPolicy, Runner, Workload};
use loadchain::sweep::SweepConfig;
use loadchain_mock::{Latency, MockConfig, MockServer};

/// A mock with fixed latency, no failures and no connection cost.
pub fn fixed(ms: u64) -> MockConfig {
    MockConfig {
        latency: Latency::Fixed(Duration::from_millis(ms)),
        ..MockConfig::default()
    }
}

/// Starts a mock on an ephemeral loopback port; it shuts down when the last handle drops.
pub async fn spawn_mock(cfg: MockConfig) -> Arc<MockServer> {
    Arc::new(MockServer::start(cfg).await.expect("mock starts"))
}

/// The default chain of `steps` steps against a running mock: 10 s timeout, 20 ms backoff,
/// no rate caps.
pub fn workload(mock: &Arc<MockServer>, steps: usize) -> Workload {
    Workload {
        chain: Chain::default_steps(steps).unwrap(),
        endpoint: Endpoint::Running(Arc::clone(mock)),
        model: "test-model".into(),
        stream: false,
        api: loadchain::endpoint::ApiFormat::OpenAi,
        client: ClientOptions {
            timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        },
        retry: RetryPolicy {
            backoff_base: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
        rpm: None,
        tpm: None,
        price: None,
        slo: None,
    }
}

/// A sweep against a running mock, one size, pooled only.
pub fn sweep_config(
    mock: &Arc<MockServer>,
    n: usize,
    limits: &[usize],
    steps: usize,
) -> SweepConfig {
    SweepConfig {
        sizes: vec![n],
        limits: limits.to_vec(),
        auto_ceiling: None,
        pooling: vec![Pooling::On],
        workload: workload(mock, steps),
        warmup: false,
        command: "test".into(),
        repeat: 1,
        rates: None,
        soak: None,
        segment: None,
    }
}

/// The loadchain binary, with no API key in its environment.
pub fn loadchain() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("loadchain").expect("binary is built");
    cmd.env_remove("OPENAI_API_KEY");
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// `loadchain merge SEGS --out OUT`, which must succeed.
pub fn merge_ok<P: AsRef<std::ffi::OsStr>>(segs: &[P], out: &std::path::Path) {
    loadchain()
        .arg("merge")
        .args(segs)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// A pooled runner against `mock` at `limit`: the default chain of `steps` steps, no rate
/// limit, no stop signal (set `stop` or `target` with struct update syntax where a test
/// needs them).
pub fn runner(mock: &MockServer, steps: usize, limit: usize, retry: RetryPolicy) -> Runner {
    Runner {
        client: HttpClient::new(Pooling::On, &ClientOptions::default()).unwrap(),
        target: Arc::new(embedded_target(&mock.url(), "m")),
        chain: Arc::new(Chain::default_steps(steps).unwrap()),
        limiter: None,
        limit,
        retry,
        stop: None,
        adaptive: None,
    }
}

/// `loadchain sweep --target URL`, one call, no report: enough to hit the preflight.
pub fn sweep_to(url: &str) -> assert_cmd::Command {
    let mut cmd = loadchain();
    cmd.args([
        "sweep",
        "--target",
        url,
        "--n",
        "2",
        "--limits",
        "1",
        "--no-report",
    ]);
    cmd
}

/// Keeps what a batch reports as it goes: every call, and each row's final record (the
/// runner itself keeps neither).
#[derive(Default)]
pub struct Collect {
    calls: std::sync::Mutex<Vec<loadchain::record::CallRecord>>,
    finals: std::sync::Mutex<Vec<loadchain::record::ChainRecord>>,
}

impl Collect {
    /// Every call seen, in completion order.
    pub fn calls(&self) -> Vec<loadchain::record::CallRecord> {
        self.calls.lock().unwrap().clone()
    }

    /// Each finished row's final record, in row order.
    pub fn finals(&self) -> Vec<loadchain::record::ChainRecord> {
        let mut f = self.finals.lock().unwrap().clone();
        f.sort_by_key(|c| c.row);
        f
    }
}

impl loadchain::runner::Observer for Collect {
    fn call_done(&self, call: &loadchain::record::CallRecord) {
        self.calls.lock().unwrap().push(*call);
    }

    fn chain_done(
        &self,
        _row: &loadchain::chain::Row,
        chain: &loadchain::record::ChainRecord,
        is_final: bool,
    ) {
        if is_final {
            self.finals.lock().unwrap().push(chain.clone());
        }
    }
}

/// A JSON file a command wrote (report.json, summary.json, a schema), parsed.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
