//! The tower layer that observes every gRPC call: one tracing span per call (continuing
//! the caller's W3C `traceparent`), and the call count and latency by method and gRPC
//! status code.
//!
//! The status code arrives in one of two places: in the response headers of a
//! trailers-only response (how tonic answers an error), or in the trailers after the
//! body. The call is recorded when the code is known; a call dropped before it has one
//! was cut short by the server's deadline (`DEADLINE_EXCEEDED`) or by the client
//! (`CANCELLED`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};
use opentelemetry::propagation::Extractor;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Span;
use tracing::field::Empty;
use tracing::instrument::{Instrument, Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics::record_rpc;

/// The methods the server serves, the only values of the `method` label (anything
/// else counts as `other`, so unknown paths cannot grow the label set).
const METHODS: &[&str] = &[
    "SyncState",
    "Place",
    "PlaceBatch",
    "PendingPods",
    "Check",
    "Watch",
    "ServerReflectionInfo",
];

/// Observes every call of the service it wraps. Calls last at most `request_timeout`
/// (the server's limit; a shorter `grpc-timeout` from the caller wins).
#[derive(Debug, Clone, Copy)]
pub struct RpcLayer {
    request_timeout: Duration,
}

impl RpcLayer {
    pub fn new(request_timeout: Duration) -> RpcLayer {
        RpcLayer { request_timeout }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            request_timeout: self.request_timeout,
        }
    }
}

/// See [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    request_timeout: Duration,
}

/// The canonical name of a gRPC status code, as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The `grpc-status` of a header map (headers of a trailers-only response, or trailers).
fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The call's span: named `package.Service/Method` for OpenTelemetry, a child of the
/// caller's trace when the request carries `traceparent`. Handlers record `cluster`,
/// `revision`, `nodes` (evaluated) and `outcome` on it.
fn call_span<B>(req: &http::Request<B>) -> Span {
    let path = req.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or(("", path));
    let span = tracing::info_span!(
        "rpc",
        otel.name = path,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        cluster = Empty,
        revision = Empty,
        nodes = Empty,
        outcome = Empty,
    );
    if req.headers().contains_key("traceparent") {
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        // Without the OpenTelemetry layer (no exporter configured) there is no
        // trace to continue.
        let _ = span.set_parent(parent);
    }
    span
}

/// The call's deadline: the caller's `grpc-timeout`, capped by the server's limit.
fn deadline<B>(req: &http::Request<B>, limit: Duration) -> Duration {
    req.headers()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::service::grpc_timeout)
        .map_or(limit, |d| d.min(limit))
}

/// One call in flight; records itself exactly once, when its code is known or when it
/// is dropped without one.
struct Call {
    method: &'static str,
    started: Instant,
    deadline: Duration,
    span: Span,
    recorded: bool,
}

