//! The accept loop: each connection is served by hyper with a header-read
//! timeout (which also closes a kept-alive connection that stays idle that
//! long) and the same timeout on each write (a client that stops reading
//! loses the connection), at most a fixed number of connections are open at once (the excess
//! gets a quick JSON 503 and is closed), and requests whose target or
//! headers are too large get a JSON 414 or 431. Shutting down (Ctrl-C)
//! stops accepting and lets the open requests finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::ApiError;

/// The longest request target (path and query) answered; longer gets 414.
pub const MAX_TARGET_BYTES: usize = 16 << 10;
/// The most header bytes (names and values) answered; more gets 431.
pub const MAX_HEADER_BYTES: usize = 32 << 10;
/// How long open requests may take to finish after Ctrl-C.
const DRAIN: Duration = Duration::from_secs(10);
/// How long a refused connection gets to take its 503.
const REFUSE_WAIT: Duration = Duration::from_secs(1);
/// How long a refused connection's request is read and dropped after the 503.
const REFUSE_DRAIN: Duration = Duration::from_millis(100);

/// The body of the answer to a connection past the cap.
const BUSY_BODY: &str = r#"{"error":"too many open connections here; try again in a few seconds"}"#;

/// The answer to a connection past the cap, written before closing it.
fn busy_response() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    )
}

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request's headers, on a new connection
    /// or an idle kept-alive one.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// The default cap on open connections: half the open-file limit (each
/// connection is a file), at most 1,024.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let files = if known { limit.rlim_cur as usize } else { 1024 };
    (files / 2).clamp(16, 1024)
}

/// Serves `routes` on `listener` until `shutdown` completes (Ctrl-C, or the
/// end of the work beside it).
pub async fn serve_connections(
    listener: TcpListener,
    routes: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of files, most often: wait for connections to close.
                    tracing::warn!("accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let (routes, stopped) = (routes.clone(), stopped.clone());
                tasks.spawn(async move {
                    serve_connection(stream, routes, limits.header_timeout, stopped).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tasks.spawn(refuse(stream));
            }
        }
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("stopping with requests still open after {DRAIN:?}");
    }
}

/// One connection, until the client closes it, a timeout does, or the
/// server stops (then after its current request).
async fn serve_connection(
    stream: TcpStream,
    routes: Router,
    header_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let stream = WriteDeadline::new(stream, header_timeout);
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(routes));
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A stream whose writes fail (`TimedOut`) once one has made no progress
/// for `timeout`: a client that sends requests and never reads the answers
/// loses its connection, and its slot, instead of holding it for as long
/// as it likes.
struct WriteDeadline {
    inner: TcpStream,
    timeout: Duration,
    /// Set while a write (or flush) waits for the client to read.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// `progress` polled once; while it is pending, the deadline runs.
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        progress: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if progress.is_ready() {
            self.stalled = None;
            return progress;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client took no bytes of the answer within the timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let progress = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.deadline(cx, progress)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let progress = Pin::new(&mut self.inner).poll_flush(cx);
        self.deadline(cx, progress)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection past the cap: a 503 (within [`REFUSE_WAIT`]), then what the
/// client sent is read and dropped for at most [`REFUSE_DRAIN`] (closing
/// with unread data would send a reset that can destroy the answer; a short
/// wait keeps refused connections from holding files under a flood).
async fn refuse(mut stream: TcpStream) {
    let answer = busy_response();
    let written = tokio::time::timeout(REFUSE_WAIT, stream.write_all(answer.as_bytes())).await;
    if !matches!(written, Ok(Ok(()))) || stream.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(REFUSE_DRAIN, async {
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Answers 414 or 431 (as JSON) to a request whose target or headers are
/// past the limits above.
pub async fn bounded_requests(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    for (status, what, bytes, most) in [
        (StatusCode::URI_TOO_LONG, "target", target, MAX_TARGET_BYTES),
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers",
            headers,
            MAX_HEADER_BYTES,
        ),
    ] {
        if bytes > most {
            let message = format!("request {what}: {bytes} bytes; at most {most} are read");
            return ApiError { status, message }.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_answer_is_valid_http_with_a_json_body() {
        let text = busy_response();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("too many"));
        assert!(default_max_connections() >= 16);
    }
}
