//! Loopback networking: free ports and plain HTTP requests.

use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;

/// Distinct loopback ports that were free a moment ago: all are bound at
/// once so none is handed out twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request. `host` overrides the Host header while the
/// connection still goes to the URL's address, which is how a
/// virtual-hosted `{bucket}.localhost` name is reached without DNS.
pub async fn http_request(
    method: &str,
    url: &str,
    host: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> HttpResponse {
    let mut headers = Vec::new();
    if let Some(host) = host {
        headers.push(("host", host));
    }
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    exchange(method, url, &headers, body).await
}

/// A request without a body, with these headers.
pub async fn http_request_with_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    exchange(method, url, headers, Bytes::new()).await
}

async fn exchange(method: &str, url: &str, headers: &[(&str, &str)], body: Bytes) -> HttpResponse {
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(hyper::Body::from(body))
        .expect("valid request");
    let exchange = async {
        let response = hyper::Client::new().request(request).await?;
        let (parts, body) = response.into_parts();
        let body = hyper::body::to_bytes(body).await?;
        Ok::<_, hyper::Error>(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {url}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub async fn http_get(url: &str) -> HttpResponse {
    http_request("GET", url, None, None, Bytes::new()).await
}

/// One HTTP/1.1 GET of `target` sent byte for byte as given, as a hostile
/// client sends what no URL parser would let through (`..`, `\`, bytes
/// no URL holds); the status and the whole answer as text (`0` when the
/// server closed without a status line).
pub async fn raw_http_get(addr: std::net::SocketAddr, target: &[u8], host: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        request.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        stream.write_all(&request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no answer within 30 s")
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The line of metric `name` (without labels) in the Prometheus text the
/// server on `port` exports.
pub async fn metric_line(port: u16, name: &str) -> String {
    let body = http_get(&format!("http://127.0.0.1:{port}/metrics"))
        .await
        .text();
    let prefix = format!("{name} ");
    body.lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} in:\n{body}"))
        .to_string()
}

/// A TCP proxy on a loopback port of its own to `upstream`, holding every
/// chunk of bytes for its delay before passing it on, either way: the
/// server behind it is two delays a round trip away, as across a slow
/// network. Stops accepting when dropped.
pub struct SlowLink {
    pub port: u16,
    accepting: tokio::task::JoinHandle<()>,
}

impl SlowLink {
    /// Must be called inside a Tokio runtime, which runs the proxy.
    pub async fn start(upstream: u16, delay: Duration) -> SlowLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // Nothing there: the client sees its connection closed.
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        delayed(client_read, server_write, delay),
                        delayed(server_read, client_write, delay)
                    );
                });
            }
        });
        SlowLink { port, accepting }
    }

    /// `redis://127.0.0.1:PORT`, for a Redis behind the link.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Passes what `from` reads to `to`, each chunk `delay` late, until
/// either end closes.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        tokio::time::sleep(delay).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
