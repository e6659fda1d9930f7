//! The HTTP side: hyper 1 on a tokio runtime, one verified canister query
//! (or a stream of them) per browser request.

use crate::canister::HttpCanister;
use crate::protocol::{
    chunk_range, fetch_follow_up, fetch_verified, is_certificate_header, is_range_request,
    GatewayError, VerifiedResponse, MAX_FOLLOW_UPS, VERIFICATION_VERSION,
};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ic_http_certification::HttpRequest;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Largest request body passed to the canister (the IC's ingress limit is
/// about 2 MiB; `http_request` bodies are rare and small).
const MAX_REQUEST_BODY: usize = 2 * 1024 * 1024;

/// Verified chunks buffered ahead of a slow client.
const STREAM_BUFFER: usize = 2;

/// The gateway: a canister, and a log of what went through.
#[derive(Clone)]
pub struct Gateway {
    canister: Arc<dyn HttpCanister>,
    log: Arc<Mutex<Vec<String>>>,
    echo: bool,
    pages: Arc<Vec<StaticPage>>,
}

/// A file the gateway serves itself (a dapp's own page, as an asset
/// canister would serve it on the IC), never mixed with the canister's
/// answers.
#[derive(Clone)]
struct StaticPage {
    path: String,
    content_type: String,
    body: Bytes,
}

/// An error inside a streamed body: the connection is cut, so the client
/// sees a truncated body, never unverified bytes.
#[derive(Debug)]
pub struct StreamError(pub GatewayError);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StreamError {}

/// A response body: whole, or verified chunks arriving from a blocking
/// task.
pub struct GatewayBody(BodyKind);

enum BodyKind {
    Whole(Option<Bytes>),
    Stream(mpsc::Receiver<Result<Bytes, GatewayError>>),
}

impl GatewayBody {
    fn whole(bytes: impl Into<Bytes>) -> Self {
        GatewayBody(BodyKind::Whole(Some(bytes.into())))
    }

    /// Collects the whole body (for embedding and tests).
    pub async fn collect_bytes(self) -> Result<Vec<u8>, StreamError> {
        Ok(self.collect().await?.to_bytes().to_vec())
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        match &mut self.get_mut().0 {
            BodyKind::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyKind::Stream(rx) => rx
                .poll_recv(cx)
                .map(|item| item.map(|r| r.map(Frame::data).map_err(StreamError))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.0, BodyKind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyKind::Whole(Some(b)) => SizeHint::with_exact(b.len() as u64),
            BodyKind::Whole(None) => SizeHint::with_exact(0),
            BodyKind::Stream(_) => SizeHint::default(),
        }
    }
}

/// A gateway serving on a background thread; stops when dropped.
pub struct RunningGateway {
    addr: SocketAddr,
    gateway: Gateway,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningGateway {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The gateway (its log).
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Gateway {
    /// A gateway in front of `canister`.
    pub fn new(canister: Arc<dyn HttpCanister>) -> Self {
        Gateway {
            canister,
            log: Arc::new(Mutex::new(Vec::new())),
            echo: false,
            pages: Arc::new(Vec::new()),
        }
    }

    /// Serves `body` at `path` (any query; GET and HEAD) itself, without
    /// asking the canister: the page of a dapp under test. Logged as
    /// `static`.
    pub fn with_page(mut self, path: &str, content_type: &str, body: Vec<u8>) -> Self {
        Arc::make_mut(&mut self.pages).push(StaticPage {
            path: path.to_string(),
            content_type: content_type.to_string(),
            body: Bytes::from(body),
        });
        self
    }

    /// Also print each log line on stderr as it is written.
    pub fn echo_log(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Every line logged so far: one per browser request (`client ...`)
    /// and one per canister query (`query ...`), with the `Range` asked
    /// for and the outcome.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note(&self, line: String) {
        if self.echo {
            eprintln!("[gateway] {line}");
        }
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// Serves on `addr` (e.g. `127.0.0.1:0`) from a thread of its own
    /// with its own tokio runtime.
    pub fn spawn(self, addr: SocketAddr) -> std::io::Result<RunningGateway> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let gateway = self.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("local-gateway".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("[gateway] cannot listen: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = self.serve(listener) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(RunningGateway {
            addr,
            gateway,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Accepts connections on `listener` until it fails.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// Answers one browser request.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<GatewayBody>
    where
        B: Body + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let range = parts
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let body = match http_body_util::Limited::new(body, MAX_REQUEST_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) => {
                return self.error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body refused: {e}"),
                )
            }
        };
        if let Some(page) = self.pages.iter().find(|p| p.path == parts.uri.path()) {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                self.note(format!("static {} {target} -> 200", parts.method));
                let mut response = Response::new(GatewayBody::whole(page.body.clone()));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_str(&page.content_type)
                        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
                );
                return response;
            }
        }
        let request = match canister_request(&parts.method, &target, &parts.headers, body) {
            Ok(r) => r,
            Err(e) => return self.error(StatusCode::BAD_REQUEST, &e),
        };
        let routed;
        let gateway = match requested_canister(&parts.uri, &parts.headers) {
            Some(id) if id != self.canister.canister_id() => match self.canister.route(id) {
                Some(canister) => {
                    routed = Gateway {
                        canister,
                        ..self.clone()
                    };
                    &routed
                }
                None => {
                    let response = self.error(
                        StatusCode::NOT_FOUND,
                        &format!("canister {id} not found on this network"),
                    );
                    self.note(format!(
                        "client {} {target} range={range} -> 404",
                        parts.method
                    ));
                    return response;
                }
            },
            _ => self,
        };
        let response = gateway.respond(request).await;
        self.note(format!(
            "client {} {target} range={range} -> {}",
            parts.method,
            response.status().as_u16()
        ));
        response
    }

    async fn respond(&self, request: HttpRequest<'static>) -> Response<GatewayBody> {
        let gateway = self.clone();
        let first = {
            let request = request.clone();
            tokio::task::spawn_blocking(move || gateway.query(&request)).await
        };
        let first = match first {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return self.error(StatusCode::BAD_GATEWAY, &e.to_string()),
            Err(e) => return self.error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        if first.status_code == 206 && !is_range_request(&request) {
            return self.stream_long_asset(request, first);
        }
        self.pass_on(first)
    }

    /// One verified query, logged.
    fn query(&self, request: &HttpRequest<'static>) -> Result<VerifiedResponse, GatewayError> {
        let range = crate::protocol::header(request.headers(), "range").unwrap_or("-");
        let r = fetch_verified(&*self.canister, request);
        self.note(match &r {
            Ok(v) => format!(
                "query {} {} range={range} -> {} ({} bytes) verified",
                request.method(),
                request.url(),
                v.status_code,
                v.body.len()
            ),
            Err(e) => format!(
                "query {} {} range={range} -> REFUSED: {e}",
                request.method(),
                request.url()
            ),
        });
        r
    }

    fn pass_on(&self, v: VerifiedResponse) -> Response<GatewayBody> {
        let status = StatusCode::from_u16(v.status_code).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = Response::new(GatewayBody::whole(v.body));
        *response.status_mut() = status;
        copy_headers(&mut response, &v.headers, |_| true);
        response
    }

    /// The first chunk of a long asset is in hand: answer 200 with the
    /// whole length and stream the rest, each chunk fetched and verified
    /// on a blocking thread.
    fn stream_long_asset(
        &self,
        request: HttpRequest<'static>,
        first: VerifiedResponse,
    ) -> Response<GatewayBody> {
        let range = match chunk_range(&first) {
            Ok(r) if r.first == 0 => r,
            Ok(r) => {
                return self.error(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "a long asset's first response starts at byte {} instead of 0",
                        r.first
                    ),
                )
            }
            Err(e) => return self.error(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut response = Response::new(GatewayBody(BodyKind::Stream(rx)));
        // The client asked for the whole representation and gets it: 200,
        // its full length, no Content-Range.
        *response.status_mut() = StatusCode::OK;
        copy_headers(&mut response, &first.headers, |n| {
            !n.eq_ignore_ascii_case("content-range") && !n.eq_ignore_ascii_case("content-length")
        });
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(range.total));
        let head_only = request.method() == Method::HEAD;
        let first_body = Bytes::from(first.body);
        let gateway = self.clone();
        tokio::task::spawn_blocking(move || {
            if head_only || tx.blocking_send(Ok(first_body)).is_err() {
                return;
            }
            let mut next = range.last + 1;
            let mut follow_ups = 0;
            while next < range.total {
                follow_ups += 1;
                let chunk = if follow_ups > MAX_FOLLOW_UPS {
                    Err(GatewayError::Protocol(format!(
                        "more than {MAX_FOLLOW_UPS} follow-up requests"
                    )))
                } else {
                    gateway.follow_up(&request, next, range.total)
                };
                match chunk {
                    Ok(bytes) => {
                        next += bytes.len() as u64;
                        if tx.blocking_send(Ok(Bytes::from(bytes))).is_err() {
                            return; // the client went away
                        }
                    }
                    Err(e) => {
                        gateway.note(format!("stream of {} cut: {e}", request.url()));
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        response
    }

    fn follow_up(
        &self,
        original: &HttpRequest<'static>,
        next: u64,
        total: u64,
    ) -> Result<Vec<u8>, GatewayError> {
        let r = fetch_follow_up(&*self.canister, original, next, total);
        self.note(match &r {
            Ok(b) => format!(
                "query {} {} range=bytes={next}- -> 206 ({} bytes) verified",
                original.method(),
                original.url(),
                b.len()
            ),
            Err(e) => format!(
                "query {} {} range=bytes={next}- -> REFUSED: {e}",
                original.method(),
                original.url()
            ),
        });
        r
    }

    fn error(&self, status: StatusCode, message: &str) -> Response<GatewayBody> {
        self.note(format!("error {}: {message}", status.as_u16()));
        let mut response = Response::new(GatewayBody::whole(format!("{message}\n")));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

fn copy_headers(
    response: &mut Response<GatewayBody>,
    headers: &[(String, String)],
    keep: impl Fn(&str) -> bool,
) {
    for (name, value) in headers {
        // The certificate is the gateway's business; the browser gets
        // what it vouched for.
        if !keep(name) || is_certificate_header(name) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
}

/// The canister a request names: `<id>.localhost[:port]` (any host whose
/// first label is a canister id, e.g. `<id>.raw.localhost`, `<id>.icp0.io`)
/// or the query parameter `canisterId=<id>`; `None`: the gateway's own
/// canister.
pub fn requested_canister(uri: &http::Uri, headers: &http::HeaderMap) -> Option<candid::Principal> {
    let from_query = uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "canisterId")
            .and_then(|(_, v)| candid::Principal::from_text(v).ok())
    });
    if from_query.is_some() {
        return from_query;
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.host())?;
    let (first, rest) = host.split_once('.')?;
    if rest.is_empty() {
        return None;
    }
    candid::Principal::from_text(first).ok()
}

/// The browser's request as the canister's `http_request` argument: the
/// path and query, every header (the gateway's own `x-request-id` aside;
/// `identity` added to `Accept-Encoding`, as the IC's gateway does), the
/// body, and certificate version 2.
pub fn canister_request(
    method: &Method,
    target: &str,
    headers: &http::HeaderMap,
    body: Vec<u8>,
) -> Result<HttpRequest<'static>, String> {
    let mut fields = Vec::new();
    for (name, value) in headers {
        if name.as_str().eq_ignore_ascii_case("x-request-id") {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| format!("header {name} is not visible ASCII"))?;
        let value = if name == http::header::ACCEPT_ENCODING
            && !value
                .split(',')
                .any(|e| e.trim().eq_ignore_ascii_case("identity"))
        {
            format!("{value}, identity")
        } else {
            value.to_string()
        };
        fields.push((name.as_str().to_string(), value));
    }
    Ok(HttpRequest::builder()
        .with_method(method.clone())
        .with_url(target)
        .with_headers(fields)
        .with_body(body)
        .with_certificate_version(VERIFICATION_VERSION)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canister_request_keeps_the_browser_headers_and_asks_for_v2() {
        let mut headers = http::HeaderMap::new();
        headers.insert("accept-encoding", HeaderValue::from_static("gzip, br"));
        headers.insert("range", HeaderValue::from_static("bytes=5-"));
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        let r = canister_request(&Method::GET, "/s/1/ab?x=1", &headers, vec![]).unwrap();
        assert_eq!(r.url(), "/s/1/ab?x=1");
        assert_eq!(r.certificate_version(), Some(2));
        assert_eq!(
            r.headers(),
            &[
                (
                    "accept-encoding".to_string(),
                    "gzip, br, identity".to_string()
                ),
                ("range".to_string(), "bytes=5-".to_string()),
            ]
        );
        headers.insert("accept-encoding", HeaderValue::from_static("identity"));
        let r = canister_request(&Method::HEAD, "/", &headers, vec![]).unwrap();
        assert_eq!(r.headers()[0].1, "identity");
        headers.insert("x-bad", HeaderValue::from_bytes(b"\xff").unwrap());
        assert!(canister_request(&Method::GET, "/", &headers, vec![]).is_err());
    }
}
