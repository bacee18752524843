//! What a successful response body says, in any API format: the step's output and what the
//! API reported about it (tokens for throughput and cost, why generation stopped).

/// What a successful response body says: the output and what the API reported about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The step's output text.
    pub text: String,
    /// Output (completion) tokens, when reported (or counted from stream chunks).
    pub tokens: Option<u32>,
    /// Input (prompt) tokens, when reported: with output tokens, what a call costs.
    pub input_tokens: Option<u32>,
    /// Why generation stopped (Anthropic `stop_reason`), when the format says.
    pub stop_reason: Option<String>,
}
