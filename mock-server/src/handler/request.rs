//! The first step of a chat request: read the body within `max_body_bytes`, parse the fields
//! the mock uses and refuse what OpenAI refuses, each with OpenAI's status and error shape
//! (413, 400). Nothing here waits or draws dice, so a bad request costs no budget.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use crate::body::MockBody;
use crate::content::ChatMessage;
use crate::response;

/// The fields of an OpenAI chat request the mock uses; everything else is ignored.
#[derive(Deserialize)]
pub(super) struct ChatRequest {
    #[serde(default)]
    pub(super) model: Option<String>,
    pub(super) messages: Vec<ChatMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// Anthropic's top-level system prompt (a string or text blocks).
    #[serde(default)]
    system: Option<serde_json::Value>,
    /// Set after parsing: the request came to `/v1/messages` and is answered in
    /// Anthropic's shapes.
    #[serde(skip)]
    pub(super) anthropic: bool,
}

/// `stream_options` of a streamed request: whether to end with a usage chunk.
#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl ChatRequest {
    /// Reads and checks the request, or gives the error response to send instead.
    pub(super) async fn read(
        req: Request<Incoming>,
        limit: usize,
        anthropic: bool,
    ) -> Result<Self, Response<MockBody>> {
        let body = read_body(req, limit).await?;
        let mut request: ChatRequest = serde_json::from_slice(&body).map_err(|e| {
            let message = format!("We could not parse the JSON body of your request: {e}");
            response::error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                &message,
            )
        })?;
        if request.messages.is_empty() {
            // OpenAI's own wording and shape for this case (param set, code null).
            return Err(response::invalid_param(
                "messages",
                "[] is too short - 'messages'",
            ));
        }
        if anthropic {
            if request.max_tokens.is_none() {
                // Anthropic requires it; its validation answers this way.
                return Err(response::invalid_param(
                    "max_tokens",
                    "max_tokens: Field required",
                ));
            }
            if let Some(system) = request.system.take() {
                request.messages.insert(0, ChatMessage::system(system));
            }
            // Anthropic always reports usage in a stream.
            request.stream_options = Some(StreamOptions {
                include_usage: Some(true),
            });
            request.anthropic = true;
        }
        Ok(request)
    }

    /// Tokens to generate: the server's `output_tokens`, capped by the request's
    /// `max_tokens` (or its newer name `max_completion_tokens`).
    pub(super) fn output_tokens(&self, configured: u32) -> u32 {
        self.max_tokens
            .or(self.max_completion_tokens)
            .map_or(configured, |cap| cap.min(configured))
    }

    /// What `--tpm` charges before answering, as providers do: the prompt (~4 characters a
    /// token) plus the completion budget (`max_tokens`, or the server's `output_tokens`).
    pub(super) fn token_estimate(&self, configured: u32) -> u32 {
        let prompt = crate::content::text_chars(&self.messages).div_ceil(4);
        let budget = self
            .max_tokens
            .or(self.max_completion_tokens)
            .unwrap_or(configured);
        u32::try_from(prompt)
            .unwrap_or(u32::MAX)
            .saturating_add(budget)
    }

    /// Whether the answer is a `text/event-stream`.
    pub(super) fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a streamed answer ends with a usage chunk.
    pub(super) fn includes_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// Reads the body up to `limit` bytes, answering 413 early when Content-Length is already
/// too big, and 400 when the body cannot be read.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<MockBody>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(response::too_large(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(response::too_large(limit)),
        Err(_) => Err(response::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "body_read_error",
            "The request body could not be read.",
        )),
    }
}
