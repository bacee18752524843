//! One set-up for `sweep` and `run`: resolve where calls go (start the embedded mock, or take
//! a running one, or a URL), build the target once, and check it with a preflight call.

use std::sync::Arc;

use loadchain_mock::{MockConfig, MockServer};
use thiserror::Error;

use super::{ClientOptions, PreflightError, Target, preflight};
use crate::chain::Chain;

/// Where a batch sends its calls, as configured.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Start the bundled mock in-process with this config (127.0.0.1, ephemeral port).
    Embedded(MockConfig),
    /// A mock already running in this process (tests, benches); its counters are read.
    Running(Arc<MockServer>),
    /// A real endpoint, built from the flags.
    Remote(Target),
    /// `run --exec`: each row runs this local program; no mock, no preflight call.
    Exec(Arc<crate::exec::ExecCommand>),
}

impl Endpoint {
    /// How reports name it: `embedded mock`, `mock at URL` or the URL without credentials.
    pub fn label(&self) -> String {
        match self {
            Endpoint::Embedded(_) => "embedded mock".to_string(),
            Endpoint::Running(m) => format!("mock at {}", m.url()),
            Endpoint::Remote(t) => t.display_url(),
            Endpoint::Exec(e) => format!("exec: {}", e.source),
        }
    }

    /// The mock's settings as TOML, when calls go to a mock.
    pub fn mock_toml(&self) -> Option<String> {
        match self {
            Endpoint::Embedded(m) => Some(toml::to_string(m).unwrap_or_default()),
            Endpoint::Running(m) => Some(toml::to_string(m.config()).unwrap_or_default()),
            Endpoint::Remote(_) | Endpoint::Exec(_) => None,
        }
    }
}

/// The set-up failed before any measured call.
#[derive(Debug, Error)]
pub enum SessionError {
    /// The embedded mock failed to start.
    #[error("cannot start the embedded mock server: {0}")]
    Mock(String),
    /// The preflight call failed.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
}

/// An endpoint made ready: the mock started if embedded, the target built, the preflight
/// call passed. Close it to stop a mock it started.
#[derive(Debug)]
pub struct Session {
    target: Arc<Target>,
    mock: Option<Arc<MockServer>>,
    /// Whether this session started the mock (and so stops it).
    owns_mock: bool,
}

impl Session {
    /// Starts the mock if embedded, builds the target (OpenAI or Anthropic format for a
    /// mock, with `model` and `stream`; a remote target comes built) and runs the preflight call of the
    /// chain's first step.
    pub async fn open(
        endpoint: &Endpoint,
        model: &str,
        stream: bool,
        api: super::ApiFormat,
        chain: &Chain,
        client: &ClientOptions,
    ) -> Result<Session, SessionError> {
        let (mock, owns_mock) = match endpoint {
            Endpoint::Embedded(cfg) => {
                let server = MockServer::start(cfg.clone())
                    .await
                    .map_err(|e| SessionError::Mock(e.to_string()))?;
                (Some(Arc::new(server)), true)
            }
            Endpoint::Running(server) => (Some(Arc::clone(server)), false),
            Endpoint::Remote(_) => (None, false),
            Endpoint::Exec(exec) => {
                // The target only carries the program: no request is ever sent to it.
                // No model either: the settings would name one the program never saw.
                let mut target = embedded_target("http://127.0.0.1:9", "");
                target.exec = Some(Arc::clone(exec));
                return Ok(Session {
                    target: Arc::new(target),
                    mock: None,
                    owns_mock: false,
                });
            }
        };
        let target = match (endpoint, &mock) {
            (Endpoint::Remote(t), _) => t.clone(),
            (_, Some(server)) if api == super::ApiFormat::Anthropic => {
                Target::anthropic(&server.url(), model)
                    .map_err(|e| SessionError::Mock(e.to_string()))?
                    .streaming(stream)
            }
            (_, Some(server)) => embedded_target(&server.url(), model).streaming(stream),
            (_, None) => {
                return Err(SessionError::Mock("a mock endpoint has no server".into()));
            }
        };
        let session = Session {
            target: Arc::new(target),
            mock,
            owns_mock,
        };
        if let Some(step) = chain.steps.first() {
            // On failure the session drops here, and a mock it started stops with it.
            preflight(&session.target, step, client).await?;
        }
        Ok(session)
    }

    /// The target every call goes to.
    pub fn target(&self) -> &Arc<Target> {
        &self.target
    }

    /// The mock's count of connections that carried API traffic, when calls go to a mock:
    /// read before and after a run, it verifies connection reuse instead of assuming it.
    pub fn connections_accepted(&self) -> Option<u64> {
        self.mock.as_ref().map(|m| m.stats().connections_accepted)
    }

    /// The mock's URL, when calls go to a mock.
    pub fn mock_url(&self) -> Option<String> {
        self.mock.as_ref().map(|m| m.url())
    }

    /// Stops a mock this session started; a running one belongs to the caller.
    pub async fn close(self) {
        if self.owns_mock
            && let Some(server) = self.mock
            && let Ok(server) = Arc::try_unwrap(server)
        {
            server.shutdown().await;
        }
    }
}

/// The OpenAI-format target of a mock at `url`.
pub fn embedded_target(url: &str, model: &str) -> Target {
    Target::openai(&format!("{url}/v1"), model).expect("the mock's own URL is valid")
}
