//! The tower layer every RPC passes through before its handler: it names
//! the request (request id), authenticates the caller, applies the rate
//! limit, and makes sure every response of the service, even one tonic
//! builds itself, carries the error contract and the request id.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Span;

use super::deadline;
use super::status::{REQUEST_ID_HEADER, new_request_id, to_status};
use crate::admission::Admission;
use crate::auth::{Accounts, Caller};
use crate::error::{ApiError, MAX_MESSAGE_BYTES, shorten};
use crate::operations::Operation;
use crate::telemetry;

/// What the gate learned of a request, for its handler.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub caller: Caller,
}

#[derive(Clone)]
pub struct GateLayer {
    accounts: Arc<Accounts>,
    admission: Arc<dyn Admission>,
    in_flight: Arc<AtomicUsize>,
}

impl GateLayer {
    pub fn new(accounts: Arc<Accounts>, admission: Arc<dyn Admission>) -> Self {
        GateLayer {
            accounts,
            admission,
            in_flight: Default::default(),
        }
    }

    /// Requests of this service being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            shared: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    shared: GateLayer,
}

/// The path prefix of this service's RPCs; other services (reflection,
/// health) pass the gate untouched.
const SERVICE_PATH: &str = "/recordindex.v1.RecordIndex/";

/// One request from arrival to answer: it logs the request's one line and
/// counts it, also when the request is abandoned (client gone, deadline
/// passed in tonic) and its future dropped without an answer.
struct Outcome {
    rpc: &'static str,
    span: Span,
    started: Instant,
    in_flight: Arc<AtomicUsize>,
    finished: bool,
}

impl Outcome {
    fn start(rpc: &'static str, span: Span, in_flight: Arc<AtomicUsize>) -> Outcome {
        in_flight.fetch_add(1, Ordering::Relaxed);
        telemetry::request_started();
        Outcome {
            rpc,
            span,
            started: Instant::now(),
            in_flight,
            finished: false,
        }
    }

    fn finish(mut self, code: &str, error: Option<&str>) {
        self.finished = true;
        self.record(code, error);
    }

