//! One HTTP/1.1 exchange on a socket of the direct path: whether a kept connection is still
//! open, writing the request, reading the response head and then its body (by length,
//! chunks, or until close) into the call's [`BodyReader`]. The wire format itself is in
//! [`h1`](super::h1); which socket, and the retry on a stale one, in
//! [`direct`](super::direct).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::exchange::{BodyFault, BodyReader, Exchange};
use super::fault::is_local_fault;
use super::h1::{self, Chunked, Framing, ResponseHead};

/// What a read asks room for: responses of a chat call fit in one.
const READ_CHUNK: usize = 8 * 1024;

/// Most bytes of chunk framing (a size line with its extensions, or the trailer) read in a row.
const MAX_CHUNK_FRAMING: usize = 64 * 1024;

/// How a request failed on a connection, for the retry rule and the message.
pub(super) enum Broke {
    /// Writing the request failed: it did not (wholly) leave.
    Write(io::Error),
    /// The connection ended or failed before a whole response head came.
    Read(Option<io::Error>),
    /// The server answered something that is not an HTTP/1.x response head.
    Head(h1::BadHead),
}

/// Whether a kept connection can take a request: nothing arrived on it since its last
/// response (a FIN, a reset or stray bytes all retire it). One non-blocking
/// `recv(MSG_PEEK)`: tokio's cached readiness alone misses a FIN that the reactor has not
/// polled yet (the worker was busy running calls), which is the race at a server's
/// keep-alive timeout.
#[cfg(unix)]
pub(super) fn still_open(io: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut probe = [0u8; 1];
    // SAFETY: recv(2) writes at most `probe.len()` bytes into `probe`, which outlives the
    // call; the descriptor belongs to `io`, borrowed (so open) for the whole call.
    let n = unsafe {
        libc::recv(
            io.as_raw_fd(),
            probe.as_mut_ptr().cast(),
            probe.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// Elsewhere, tokio's cached readiness, then a read when it says something arrived.
#[cfg(not(unix))]
pub(super) fn still_open(io: &TcpStream) -> bool {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    match io.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut probe = [0u8; 1];
            matches!(io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
    }
}

/// Reads what the socket has into `buf`, waiting for it first; a buffer is reserved only
/// once bytes are there to read, so a connection waiting for its answer holds none. The read
/// goes through `AsyncRead`, which forgets the socket's readiness after a short read: the next
/// call then waits for its answer instead of first trying a read that finds nothing (one
/// `recvfrom` per call instead of two).
async fn fill(io: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    io.readable().await?;
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    io.read_buf(buf).await
}

/// Writes `request` and reads up to a whole response head (left at the start of `buf`). The
/// request is dropped once written: a call waiting for its answer holds no copy of it.
///
/// When the write fails, the server may have answered before reading the whole body (a 413
/// for a body over its limit) and closed: its answer is still in the receive buffer, and it
/// is what the call reports, not the broken pipe. Only with no answer there is it
/// [`Broke::Write`].
pub(super) async fn exchange_head(
    io: &mut TcpStream,
    request: Vec<u8>,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> Result<ResponseHead, Broke> {
    let written = io.write_all(&request).await;
    drop(request);
    match written {
        Ok(()) => read_head(io, buf, head_request).await,
        Err(e) => match read_head(io, buf, head_request).await {
            Ok(mut head) => {
                // The request did not wholly leave: the connection is out of step.
                head.keep_alive = false;
                Ok(head)
            }
            Err(_) if buf.is_empty() => Err(Broke::Write(e)),
            Err(broke) => Err(broke),
        },
    }
}

/// Reads up to a whole response head (left at the start of `buf`).
async fn read_head(
    io: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> Result<ResponseHead, Broke> {
    loop {
        match fill(io, buf).await {
            Ok(0) => return Err(Broke::Read(None)),
            Ok(_) => {}
            Err(e) => return Err(Broke::Read(Some(e))),
        }
        if let Some(head) = h1::parse_head(buf, head_request).map_err(Broke::Head)? {
            return Ok(head);
        }
    }
}

/// Whether the connection can carry the next request after a body read to its end.
pub(super) enum Reuse {
    Yes,
    No,
}

/// Reads the body that follows `head` (its first bytes already in `buf`) into `reader`;
/// Err when it stopped early (`ex.body` then says why).
pub(super) async fn read_body(
    io: &mut TcpStream,
    head: &ResponseHead,
    mut buf: Vec<u8>,
    reader: &mut BodyReader,
    ex: &mut Exchange,
) -> Result<Reuse, ()> {
    let mut chunked = Chunked::default();
    let mut framing = 0usize;
    let mut left = match head.framing {
        Framing::Empty => 0,
        Framing::Length(len) => len,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    loop {
        // Take what the buffer holds.
        let mut at = 0;
        while at < buf.len() && left > 0 {
            let data = match head.framing {
                Framing::Chunked => {
                    let (used, data) = match chunked.decode(&buf[at..]) {
                        Ok(step) => step,
                        Err(bad) => {
                            broken(ex, None, bad.0);
                            return Err(());
                        }
                    };
                    at += used;
                    if chunked.done() {
                        left = 0;
                    }
                    // Framing between data (size lines, extensions, trailers) is bounded: a
                    // server sending an endless extension would otherwise be read until the
                    // timeout without ever reaching --max-response-bytes.
                    framing = if data.is_empty() { framing + used } else { 0 };
                    if framing > MAX_CHUNK_FRAMING {
                        broken(ex, None, "chunk size line or trailer over 64 KiB");
                        return Err(());
                    }
                    data
                }
                Framing::Length(_) => {
                    let take = (buf.len() - at).min(usize::try_from(left).unwrap_or(usize::MAX));
                    left -= take as u64;
                    at += take;
                    &buf[at - take..at]
                }
                Framing::UntilClose | Framing::Empty => {
                    let data = &buf[at..];
                    at = buf.len();
                    data
                }
            };
            if !data.is_empty() && !reader.push(data, ex) {
                return Err(());
            }
        }
        if left == 0 {
            // Bytes past the response's end: a server out of step; its connection retires.
            return Ok(if head.keep_alive && at == buf.len() {
                Reuse::Yes
            } else {
                Reuse::No
            });
        }
        buf.clear();
        match fill(io, &mut buf).await {
            Ok(0) if head.framing == Framing::UntilClose => return Ok(Reuse::No),
            Ok(0) => {
                broken(ex, None, "end of file before message completed");
                return Err(());
            }
            Ok(_) => {}
            Err(e) => {
                broken(ex, Some(&e), "");
                return Err(());
            }
        }
    }
}

/// Records on `ex` that the body stopped early: an I/O error, or what was wrong with it.
fn broken(ex: &mut Exchange, e: Option<&io::Error>, what: &str) {
    let (local, cause) = match e {
        Some(e) => (is_local_fault(e), e.to_string()),
        None => (false, what.to_string()),
    };
    ex.body = Err(BodyFault::Read {
        local,
        message: format!("error reading a body from connection: {cause}"),
    });
}
