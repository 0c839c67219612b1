//! Applications' shapes (desk-api.md, "Integrations"): as the admin API
//! lists them, and as created, with the token shown once.

use serde_json::{json, Value};

use crate::domain::application::Application;
use crate::domain::time::format_ms;

/// An application (never its token, which only its creation answers).
pub fn application(a: &Application) -> Value {
    json!({
        "uuid": a.id,
        "tenant_uuid": a.tenant_id,
        "name": a.name,
        "scopes": a.scopes.names(),
        "created_at": format_ms(a.created_at_ms),
        "created_by": a.created_by,
        "revoked_at": a.revoked_at_ms.map(format_ms),
    })
}

/// A new application, with its token: shown once.
pub fn created(a: &Application, token: &str) -> Value {
    let mut value = application(a);
    value["token"] = json!(token);
    value
}
