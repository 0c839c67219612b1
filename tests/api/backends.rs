//! Databases for tests. PostgreSQL tests share one server and one database
//! (`CHATGATE_TEST_POSTGRES_URL`); each test gets its own schema so tests
//! can run in parallel and never see each other's rows.

use sqlx::{Connection, Executor, PgConnection};

/// Where the PostgreSQL tests connect; `.ci/run` exports it.
pub const POSTGRES_URL_VAR: &str = "CHATGATE_TEST_POSTGRES_URL";

/// The base PostgreSQL URL: `CHATGATE_TEST_POSTGRES_URL`, or the standard
/// local address when unset. An unreachable database fails the test loudly:
/// a PostgreSQL test that silently passed without one would hide exactly the
/// bugs it exists to catch.
pub fn postgres_base_url() -> String {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A URL for a new, empty schema `chatgate_t_<uuid>` in the test database
/// (the prefix makes leftovers recognisable; nothing drops them).
///
/// The schema is selected with the libpq `options` parameter (`-c
/// search_path=...`), which sqlx sends in the startup packet of every pooled
/// connection, so the migrations and every query resolve unqualified table
/// names there. Only that one schema is on the path: a stray table in
/// `public` can never be picked up (built-in functions live in `pg_catalog`,
/// which PostgreSQL always searches).
pub async fn fresh_postgres_url() -> String {
    let base = postgres_base_url();
    let schema = format!("chatgate_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}={base}: {e}"));
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    // `-c search_path=<schema>`, percent-encoded for the query string.
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}
