//! Deterministic completion text: a pure function of the request's messages and the seed.
//!
//! The point is reproducibility checks in the harness ("did any row come out different?"):
//! the same messages always yield the same words, at any concurrency and in any order, and on
//! any server started with the same seed. The hash is FNV-1a (spelled out here, so it cannot
//! change with a std or crate upgrade) and the word stream is SplitMix64 over that hash.

use serde::Deserialize;

/// A small fixed vocabulary; the words are plain ASCII so that byte and word counts agree.
const VOCAB: [&str; 64] = [
    "the",
    "model",
    "answers",
    "with",
    "a",
    "short",
    "note",
    "about",
    "latency",
    "and",
    "throughput",
    "under",
    "load",
    "each",
    "request",
    "waits",
    "for",
    "its",
    "turn",
    "while",
    "tokens",
    "stream",
    "back",
    "over",
    "one",
    "pooled",
    "connection",
    "so",
    "that",
    "chains",
    "finish",
    "sooner",
    "when",
    "run",
    "side",
    "by",
    "concurrent",
    "limits",
    "bend",
    "curve",
    "near",
    "rate",
    "budget",
    "retries",
    "recover",
    "failed",
    "rows",
    "quietly",
    "mock",
    "server",
    "keeps",
    "every",
    "number",
    "honest",
    "seeded",
    "random",
    "choices",
    "repeat",
    "exactly",
    "this",
    "time",
    "too",
    "again",
    "done",
];

/// One chat message as sent by OpenAI-compatible clients; `content` may be a string or an
/// array of parts (`[{"type":"text","text":".."}]`), other shapes count as empty.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: serde_json::Value,
}

impl ChatMessage {
    /// Anthropic's top-level `system` as a message, so it counts in the fingerprint and the
    /// prompt tokens as OpenAI's system message does.
    pub(crate) fn system(content: serde_json::Value) -> Self {
        Self {
            role: "system".to_string(),
            content,
        }
    }

    /// Calls `f` on each piece of text in the message, in order.
    fn for_each_text(&self, mut f: impl FnMut(&str)) {
        match &self.content {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(parts) => {
                for part in parts {
                    if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                        f(text);
                    }
                }
            }
            _ => {}
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Hash of the seed and every message's role and text, with separators so that moving text
/// between messages changes the result.
/// Characters of text in `messages`, for the token estimate of `--tpm` (~4 per token).
pub(crate) fn text_chars(messages: &[ChatMessage]) -> usize {
    let mut n = 0;
    for m in messages {
        m.for_each_text(|t| n += t.chars().count());
    }
    n
}

pub(crate) fn fingerprint(messages: &[ChatMessage], seed: u64) -> u64 {
    let mut h = fnv1a(FNV_OFFSET, &seed.to_le_bytes());
    for m in messages {
        h = fnv1a(h, m.role.as_bytes());
        h = fnv1a(h, &[0xff]);
        m.for_each_text(|t| h = fnv1a(h, t.as_bytes()));
        h = fnv1a(h, &[0xfe]);
    }
    h
}

/// Estimated prompt tokens: whitespace-separated words over all messages (at least 1 per
/// message for the role framing real tokenizers add).
pub(crate) fn prompt_tokens(messages: &[ChatMessage]) -> u32 {
    let mut words: u64 = 0;
    for m in messages {
        let mut n = 0u64;
        m.for_each_text(|t| n += t.split_whitespace().count() as u64);
        words += n.max(1);
    }
    u32::try_from(words).unwrap_or(u32::MAX)
}

/// SplitMix64: a tiny, well-mixed generator; fixed here so the text never changes.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The completion's words for a fingerprint; a shorter `n` gives a prefix of a longer one.
pub(crate) fn words(fingerprint: u64, n: u32) -> Vec<&'static str> {
    let mut state = fingerprint;
    (0..n)
        .map(|_| VOCAB[(splitmix64(&mut state) % VOCAB.len() as u64) as usize])
        .collect()
}

/// `--vary`: replaces about one word in four with another vocabulary word, drawn from the
/// content `fingerprint` (which holds the seed) and the request number `seq`, so each call
/// gets its own variant (like sampling noise) yet the same seed and `seq` give the same text.
pub(crate) fn vary(words: &mut [&'static str], fingerprint: u64, seq: u64) {
    let mut state = fingerprint ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ VARY_STREAM;
    for w in words.iter_mut() {
        let r = splitmix64(&mut state);
        if r.is_multiple_of(4) {
            *w = VOCAB[((r >> 8) % VOCAB.len() as u64) as usize];
        }
    }
}

/// Mixed into `--vary`'s stream so it is independent of the words drawn from a fingerprint.
const VARY_STREAM: u64 = 0x7661_7279_2d6d_6978;

/// Joins words with single spaces.
pub(crate) fn join(words: &[&str]) -> String {
    let mut s = String::with_capacity(words.iter().map(|w| w.len() + 1).sum());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(w);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(json: &str) -> Vec<ChatMessage> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn same_messages_same_words_different_messages_different_words() {
        let a = msgs(r#"[{"role":"user","content":"hello there"}]"#);
        let b = msgs(r#"[{"role":"user","content":[{"type":"text","text":"hello there"}]}]"#);
        let c = msgs(r#"[{"role":"user","content":"hello where"}]"#);
        assert_eq!(fingerprint(&a, 1), fingerprint(&b, 1));
        assert_ne!(fingerprint(&a, 1), fingerprint(&c, 1));
        assert_ne!(fingerprint(&a, 1), fingerprint(&a, 2));
        let w = words(fingerprint(&a, 1), 16);
        assert_eq!(w.len(), 16);
        assert_eq!(words(fingerprint(&a, 1), 4), w[..4]);
        assert_eq!(prompt_tokens(&a), 2);
    }

    #[test]
    fn vary_is_deterministic_per_call_and_differs_across_calls() {
        let fp = fingerprint(&msgs(r#"[{"role":"user","content":"hi"}]"#), 42);
        let base = words(fp, 64);
        let variant = |seq: u64| {
            let mut w = base.clone();
            vary(&mut w, fp, seq);
            w
        };
        assert_eq!(
            variant(7),
            variant(7),
            "same seed and call index, same text"
        );
        assert_ne!(variant(7), variant(8), "another call, another variant");
        assert_ne!(variant(7), base, "a variant differs from the plain text");
        let kept = variant(7).iter().zip(&base).filter(|(a, b)| a == b).count();
        assert!(kept > 32, "most words stay: {kept}/64");
        let other_seed = fingerprint(&msgs(r#"[{"role":"user","content":"hi"}]"#), 43);
        let mut w = words(other_seed, 64);
        vary(&mut w, other_seed, 7);
        assert_ne!(w, variant(7), "another seed, another text");
    }

    #[test]
    fn text_is_stable_across_builds() {
        // Pinned so an accidental change of hash or vocabulary is caught.
        let a = msgs(r#"[{"role":"user","content":"hello"}]"#);
        let text = join(&words(fingerprint(&a, 42), 3));
        assert_eq!(text, "model its pooled");
    }
}
