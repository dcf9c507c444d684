//! One HTTP/1.1 keep-alive connection on hyper's low-level client: no pool, no redirects,
//! no cookie jar — nothing between the generator and the wire that could add latency.

use std::{io, net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A request that is built once and sent many times.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub method: Method,
    pub uri: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Prepared {
    pub fn get(path: &str) -> anyhow::Result<Self> {
        Ok(Self { method: Method::GET, uri: path.parse()?, headers: Vec::new(), body: Bytes::new() })
    }

    pub fn post_json(path: &str, body: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(Self {
            method: Method::POST,
            uri: path.parse()?,
            headers: vec![(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body: Bytes::from(serde_json::to_vec(body)?),
        })
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn build(&self, host: &HeaderValue) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(header::HOST, host.clone());
        for (name, value) in &self.headers {
            h.append(name.clone(), value.clone());
        }
        req
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Io(#[from] hyper::Error),
}

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr} timed out")))??;
        tcp.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(io::Error::other)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let host = HeaderValue::from_str(&addr.to_string()).map_err(io::Error::other)?;
        Ok(Self { sender, host })
    }

    /// The server closed this connection (e.g. its idle keep-alive timeout passed).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Send and read the whole response body.
    pub async fn send(&mut self, req: &Prepared, timeout: Duration) -> Result<(StatusCode, Bytes), SendError> {
        self.send_with_headers(req, timeout).await.map(|(status, _, body)| (status, body))
    }

    /// Response headers are sometimes needed (Set-Cookie at login).
    pub async fn send_with_headers(
        &mut self,
        req: &Prepared,
        timeout: Duration,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), SendError> {
        let request = req.build(&self.host);
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, hyper::Error>((parts.status, parts.headers, body))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(SendError::Timeout(timeout)),
        }
    }
}
