//! Where a group-commit lane (`store::batch`) writes its batches.
//!
//! SQLite's lane borrows the one write connection from its pool for each
//! batch, as every other writer does: it must stay the only writer.
//!
//! A PostgreSQL lane keeps a connection of its own, taken out of the pool
//! once. Borrowing from the pool for each batch had two costs on the
//! visitor path: the pool hands out its idle connections in turn, so a
//! lane's few statements a millisecond were spread over every server
//! process of the pool (each one woken, scheduled and cold in turn: 15% more
//! database CPU with a pool of 20 than with 10, and a slower p50), and
//! appends waited behind reads for a connection. With its own, a lane's
//! statements always go to the same warm process, and the pool is the
//! reads'. After any failure the connection is dropped (it may be broken, or
//! left inside a transaction), and the next batch opens a fresh one.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool, Transaction};

/// A lane's connection: borrowed per batch, or its own.
pub(crate) enum Lane<DB: Database> {
    /// Borrowed from the pool for each batch.
    Shared(Pool<DB>),
    /// Its own, opened from the pool when first needed (and after a failure).
    Own {
        pool: Pool<DB>,
        conn: Option<DB::Connection>,
    },
}

/// The connection one batch writes on.
pub(crate) enum LaneConnection<'a, DB: Database> {
    Pooled(PoolConnection<DB>),
    Own(&'a mut DB::Connection),
}

impl<DB: Database> Deref for LaneConnection<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            LaneConnection::Pooled(conn) => conn,
            LaneConnection::Own(conn) => conn,
        }
    }
}

impl<DB: Database> DerefMut for LaneConnection<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            LaneConnection::Pooled(conn) => conn,
            LaneConnection::Own(conn) => conn,
        }
    }
}

impl<DB: Database> Lane<DB> {
    /// A lane with a connection of its own, taken from `pool`.
    pub(crate) fn own(pool: Pool<DB>) -> Lane<DB> {
        Lane::Own { pool, conn: None }
    }

    /// The connection for one batch.
    pub(crate) async fn connection(&mut self) -> Result<LaneConnection<'_, DB>, sqlx::Error> {
        match self {
            Lane::Shared(pool) => Ok(LaneConnection::Pooled(pool.acquire().await?)),
            Lane::Own { pool, conn } => Ok(LaneConnection::Own(opened(pool, conn).await?)),
        }
    }

    /// A transaction for one batch.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, DB>, sqlx::Error> {
        match self {
            Lane::Shared(pool) => pool.begin().await,
            Lane::Own { pool, conn } => opened(pool, conn).await?.begin().await,
        }
    }

    /// A batch failed: its connection may be broken or still inside a
    /// transaction, so the next batch opens a fresh one (a shared lane's
    /// pool decides for itself).
    pub(crate) fn failed(&mut self) {
        if let Lane::Own { conn, .. } = self {
            *conn = None;
        }
    }
}

/// The lane's own connection, opened from `pool` if it has none. Detached:
/// it no longer counts against the pool, which stays whole for the reads.
async fn opened<'a, DB: Database>(
    pool: &Pool<DB>,
    conn: &'a mut Option<DB::Connection>,
) -> Result<&'a mut DB::Connection, sqlx::Error> {
    if conn.is_none() {
        *conn = Some(pool.acquire().await?.detach());
    }
    Ok(conn.as_mut().expect("opened above"))
}
