//! A deliberately hostile HTTP/1.1 server: raw TCP on 127.0.0.1:0, std threads, one behaviour
//! per route (the first path segment). Each route's closure gets the 1-based number of the
//! request on that route and says how to answer it, so a route can answer loadchain's
//! preflight (request 1) correctly and misbehave afterwards.
//!
//! Bounded: at most `MAX_CONNECTIONS` connections are served, every write loop stops after
//! `MAX_SERVE` or when the client hangs up, and the accept loop ends when the server drops.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const MAX_CONNECTIONS: usize = 256;
const MAX_SERVE: Duration = Duration::from_secs(30);

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A valid completion (an SSE stream when the request asked for `"stream":true`).
    Valid,
    /// Bytes that are not HTTP at all.
    Garbage,
    /// A status line and half a header, then close.
    CloseMidHeaders,
    /// A 200 with this many headers.
    ManyHeaders(usize),
    /// Content-Length 1000, ten bytes, close.
    ShortBody,
    /// Chunked encoding with a chunk size that is not hex.
    BadChunked,
    /// A 200 with a body of this many bytes.
    HugeBody(usize),
    /// A 200 whose body arrives one byte per 100 ms, until the client hangs up.
    Trickle,
    /// A 200 with `Content-Encoding` set to this coding and a body that starts as gzip does
    /// (loadchain sends no Accept-Encoding, so the server should not have compressed it).
    Encoded(String),
    /// [`Reply::SseLine`] without a Content-Length: the body runs until the server closes.
    SseLineUnsized(usize),
    /// This status with these extra headers and a short JSON error body.
    Status(u16, Vec<(String, String)>),
    /// A 302 to this Location.
    Redirect(String),
    /// An SSE stream whose content chunk is one line of this many bytes, written in 8 KiB
    /// pieces.
    SseLine(usize),
    /// This status with the request line and every request header echoed in the body
    /// (OpenAI error JSON for non-2xx, completion content for 2xx).
    Echo(u16),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Route name (first path segment).
    pub route: String,
    /// Request method.
    pub method: String,
    /// Request line and headers, as received.
    pub head: String,
    /// When the head was complete.
    pub at: Instant,
}

type Handler = Box<dyn Fn(usize) -> Reply + Send + Sync>;

