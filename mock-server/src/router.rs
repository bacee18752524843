//! Routing: which path goes where, the uncounted control plane (`/health`, `/stats`,
//! `/stats/reset`), the models endpoints, and the `x-request-id` stamped on every response.
//!
//! A connection counts in the stats from its first request outside the control plane, so a
//! client that watches the server does not change the connection count it reads.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};

use crate::body::MockBody;
use crate::content;
use crate::handler::{ConnState, Hung, Shared, chat, counted, messages};
use crate::response;

const CHAT_PATH: &str = "/v1/chat/completions";
const MESSAGES_PATH: &str = "/v1/messages";
const MODELS_PATH: &str = "/v1/models";

/// Entry point for every request on every connection: routes it and stamps the answer
/// with an `x-request-id`, as OpenAI does on every response.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Hung> {
    let mut resp = route(&shared, &conn, req).await?;
    let n = shared.request_ids.fetch_add(1, Ordering::Relaxed);
    let mut state = shared.config.seed;
    // A per-server prefix and a counter: unique on this server, 32 hex digits like OpenAI's.
    let id = format!("req_{:016x}{n:016x}", content::splitmix64(&mut state));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

async fn route(
    shared: &Arc<Shared>,
    conn: &ConnState,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Hung> {
    let path = req.uri().path();
    // The control plane (/health, /stats, /stats/reset) is not counted anywhere.
    match path {
        "/health" => {
            return Ok(match *req.method() {
                Method::GET | Method::HEAD => {
                    response::json(StatusCode::OK, Bytes::from_static(b"{\"status\":\"ok\"}"))
                }
                _ => response::method_not_allowed("GET"),
            });
        }
        "/stats" => {
            return Ok(match *req.method() {
                Method::GET => response::stats(&shared.stats.snapshot()),
                _ => response::method_not_allowed("GET"),
            });
        }
        "/stats/reset" => {
            return Ok(match *req.method() {
                Method::POST => {
                    shared.stats.reset();
                    response::stats(&shared.stats.snapshot())
                }
                _ => response::method_not_allowed("POST"),
            });
        }
        _ => {}
    }
    conn.api.get_or_init(|| shared.stats.connection_opened());
    let (seq, guard) = shared.stats.begin_request();
    if path == CHAT_PATH {
        if req.method() != Method::POST {
            return Ok(counted(shared, response::method_not_allowed("POST")));
        }
        return chat(shared, conn, req, seq, guard).await;
    }
    if path == MESSAGES_PATH {
        if req.method() != Method::POST {
            return Ok(counted(shared, response::method_not_allowed("POST")));
        }
        return messages(shared, conn, req, seq, guard).await;
    }
    let model_id = path.strip_prefix("/v1/models/").filter(|id| !id.is_empty());
    let resp = if path != MODELS_PATH && model_id.is_none() {
        response::error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            "Unknown request URL. Only POST /v1/chat/completions, POST /v1/messages, GET /v1/models, GET /v1/models/{id}, GET /health, GET /stats and POST /stats/reset exist.",
        )
    } else if !matches!(*req.method(), Method::GET | Method::HEAD) {
        response::method_not_allowed("GET")
    } else {
        match model_id {
            Some(id) => response::model(id),
            None => response::models(),
        }
    };
    drop(guard);
    Ok(counted(shared, resp))
}
