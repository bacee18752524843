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
    /// Why generation stopped (OpenAI `finish_reason`, Anthropic `stop_reason`), when the
    /// format says.
    pub stop_reason: Option<String>,
}

/// Why a successful call's generation stopped, in the few classes a quality report counts:
/// one byte on every call record, whatever words the API used.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model ended its answer (`stop`, `end_turn`, `stop_sequence`).
    Stop,
    /// The answer was cut by the token limit (`length`, `max_tokens`): truncated.
    Length,
    /// Any other reason the API gave (`tool_calls`, `content_filter`, `refusal`, …).
    Other,
    /// The API said nothing (raw bodies, failed calls, servers that omit it).
    #[default]
    Unknown,
}

impl Finish {
    /// Classifies an API's stop reason; None (not reported) is `Unknown`.
    pub fn of(reason: Option<&str>) -> Finish {
        match reason {
            None => Finish::Unknown,
            Some("stop" | "end_turn" | "stop_sequence") => Finish::Stop,
            Some("length" | "max_tokens") => Finish::Length,
            Some(_) => Finish::Other,
        }
    }

    /// Stable snake_case name, as in JSON and calls.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Other => "other",
            Finish::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Finish;

    #[test]
    fn stop_reasons_of_both_apis_map_to_their_class() {
        for r in ["stop", "end_turn", "stop_sequence"] {
            assert_eq!(Finish::of(Some(r)), Finish::Stop, "{r}");
        }
        for r in ["length", "max_tokens"] {
            assert_eq!(Finish::of(Some(r)), Finish::Length, "{r}");
        }
        assert_eq!(Finish::of(Some("tool_calls")), Finish::Other);
        assert_eq!(Finish::of(None), Finish::Unknown);
    }
}
