//! `GET /v1/openapi.json`: the sidecar's API as an OpenAPI document, built
//! from the verb table and the wire types once (`crate::openapi`), served
//! from those bytes.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::NoQuery;

pub async fn openapi(NoQuery: NoQuery) -> Response {
    match crate::openapi::json() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response(),
        Err(e) => ApiError::Internal(format!("the OpenAPI document: {e}")).into_response(),
    }
}