impl Call {
    fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        let elapsed = self.started.elapsed();
        let name = code_name(code);
        record_rpc(self.method, name, elapsed);
        self.span.record("rpc.grpc.status_code", code as i32);
        if code != Code::Ok {
            self.span.record("otel.status_code", "ERROR");
        }
        let _entered = self.span.enter();
        if matches!(code, Code::Unknown | Code::Internal | Code::DataLoss) {
            tracing::warn!(code = name, ?elapsed, "call failed");
        } else {
            tracing::debug!(code = name, ?elapsed, "call finished");
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.recorded {
            let code = if self.started.elapsed() >= self.deadline {
                Code::DeadlineExceeded
            } else {
                Code::Cancelled
            };
            self.record(code);
        }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: Into<tower::BoxError>,
{
    type Response = http::Response<RpcBody<ResBody>>;
    type Error = tower::BoxError;
    type Future = RpcFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let path = req.uri().path();
        let method = path.rsplit('/').next().unwrap_or_default();
        let method = METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or("other");
        let span = call_span(&req);
        let call = Call {
            method,
            started: Instant::now(),
            deadline: deadline(&req, self.request_timeout),
            span: span.clone(),
            recorded: false,
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        RpcFuture {
            inner: inner.instrument(span),
            call: Some(call),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RpcService`].
    pub struct RpcFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        call: Option<Call>,
    }
}

impl<F, ResBody, E> Future for RpcFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    E: Into<tower::BoxError>,
{
    type Output = Result<http::Response<RpcBody<ResBody>>, tower::BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let call = this.call.take().expect("polled after completion");
        Poll::Ready(match result {
            Ok(response) => {
                let call = match grpc_status(response.headers()) {
                    Some(code) => {
                        call.finish(code);
                        None
                    }
                    None => Some(call),
                };
                Ok(response.map(|inner| RpcBody { inner, call }))
            }
            Err(e) => {
                let e: tower::BoxError = e.into();
                let code = e
                    .downcast_ref::<tonic::Status>()
                    .map_or(Code::Unknown, tonic::Status::code);
                call.finish(code);
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`RpcService`]: passes every frame through and records the
    /// call when the trailers carry its status.
    pub struct RpcBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: Body> Body for RpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(code) = f.trailers_ref().and_then(grpc_status)
                    && let Some(call) = this.call.take()
                {
                    call.finish(code);
                }
            }
            // A body that fails or ends with no status never told the client one.
            Some(Err(_)) | None => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Unknown);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt;

    type Frames = Vec<Result<Frame<Bytes>, Infallible>>;
    type TestBody =
        StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

    fn trailers(code: Code) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert("grpc-status", (code as i32).to_string().parse().unwrap());
        map
    }

    fn response(headers: http::HeaderMap, frames: Frames) -> http::Response<TestBody> {
        let mut response = http::Response::new(StreamBody::new(tokio_stream::iter(frames)));
        *response.headers_mut() = headers;
        response
    }

    /// Sends one request through the layer around `respond` (`None`: never answers, so
    /// the call is dropped after `wait`) and renders what the layer recorded.
    fn observe(
        request: http::Request<()>,
        respond: impl Fn() -> Option<http::Response<TestBody>> + Clone + Send + 'static,
        wait: Duration,
    ) -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let service = RpcLayer::new(Duration::from_secs(30)).layer(tower::service_fn(
            move |_req: http::Request<()>| {
                let respond = respond.clone();
                async move {
                    match respond() {
                        Some(r) => Ok::<_, Infallible>(r),
                        None => std::future::pending().await,
                    }
                }
            },
        ));
        ::metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(response) = tokio::time::timeout(wait, service.oneshot(request)).await {
                    response.unwrap().into_body().collect().await.unwrap();
                }
            });
        });
        handle.render()
    }

    fn call(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap()
    }

    const PLACE: &str = "/preemption_oracle.v1.PreemptionOracle/Place";
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn status_in_trailers_is_counted_with_its_latency() {
        let out = observe(
            call(PLACE),
            || {
                Some(response(
                    http::HeaderMap::new(),
                    vec![
                        Ok(Frame::data(Bytes::from_static(b"answer"))),
                        Ok(Frame::trailers(trailers(Code::Ok))),
                    ],
                ))
            },
            SECOND,
        );
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="OK"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"oracle_rpc_duration_seconds_count{method="Place",code="OK"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn status_in_the_headers_of_a_trailers_only_response_is_counted() {
        let out = observe(
            call(PLACE),
            || Some(response(trailers(Code::NotFound), Vec::new())),
            SECOND,
        );
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="NOT_FOUND"} 1"#),
            "{out}"
        );
        assert!(!out.contains(r#"code="UNKNOWN""#), "counted twice\n{out}");
    }

    #[test]
    fn a_body_that_ends_without_a_status_is_unknown() {
        let out = observe(
            call(PLACE),
            || Some(response(http::HeaderMap::new(), Vec::new())),
            SECOND,
        );
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="UNKNOWN"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let out = observe(
            call("/some.Service/Anything"),
            || Some(response(trailers(Code::Unimplemented), Vec::new())),
            SECOND,
        );
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="other",code="UNIMPLEMENTED"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn a_call_dropped_before_its_deadline_was_cancelled() {
        let out = observe(call(PLACE), || None, Duration::from_millis(20));
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="CANCELLED"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn a_call_dropped_at_the_callers_deadline_exceeded_it() {
        let request = http::Request::builder()
            .uri(PLACE)
            .header("grpc-timeout", "10m")
            .body(())
            .unwrap();
        let out = observe(request, || None, Duration::from_millis(30));
        assert!(
            out.contains(r#"oracle_rpc_requests_total{method="Place",code="DEADLINE_EXCEEDED"} 1"#),
            "{out}"
        );
    }
}