/// A running hostile server.
pub struct Server {
    /// Its address.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts a server with these routes; a request to any other route gets a 404.
    pub fn start(routes: Vec<(&str, Handler)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<HashMap<String, Handler>> = Arc::new(
            routes
                .into_iter()
                .map(|(name, h)| (name.to_string(), h))
                .collect(),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || {
            let mut served = 0;
            while served < MAX_CONNECTIONS && !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        served += 1;
                        let (routes, seen, stop, counts) = (
                            Arc::clone(&routes),
                            Arc::clone(&seen2),
                            Arc::clone(&stop2),
                            Arc::clone(&counts),
                        );
                        thread::spawn(move || serve(conn, &routes, &seen, &stop, &counts));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { addr, seen, stop }
    }

    /// `http://127.0.0.1:PORT/ROUTE`.
    pub fn url(&self, route: &str) -> String {
        format!("http://{}/{route}", self.addr)
    }

    /// Every request seen so far on `route`, in arrival order.
    pub fn seen(&self, route: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.route == route).cloned().collect()
    }

    /// Every request seen so far, on any route.
    pub fn all_seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A handler that answers request 1 validly and every later request with `reply`.
pub fn after_preflight(reply: Reply) -> Handler {
    Box::new(move |n| if n == 1 { Reply::Valid } else { reply.clone() })
}

/// A handler that answers request `n` with `reply` and every other request validly.
pub fn only(n: usize, reply: Reply) -> Handler {
    Box::new(move |i| if i == n { reply.clone() } else { Reply::Valid })
}

fn serve(
    mut conn: TcpStream,
    routes: &HashMap<String, Handler>,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
    counts: &Mutex<HashMap<String, usize>>,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_nodelay(true);
    let Some((head, body)) = read_request(&mut conn) else {
        return;
    };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    if method == "PRI" {
        // The HTTP/2 preface: this server speaks HTTP/1.1 only.
        let _ = conn.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let route = target
        .trim_start_matches('/')
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_string();
    seen.lock().unwrap().push(Seen {
        route: route.clone(),
        method,
        head: head.clone(),
        at: Instant::now(),
    });
    let n = {
        let mut counts = counts.lock().unwrap();
        let c = counts.entry(route.clone()).or_insert(0);
        *c += 1;
        *c
    };
    let Some(handler) = routes.get(&route) else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let streaming = String::from_utf8_lossy(&body).contains("\"stream\":true");
    let _ = answer(&mut conn, handler(n), &head, streaming, stop);
}

/// Reads the head (up to 256 KiB) and a Content-Length body; None on a broken request.
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 256 * 1024 {
            return None;
        }
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

const COMPLETION: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}"#;

fn sse_event(content: &str) -> String {
    let chunk = serde_json::json!({"choices":[{"index":0,"delta":{"content":content}}]});
    format!("data: {chunk}\n\n")
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    extra: &str,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}

fn answer(
    conn: &mut TcpStream,
    reply: Reply,
    head: &str,
    streaming: bool,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let started = Instant::now();
    let go_on = || !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_SERVE;
    match reply {
        Reply::Valid if streaming => {
            let body = format!("{}data: [DONE]\n\n", sse_event("fine"));
            respond(conn, 200, "", "text/event-stream", body.as_bytes())
        }
        Reply::Valid => respond(conn, 200, "", "application/json", COMPLETION.as_bytes()),
        Reply::Garbage => conn.write_all(b"\x00\xff\xfeSSH-2.0 this is not HTTP at all\r\n\r\n"),
        Reply::CloseMidHeaders => conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: appl"),
        Reply::ManyHeaders(count) => {
            let mut extra = String::new();
            for i in 0..count {
                extra.push_str(&format!("X-Filler-{i}: v\r\n"));
            }
            respond(conn, 200, &extra, "application/json", COMPLETION.as_bytes())
        }
        Reply::ShortBody => conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0123456789"),
        Reply::BadChunked => conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz-not-hex\r\nhello\r\n0\r\n\r\n"),
        Reply::HugeBody(size) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
            conn.write_all(head.as_bytes())?;
            let piece = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            while sent < size && go_on() {
                let n = piece.len().min(size - sent);
                conn.write_all(&piece[..n])?;
                sent += n;
            }
            Ok(())
        }
        Reply::Trickle => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")?;
            while go_on() {
                conn.write_all(b"a")?;
                thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
        Reply::Status(status, headers) => {
            let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            let body = r#"{"error":{"message":"slow down"}}"#;
            respond(conn, status, &extra, "application/json", body.as_bytes())
        }
        Reply::Redirect(location) => {
            respond(conn, 302, &format!("Location: {location}\r\n"), "text/plain", b"moved")
        }
        Reply::Encoded(coding) => {
            let body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\x05\x00\x43\xbf\xa6\xa3\x02\x00\x00\x00";
            let extra = format!("Content-Encoding: {coding}\r\n");
            respond(conn, 200, &extra, "application/json", body)
        }
        Reply::SseLine(size) | Reply::SseLineUnsized(size) => {
            let sized = matches!(reply, Reply::SseLine(_));
            let line = sse_event(&"x".repeat(size));
            let tail = "data: [DONE]\n\n";
            let length = match sized {
                true => format!("Content-Length: {}\r\n", line.len() + tail.len()),
                false => String::new(),
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n{length}Connection: close\r\n\r\n"
            );
            conn.write_all(head.as_bytes())?;
            for piece in line.as_bytes().chunks(8 * 1024) {
                if !go_on() {
                    return Ok(());
                }
                conn.write_all(piece)?;
            }
            conn.write_all(tail.as_bytes())
        }
        Reply::Echo(status) => {
            let echo = head.trim_end().replace("\r\n", " | ");
            let body = if (200..300).contains(&status) {
                serde_json::json!({"choices":[{"index":0,"message":{"role":"assistant","content":echo}}],"usage":{"completion_tokens":1}})
            } else {
                serde_json::json!({"error":{"message":echo}})
            };
            respond(conn, status, "", "application/json", body.to_string().as_bytes())
        }
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for a Unix time in seconds.
pub fn http_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[test]
fn http_date_matches_rfc_9110_example() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
}
