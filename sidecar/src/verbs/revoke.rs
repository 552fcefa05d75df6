//! `POST /v1/revoke`: the console revokes this host. The intent record is on
//! disk first; then every secret the sidecar accepts is forgotten for good
//! (its digest joins the revocation list beside the audit log, so a restart
//! with the same secret files does not bring it back); then the outcome
//! record, then the answer. Every later call gets 401 until the host is
//! enrolled again, with a new secret.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use shared::{RevokeReport, Verb};

use crate::audit::{Caller, Draft};
use crate::error::ApiError;
use crate::state::App;

pub async fn revoke(State(app): State<App>, caller: Caller) -> Response {
    super::detached(async move {
        let mut draft = Draft::new(&caller, Verb::Revoke.audit_name());
        let result = async {
            super::intent(&app, &draft).await?;
            let keys_forgotten =
                app.secrets.revoke_all().map_err(|e| ApiError::Internal(format!("cannot revoke: {e}")))?;
            draft.param("keys_forgotten", keys_forgotten);
            tracing::warn!(actor = ?caller.actor, keys_forgotten, "this host was revoked by its console: every call is refused from now on");
            Ok(Json(RevokeReport { keys_forgotten }))
        }
        .await;
        super::finish(&app, draft, result).await
    })
    .await
}
