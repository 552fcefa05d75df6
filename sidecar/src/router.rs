//! The route table is the verb table: one route per row of
//! `shared::api::VERBS`, each served by its handler in `verbs/`. Nothing else
//! is routed; unknown routes and methods get JSON 404/405 (audited like any
//! refusal).

use axum::extract::Request;
use axum::middleware;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::ApiError;
use crate::middleware::{
    audit_denials, authenticate, count_requests, rate_limit, refuse_unexpected_body, request_id, RequestId,
};
use crate::state::App;
use crate::verbs;

pub fn router(app: App) -> Router {
    let routes = shared::VERBS.iter().fold(Router::new(), |r, spec| r.route(spec.path, verbs::handler(spec)));
    // Layers run outermost last-added: request id → trace → metrics → auth → denial audit → rate limit → body check.
    routes
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(refuse_unexpected_body))
        .layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(app.clone(), audit_denials))
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.extensions().get::<RequestId>().map(|r| r.0.as_str()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(middleware::from_fn(request_id))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use shared::api::{Method, VERBS};

    #[test]
    fn every_row_has_a_route_with_its_method() {
        // `verbs::handler` is an exhaustive match; here the method filter is checked.
        for spec in VERBS {
            let filter = super::verbs::method_filter(spec.method);
            let expected = match spec.method {
                Method::Get => axum::routing::MethodFilter::GET,
                Method::Post => axum::routing::MethodFilter::POST,
            };
            assert_eq!(format!("{filter:?}"), format!("{expected:?}"), "{}", spec.name);
        }
    }
}
