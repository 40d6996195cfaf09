//! The metrics endpoint: `GET /metrics` (OpenMetrics text) and `GET /health` (200 or 503).
//!
//! Written on tokio directly rather than with an HTTP crate: it answers two fixed GETs from
//! a scraper, one request per connection (`Connection: close`), and an HTTP stack would
//! add a dozen crates to the one binary for that. Anything else gets 404 or 405; a request
//! head over 8 KiB or slower than 5 s is dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use super::Metrics;

const MAX_HEAD: usize = 8 * 1024;
const PATIENCE: Duration = Duration::from_secs(5);
/// The content type of prometheus-client's text encoding.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, usually: wait rather than spin.
                warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let m = metrics.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(PATIENCE, answer(sock, &m)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, "metrics endpoint: {e}"),
                Err(_) => debug!(%peer, "metrics endpoint: request too slow, dropped"),
            }
        });
    }
}

/// Status, content type and body for a request line.
fn route(request_line: &str, m: &Metrics) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_ascii_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", "text/plain", "GET only\n".into());
    }
    match path {
        "/metrics" => ("200 OK", OPENMETRICS, m.encode()),
        "/health" => match m.health() {
            Ok(()) => ("200 OK", "text/plain", "ok\n".into()),
            Err(why) => ("503 Service Unavailable", "text/plain", format!("{why}\n")),
        },
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /health\n".into(),
        ),
    }
}

async fn answer(mut sock: TcpStream, m: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Ok(());
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    let (status, ctype, body) = route(line, m);
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !line.starts_with("HEAD ") {
        out.push_str(&body);
    }
    sock.write_all(out.as_bytes()).await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test(flavor = "current_thread")]
    async fn metrics_and_health_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let m = Arc::new(Metrics::new());
        m.publishes.inc();
        tokio::spawn(serve(listener, m.clone()));
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains(OPENMETRICS));
        assert!(r.contains("roost_publishes_total 1"), "{r}");
        let r = get(addr, "GET /health HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
        m.set_linked(true);
        let r = get(addr, "GET /health?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 200 OK") && r.ends_with("ok\n"),
            "{r}"
        );
        let r = get(addr, "HEAD /health HTTP/1.0\r\n\r\n").await;
        assert!(r.ends_with("\r\n\r\n"), "no body for HEAD: {r}");
        assert!(get(addr, "GET /nope HTTP/1.0\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.0\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 405"));
    }
}
