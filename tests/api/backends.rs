//! Databases for tests. PostgreSQL tests share one server and one database
//! (`CHATGATE_TEST_POSTGRES_URL`); each test gets its own schema so tests
//! can run in parallel and never see each other's rows, and the schema is
//! dropped when the test ends.

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

/// A new, empty schema `chatgate_t_<uuid>` in the test database, dropped
/// with everything in it when this guard is dropped (the prefix makes any
/// leftover of a killed test run recognisable).
///
/// [`PgSchema::url`] selects the schema with the libpq `options` parameter
/// (`-c search_path=...`), which sqlx sends in the startup packet of every
/// pooled connection, so the migrations and every query resolve unqualified
/// table names there. Only that one schema is on the path: a stray table in
/// `public` can never be picked up (built-in functions live in `pg_catalog`,
/// which PostgreSQL always searches). The URL also sets `application_name`
/// to the schema's name, so the drop can find the test's connections.
pub struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        let base = postgres_base_url();
        let name = format!("chatgate_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}={base}: {e}"));
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create schema {name}: {e}"));
        conn.close().await.ok();
        let separator = if base.contains('?') { '&' } else { '?' };
        // `-c search_path=<schema>`, percent-encoded for the query string.
        let url =
            format!("{base}{separator}options=-c%20search_path%3D{name}&application_name={name}");
        PgSchema { base, name, url }
    }

    /// The database URL of this schema, for a server or a store.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgSchema {
    /// Drops the schema on a thread of its own with a runtime of its own:
    /// this runs at the end of a test, inside the test's runtime (which it
    /// blocks, so it cannot use it) or while that runtime shuts down. A
    /// failure is reported on stderr, not raised: the test itself is over.
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_schema(&base, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        let failure = match dropped {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => "the dropping thread panicked".into(),
        };
        eprintln!(
            "warning: test schema {} was not dropped: {failure}",
            self.name
        );
    }
}

async fn drop_schema(base: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(base).await?;
    // The test's servers may still hold connections, one of them in a
    // transaction whose locks the DROP would wait for, while the task that
    // would finish it cannot run (this blocks its runtime). The test is
    // over: end them first. The timeout is the last resort against a hang.
    conn.execute("SET lock_timeout = '10s'").await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&mut conn)
    .await?;
    conn.execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE").as_str())
        .await?;
    conn.close().await
}
