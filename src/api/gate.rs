//! The tower layer every RPC passes through before its handler: it names
//! the request (request id), authenticates the caller, applies the rate
//! limit, and makes sure every response of the service, even one tonic
//! builds itself, carries the error contract and the request id.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use super::rate_limit::RateLimiter;
use super::status::{REQUEST_ID_HEADER, new_request_id, to_status};
use crate::auth::{Accounts, Caller};
use crate::error::ApiError;
use crate::operations::Operation;

/// What the gate learned of a request, for its handler.
#[derive(Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub caller: Caller,
}

#[derive(Clone)]
pub struct GateLayer {
    accounts: Arc<Accounts>,
    limiter: Arc<RateLimiter>,
}

impl GateLayer {
    pub fn new(accounts: Arc<Accounts>, limiter: Arc<RateLimiter>) -> Self {
        GateLayer { accounts, limiter }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            accounts: self.accounts.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    accounts: Arc<Accounts>,
    limiter: Arc<RateLimiter>,
}

/// The path prefix of this service's RPCs; other services (reflection,
/// health) pass the gate untouched.
const SERVICE_PATH: &str = "/recordindex.v1.RecordIndex/";

impl<S> Gate<S> {
    /// Authenticates and rate-limits one request of `operation`; nothing
    /// else of the request is looked at before both pass.
    fn admit<B>(&self, operation: Operation, request: &Request<B>) -> Result<Caller, ApiError> {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        let caller = self.accounts.authenticate(authorization)?;
        self.limiter.admit(operation, &caller.account.id)?;
        Ok(caller)
    }
}

/// Whether a response is tonic's own answer to a body it could not decode:
/// a client error, which the contract calls InvalidParams.
fn is_decode_failure<B>(response: &Response<B>) -> bool {
    let status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok());
    let message = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    status == Some("13")
        && (message.starts_with("failed%20to%20decode") || message.starts_with("failed to decode"))
}

fn error_response<B: Default>(err: &ApiError, request_id: &str) -> Response<B> {
    tracing::info!(request_id, code = err.code(), error = %err, "request refused");
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
        let request_id = new_request_id();
        if let Some(operation) = Operation::from_path(path) {
            match self.admit(operation, &request) {
                Ok(caller) => {
                    request.extensions_mut().insert(RequestContext {
                        request_id: request_id.clone(),
                        caller,
                    });
                }
                Err(err) => {
                    let response = error_response(&err, &request_id);
                    return Box::pin(async move { Ok(response) });
                }
            }
        }
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if is_decode_failure(&response) {
                let err = ApiError::InvalidParams(
                    "the request is not a valid message of this RPC".into(),
                );
                return Ok(error_response(&err, &request_id));
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(response)
        })
    }
}
