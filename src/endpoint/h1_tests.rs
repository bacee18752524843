//! The wire format: chunked decoding across any split, response heads, request bytes.

use super::*;

fn decode_all(chunks: &[&[u8]]) -> Result<(Vec<u8>, bool), BadChunk> {
    let mut state = Chunked::default();
    let mut out = Vec::new();
    for input in chunks {
        let mut at = 0;
        while at < input.len() && !state.done() {
            let (used, data) = state.decode(&input[at..])?;
            out.extend_from_slice(data);
            at += used;
        }
    }
    Ok((out, state.done()))
}

#[test]
fn chunked_bodies_decode_across_any_split() {
    let wire = b"5;name=v\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    for split in 0..wire.len() {
        let (a, b) = wire.split_at(split);
        let (body, done) = decode_all(&[a, b]).unwrap();
        assert_eq!(body, b"hello, world", "split at {split}");
        assert!(done, "split at {split}");
    }
    // Byte by byte too.
    let bytes: Vec<&[u8]> = wire.iter().map(std::slice::from_ref).collect();
    assert_eq!(
        decode_all(&bytes).unwrap(),
        (b"hello, world".to_vec(), true)
    );
}

#[test]
fn a_chunked_body_is_unfinished_until_its_last_chunk() {
    let (body, done) = decode_all(&[b"3\r\nabc\r\n"]).unwrap();
    assert_eq!((body.as_slice(), done), (&b"abc"[..], false));
    let (_, done) = decode_all(&[b"3\r\nabc\r\n0\r\n"]).unwrap();
    assert!(!done, "the trailer's empty line is still to come");
}

#[test]
fn broken_chunk_encodings_are_refused() {
    for wire in [
        &b"zz\r\nhi\r\n"[..],
        b"\r\n",
        b"2\r\nhiX\r\n",
        b"ffffffffffffffffff\r\n",
        b"2\rX",
    ] {
        assert!(
            decode_all(&[wire]).is_err(),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn heads_give_status_framing_and_reuse() {
    let wire = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nRetry-After: 3\r\ndate: x\r\n\r\nbody";
    let head = parse_head(wire, false).unwrap().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.framing, Framing::Length(12));
    assert!(head.keep_alive);
    assert_eq!(head.len, wire.len() - 4);
    assert_eq!(
        head.headers.len(),
        1,
        "only the headers a call reads are kept"
    );
    assert_eq!(head.headers["retry-after"], "3");

    let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n";
    let head = parse_head(chunked, false).unwrap().unwrap();
    assert_eq!((head.status, head.framing), (200, Framing::Chunked));
    assert_eq!(head.len, chunked.len());

    let closing = b"HTTP/1.0 200 OK\r\n\r\n";
    let head = parse_head(closing, false).unwrap().unwrap();
    assert_eq!(head.framing, Framing::UntilClose);
    assert!(!head.keep_alive);

    let close = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    let head = parse_head(close, false).unwrap().unwrap();
    assert_eq!(head.framing, Framing::Empty);
    assert!(!head.keep_alive);

    let moved = b"HTTP/1.1 302 Found\r\nLocation: /next\r\ncontent-length: 0\r\n\r\n";
    let head = parse_head(moved, true).unwrap().unwrap();
    assert_eq!(head.location.as_deref(), Some("/next"));
    assert_eq!(
        head.framing,
        Framing::Empty,
        "a HEAD request's answer has no body"
    );
}

#[test]
fn partial_and_bad_heads() {
    assert!(
        parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", false)
            .unwrap()
            .is_none()
    );
    assert!(parse_head(b"garbage\r\n\r\n", false).is_err());
    assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false).is_err());
    let conflicting = b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n";
    assert!(parse_head(conflicting, false).is_err());
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
    }
    assert!(
        parse_head(&many, false).is_err(),
        "more than {MAX_HEADERS} headers"
    );
}

#[test]
fn requests_carry_a_length_only_with_a_body() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("h:1"));
    let post = RequestHead::new(&reqwest::Method::POST, "/v1/x?a=1", &headers, true);
    assert_eq!(
        post.request(b"{}"),
        b"POST /v1/x?a=1 HTTP/1.1\r\nhost: h:1\r\ncontent-length: 2\r\n\r\n{}"
    );
    let get = RequestHead::new(&reqwest::Method::GET, "/", &headers, false);
    assert_eq!(get.request(b""), b"GET / HTTP/1.1\r\nhost: h:1\r\n\r\n");
}

#[test]
fn a_status_line_without_a_reason_phrase_is_read() {
    let head = parse_head(b"HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n", false)
        .unwrap()
        .unwrap();
    assert_eq!((head.status, head.framing), (200, Framing::Length(0)));
}

#[test]
fn transfer_encoding_wins_over_content_length_and_mixed_case_names_count() {
    let wire = b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 9\r\nTransfer-Encoding: Chunked\r\nConnection: Close\r\n\r\n";
    let head = parse_head(wire, false).unwrap().unwrap();
    assert_eq!(head.framing, Framing::Chunked);
    assert!(!head.keep_alive);
}

#[test]
fn transfer_encoding_wins_in_either_order_and_a_head_with_both_is_not_reused() {
    for wire in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
        // A bad length does not matter once a coding overrides it.
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: x\r\n\r\n",
    ] {
        let head = parse_head(wire, false).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive, "{}", String::from_utf8_lossy(wire));
    }
    // A coding other than chunked last: the body runs to the close, whatever the length says.
    for wire in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 3\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: gzip\r\n\r\n",
    ] {
        let head = parse_head(wire, false).unwrap().unwrap();
        assert_eq!(head.framing, Framing::UntilClose);
        assert!(!head.keep_alive);
    }
    let plain = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    assert!(parse_head(plain, false).unwrap().unwrap().keep_alive);
}

#[test]
fn a_keep_alive_timeout_is_read_from_the_head() {
    let wire = b"HTTP/1.1 200 OK\r\nKeep-Alive: max=100, Timeout=5\r\ncontent-length: 0\r\n\r\n";
    let head = parse_head(wire, false).unwrap().unwrap();
    assert_eq!(head.idle_limit, Some(std::time::Duration::from_secs(5)));
    let none = b"HTTP/1.1 200 OK\r\nKeep-Alive: max=100\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(parse_head(none, false).unwrap().unwrap().idle_limit, None);
}
