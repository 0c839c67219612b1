//! Wiring: build the state from a `Config`, bind, serve until a shutdown
//! signal, then drain. `main` and the tests share this path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Tokens;
use crate::bus::{Bus, BusSink, LocalBus, RedisBus};
use crate::caps::{ConnectionCap, SessionCap};
use crate::config::Config;
use crate::http::server::{Bounds, Timeouts};
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::service::setup::{self, Prepared};
use crate::service::{Parts, Services};
use crate::state::{App, AppState};
use crate::store;

pub use crate::service::setup::{FirstStart, ADMIN_EMAIL};

pub struct Application {
    state: App,
    listener: TcpListener,
    first_start: Option<FirstStart>,
}

impl Application {
    /// Validates the config, opens and migrates the store, runs the
    /// first-start setup (`service::setup`), and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.validate()?;
        let acquire_timeout = Duration::from_millis(config.database_acquire_timeout_ms);
        let store = store::open_with(&config.database_url, acquire_timeout)
            .await
            .with_context(|| {
                format!(
                    "cannot open database {}",
                    crate::config::redact_url(&config.database_url)
                )
            })?;
        let Prepared {
            first_start,
            jwt_secret,
            server,
        } = setup::prepare(&config, store.as_ref()).await?;
        let metrics = Arc::new(Metrics::new());
        let signer = crate::files::Signer::new(jwt_secret.as_bytes(), config.file_url_ttl as i64);
        let hub = Hub::new(
            config.session_queue,
            metrics.clone(),
            server,
            signer.clone(),
        );
        let sink: Arc<dyn BusSink> = hub.clone();
        let bus: Arc<dyn Bus> = match &config.redis_url {
            Some(url) => Arc::new(
                RedisBus::connect(url, &config.redis_prefix, Arc::downgrade(&sink))
                    .await
                    .with_context(|| {
                        format!(
                            "cannot connect to Redis at {}",
                            crate::config::redact_url(url)
                        )
                    })?,
            ),
            None => Arc::new(LocalBus::new(Arc::downgrade(&sink))),
        };
        hub.attach_bus(bus);
        let presence = match &config.redis_url {
            Some(url) => Presence::redis(
                url,
                &config.redis_prefix,
                Duration::from_secs(config.presence_ttl),
            )
            .await
            .with_context(|| {
                format!(
                    "cannot connect to Redis at {}",
                    crate::config::redact_url(url)
                )
            })?,
            None => Presence::local(),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let tokens = Arc::new(Tokens::new(jwt_secret.as_bytes()));
        let files_location = config.files_location();
        let file_store = crate::files::Files::store_at(&files_location)
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!(
                    "cannot open the file store at {}",
                    crate::config::redact_url(&files_location)
                )
            })?;
        let files = Arc::new(crate::files::Files::new(
            file_store,
            signer,
            config.max_upload_bytes,
            crate::files::Files::buffer_for(&files_location),
        ));
        let limits = Arc::new(Limits::new(&config, &metrics));
        let mailer: Option<Arc<dyn crate::outbox::mail::Mailer>> = match &config.smtp_url {
            Some(url) => Some(Arc::new(
                crate::outbox::mail::SmtpMailer::new(url, &config.smtp_from)
                    .map_err(anyhow::Error::msg)
                    .context("invalid email settings")?,
            )),
            None => None,
        };
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            format!(
                "http://{}",
                listener.local_addr().map_or(config.listen, |a| a)
            )
        });
        let (router, router_inbox) = crate::service::routing::RouterHandle::new();
        let services = Services::new(
            Parts {
                config: config.clone(),
                store: store.clone(),
                hub: hub.clone(),
                server,
                presence: presence.clone(),
                metrics: metrics.clone(),
                limits: limits.clone(),
                tokens: tokens.clone(),
                router,
                files,
                mailer,
                link_secret: jwt_secret.as_bytes().to_vec(),
                public_url,
            },
            router_inbox,
        );
        let config_sessions_cap = config.max_sessions_per_conversation;
        let state = Arc::new(AppState {
            tokens,
            limits,
            services,
            metrics,
            presence,
            config,
            hub,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            visitor_sockets: SessionCap::new(config_sessions_cap),
        });
        Ok(Application {
            state,
            listener,
            first_start,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn first_start(&self) -> Option<&FirstStart> {
        self.first_start.as_ref()
    }

    /// Who is connected, as this instance sees the deployment.
    pub fn presence(&self) -> Arc<Presence> {
        self.state.presence.clone()
    }

    /// Serves until `signal` resolves; then stops accepting, closes every
    /// WebSocket with 1001, and waits (up to the configured grace) for
    /// in-flight requests and session writes to finish.
    pub async fn run_until_stopped(self, signal: impl Future<Output = ()> + Send + 'static) {
        let state = self.state;
        let routes = crate::http::routes(state.clone());
        let janitor = tokio::spawn(forget_idle_limits(state.clone()));
        let auto_close = tokio::spawn(auto_close(state.clone()));
        let stop = state.shutdown.clone();
        let timeouts = Timeouts {
            header_read: Duration::from_secs(state.config.header_read_timeout),
            keepalive_idle: Duration::from_secs(state.config.keepalive_idle_timeout),
        };
        let bounds = Bounds {
            timeouts,
            max_head_bytes: state.config.max_head_bytes,
            per_ip: ConnectionCap::new(
                state.config.max_connections_per_ip,
                state.config.trusted_proxies.clone(),
            ),
        };
        let server = crate::http::server::serve(self.listener, routes, bounds, async move {
            signal.await;
            stop.cancel();
        });
        let grace = Duration::from_secs(state.config.shutdown_grace);
        let mut server = std::pin::pin!(server);
        tokio::select! {
            _ = &mut server => {}
            _ = async { state.shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
            }
        }
        state.shutdown.cancel();
        state.sessions.close();
        if tokio::time::timeout(grace, state.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("sessions did not close within the grace period");
        }
        // Tell the other instances at once that our sessions are gone,
        // rather than letting the claims lapse.
        let _ = tokio::time::timeout(grace, state.presence.flush()).await;
        janitor.abort();
        auto_close.abort();
    }
}

/// Housekeeping every minute: idle rate-limit keys are forgotten, and
/// (hourly) the contexts of conversations that never began, the uploads
/// never sent and the outbox rows sent or dropped over
/// `outbox_keep_days` ago are deleted; every `retention_every_ms` (hourly by default)
/// the conversations past their tenant's retention are erased.
async fn forget_idle_limits(state: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut retention = tokio::time::interval(Duration::from_millis(
        state.config.retention_every_ms.max(10),
    ));
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut minutes = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                state.limits.forget_idle();
                if minutes.is_multiple_of(60) {
                    state.services.visitor.clean_unused_contexts().await;
                    let uploads = state.services.attachments.clean_unsent().await;
                    if uploads > 0 {
                        tracing::info!(deleted = uploads, "unsent uploads cleaned");
                    }
                    let keep_ms = i64::try_from(state.config.outbox_keep_days)
                        .unwrap_or(i64::MAX / 86_400_000)
                        .saturating_mul(86_400_000);
                    let before = crate::domain::time::now_ms().saturating_sub(keep_ms);
                    let rows = state.services.outbox.prune(before).await;
                    if rows > 0 {
                        tracing::info!(deleted = rows, "old outbox rows deleted");
                    }
                }
                minutes += 1;
            }
            _ = retention.tick() => {
                let now = crate::domain::time::now_ms();
                match state.services.rights.enforce_retention(now).await {
                    Ok(0) => {}
                    Ok(erased) => tracing::info!(erased, "conversations past retention erased"),
                    Err(err) => tracing::warn!(%err, "cannot erase conversations past retention"),
                }
            }
        }
    }
}

/// Closes conversations idle past their channel's `auto_close_hours`, every
/// `auto_close_every_ms` (each instance; a room is closed once however many
/// look at it).
async fn auto_close(state: App) {
    let every = Duration::from_millis(state.config.auto_close_every_ms.max(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state
            .services
            .rooms
            .auto_close(crate::domain::time::now_ms())
            .await
        {
            Ok(0) => {}
            Ok(closed) => tracing::info!(closed, "idle conversations closed"),
            Err(err) => tracing::warn!(%err, "cannot close idle conversations"),
        }
    }
}