    fn record(&self, code: &str, error: Option<&str>) {
        let elapsed = self.started.elapsed();
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        telemetry::request_finished(self.rpc, code, elapsed);
        let latency_ms = elapsed.as_micros() as f64 / 1000.0;
        // On the span too, so whatever the request logged carries them.
        self.span.record("code", code);
        self.span.record("latency_ms", latency_ms);
        match error {
            None => tracing::info!(parent: &self.span, "request served"),
            Some(error) => {
                // Also a status tonic built, whose message the service did
                // not word: the line stays short whatever it says.
                let error = shorten(error, MAX_MESSAGE_BYTES);
                tracing::info!(parent: &self.span, error = &*error, "request failed")
            }
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.finished {
            self.record(
                "Cancelled",
                Some("abandoned before an answer: the client went away or its deadline passed"),
            );
        }
    }
}

impl<S> Gate<S> {
    /// Authenticates one request of `operation`; nothing else of the
    /// request is looked at before it passes and its rate is admitted.
    fn authenticate<B>(&self, request: &Request<B>, span: &Span) -> Result<Caller, ApiError> {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        let caller = self.shared.accounts.authenticate(authorization)?;
        span.record("account", caller.account.id.as_str());
        Ok(caller)
    }
}

/// The status a response carries in its headers (tonic puts an error there;
/// a success has its status in the trailers): gRPC code number and the
/// decoded message.
fn header_status<B>(response: &Response<B>) -> Option<(i32, String)> {
    let code = response.headers().get("grpc-status")?.to_str().ok()?;
    let code: i32 = code.parse().ok()?;
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let message = percent_encoding::percent_decode_str(message)
        .decode_utf8_lossy()
        .into_owned();
    Some((code, message))
}

/// The error of a response tonic built itself for a body it would not
/// decode, which is the client's fault: InvalidParams in the contract.
fn client_body_error(code: i32, message: &str) -> Option<ApiError> {
    let code = tonic::Code::from_i32(code);
    // tonic's own words for a request body it could not read.
    const UNREADABLE: [&str; 4] = [
        "failed to decode",
        "Unexpected EOF decoding stream",
        "Missing request message",
        "protocol error: received message with invalid compression flag",
    ];
    if code == tonic::Code::Internal && UNREADABLE.iter().any(|words| message.starts_with(words)) {
        return Some(ApiError::InvalidParams(
            "the request is not a valid message of this RPC".into(),
        ));
    }
    if code == tonic::Code::OutOfRange && message.contains("decoded message length too large") {
        // tonic's message names the size and the limit.
        let sizes = message.split_once(": ").map_or("", |(_, sizes)| sizes);
        return Some(ApiError::InvalidParams(format!(
            "the request message is too large ({sizes}; max_message_bytes)"
        )));
    }
    None
}

/// The code (and message) a handler's status ends the request's log line
/// with; a status tonic made of a body it could not read is the API's
/// error instead.
fn status_outcome<B>(response: &Response<B>) -> Result<(String, Option<String>), ApiError> {
    let Some((code, message)) = header_status(response) else {
        return Ok(("OK".into(), None));
    };
    if let Some(err) = client_body_error(code, &message) {
        return Err(err);
    }
    if code == 0 {
        return Ok(("OK".into(), None));
    }
    // The service's errors start with their code.
    let api_code = message
        .split_once(": ")
        .map(|(code, _)| code.to_string())
        .filter(|code| !code.is_empty() && !code.contains(' '))
        .unwrap_or_else(|| format!("{:?}", tonic::Code::from_i32(code)));
    Ok((api_code, Some(message)))
}

fn error_response<B: Default>(err: &ApiError, request_id: &str, outcome: Outcome) -> Response<B> {
    outcome.finish(err.code(), Some(&err.message()));
    to_status(err, request_id).into_http()
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Gate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if !path.starts_with(SERVICE_PATH) {
            return Box::pin(inner.call(request));
        }
        let operation = Operation::from_path(path);
        let rpc = operation.map_or("unknown", Operation::name);
        let request_id = new_request_id();
        let span = tracing::info_span!(
            "request",
            rpc,
            request_id = request_id.as_str(),
            account = tracing::field::Empty,
            code = tracing::field::Empty,
            latency_ms = tracing::field::Empty
        );
        let outcome = Outcome::start(rpc, span.clone(), self.shared.in_flight.clone());
        let mut rate_limited = None;
        if let Some(operation) = operation {
            match self.authenticate(&request, &span) {
                Ok(caller) => {
                    rate_limited = Some((caller.account.id.clone(), operation));
                    request.extensions_mut().insert(RequestContext {
                        request_id: request_id.clone(),
                        caller,
                    });
                }
                Err(err) => {
                    let response = error_response(&err, &request_id, outcome);
                    return Box::pin(async move { Ok(response) });
                }
            }
        }
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(deadline::parse_grpc_timeout);
        let admission = self.shared.admission.clone();
        let handled = async move {
            if let Some((account, operation)) = rate_limited
                && let Err(err) = admission.admit_or_throttle(&account, operation).await
            {
                return Ok(error_response(&err, &request_id, outcome));
            }
            let call = inner.call(request);
            let mut response = match timeout {
                None => call.await?,
                Some(timeout) => {
                    match tokio::time::timeout(deadline::answer_within(timeout), call).await {
                        Ok(response) => response?,
                        Err(_) => {
                            // Dropping the handler cancels its object-storage
                            // calls; the client gets an error it can act on.
                            let err = ApiError::unavailable(format!(
                                "not finished within the request's deadline of {timeout:?}; object storage or the catalog answered too slowly"
                            ));
                            return Ok(error_response(&err, &request_id, outcome));
                        }
                    }
                }
            };
            match status_outcome(&response) {
                Ok((code, message)) => outcome.finish(&code, message.as_deref()),
                Err(err) => return Ok(error_response(&err, &request_id, outcome)),
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(response)
        };
        Box::pin(tracing::Instrument::instrument(handled, span))
    }
}
