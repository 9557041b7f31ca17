//! The HTTP pieces every listener shares: the header values they send and the JSON answers for
//! errors and admin documents (always with `Access-Control-Allow-Origin: *`). A leaf: it imports
//! nothing of the crate.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The methods a discovery document answers.
pub const ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");
pub const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");
const NOT_FOUND_BODY: &str =
    r#"{"error":"not_found","error_description":"no discovery document at this URL"}"#;
const METHOD_NOT_ALLOWED_BODY: &str = r#"{"error":"method_not_allowed","error_description":"discovery documents answer GET, HEAD and OPTIONS only"}"#;

/// A JSON answer with CORS, for errors and admin documents.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    h.insert(header::CONTENT_TYPE, JSON);
    response
}

pub fn not_found() -> Response<Full<Bytes>> {
    json(StatusCode::NOT_FOUND, NOT_FOUND_BODY)
}

pub fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = json(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED_BODY);
    response.headers_mut().insert(header::ALLOW, ALLOW);
    response
}
