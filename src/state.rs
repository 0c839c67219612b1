//! The state both doors share: `AppState`, everything a request handler
//! (`http`) or a socket session (`ws`) needs, built once by the wiring
//! (`app`). The doors import it from here, so neither imports the wiring
//! nor each other.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::caps::SessionCap;
use crate::config::Config;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::service::Services;

/// Everything a request handler or session needs.
pub struct AppState {
    pub config: Config,
    pub hub: Arc<Hub>,
    pub tokens: Arc<Tokens>,
    pub limits: Arc<Limits>,
    /// Where the rules live: every handler calls these.
    pub services: Services,
    pub metrics: Arc<Metrics>,
    pub presence: Arc<Presence>,
    /// Cancelled when the server stops: sessions close with 1001.
    pub shutdown: CancellationToken,
    /// WebSocket sessions, awaited on shutdown.
    pub sessions: TaskTracker,
    /// Live visitor sockets per conversation on this instance.
    pub visitor_sockets: Arc<SessionCap>,
}

pub type App = Arc<AppState>;
