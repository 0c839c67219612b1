//! Configuration: one typed tree, from the command line with `CHATGATE_*`
//! environment fallbacks, validated once at start.

use std::net::{IpAddr, SocketAddr};

use clap::{Args, Parser, Subcommand};

/// chatgate: a self-hosted chat gateway. Website visitors chat from an embedded
/// widget; agents answer from the console. With no options it serves on
/// 127.0.0.1:8080 with an SQLite file `chatgate.db` in the working directory.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatgate", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Administrative tasks on the configured database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Tenants: each business on this server, isolated from the others.
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its first admin and print the admin's login.
    Add {
        /// The tenant's name.
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Give an agent a new random password and print it.
    ResetPassword {
        /// The agent's login email.
        email: String,
    },
}

/// Everything the server needs to run. `Config::default()` is what a newcomer
/// gets with no options and no environment.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to serve HTTP and WebSocket on.
    #[arg(long, env = "CHATGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database: a path or `sqlite://` URL for the embedded SQLite store (created
    /// if missing), or a `postgres://` URL.
    #[arg(long, env = "CHATGATE_DATABASE_URL", default_value = "chatgate.db")]
    pub database_url: String,

    /// Redis URL (`redis://host:6379`) for pub/sub between several instances
    /// sharing one PostgreSQL database. Unset: the in-process bus (one instance).
    #[arg(long, env = "CHATGATE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and pub/sub channel (`<prefix>:...`), so
    /// several deployments can share one Redis. Use one value for every
    /// instance of a deployment.
    #[arg(long, env = "CHATGATE_REDIS_PREFIX", default_value = "chatgate")]
    pub redis_prefix: String,

    /// Secret that signs tokens (HS256). When unset, one is generated on first
    /// start and kept in the database, so tokens survive restarts.
    #[arg(long, env = "CHATGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Lifetime of a visitor token, in seconds.
    #[arg(long, env = "CHATGATE_VISITOR_TOKEN_TTL", default_value_t = 86_400)]
    pub visitor_token_ttl: u64,

    /// Lifetime of a resume token, in seconds.
    #[arg(long, env = "CHATGATE_RESUME_TOKEN_TTL", default_value_t = 30 * 86_400)]
    pub resume_token_ttl: u64,

    /// Default lifetime of an agent token, in seconds (a login may ask for less or more, up to 10 days).
    #[arg(long, env = "CHATGATE_AGENT_TOKEN_TTL", default_value_t = 3_600)]
    pub agent_token_ttl: u64,

    /// Largest accepted HTTP request body, in bytes (413 above).
    #[arg(long, env = "CHATGATE_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Longest message text, in Unicode scalar values (400 above).
    #[arg(long, env = "CHATGATE_MAX_TEXT_CHARS", default_value_t = 4096)]
    pub max_text_chars: usize,

    /// Largest STOMP frame a client may send, in bytes.
    #[arg(long, env = "CHATGATE_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Outgoing frames queued per WebSocket session; a session whose queue is
    /// full is disconnected as a slow consumer (it recovers with since-seq).
    #[arg(long, env = "CHATGATE_SESSION_QUEUE", default_value_t = 256)]
    pub session_queue: usize,

    /// Server heart-beat interval proposed to STOMP clients, in milliseconds.
    #[arg(long, env = "CHATGATE_HEARTBEAT_MS", default_value_t = 10_000)]
    pub heartbeat_ms: u64,

    /// Most messages /chatplugin.authenticate returns as history (the latest ones; since-seq replay pages through all).
    #[arg(long, env = "CHATGATE_MAX_HISTORY", default_value_t = 10_000)]
    pub max_history: u32,

    /// /chatplugin.authenticate calls allowed per client IP per minute.
    #[arg(long, env = "CHATGATE_AUTHENTICATE_PER_MINUTE", default_value_t = 60)]
    pub authenticate_per_minute: u32,

    /// Burst of /chatplugin.authenticate calls allowed per client IP.
    #[arg(long, env = "CHATGATE_AUTHENTICATE_BURST", default_value_t = 20)]
    pub authenticate_burst: u32,

    /// Messages a conversation may send per second (sustained).
    #[arg(long, env = "CHATGATE_SEND_PER_SECOND", default_value_t = 10)]
    pub send_per_second: u32,

    /// Where uploaded files live: `s3://bucket[/prefix]` (S3 or a service
    /// that speaks its API, configured by the `AWS_*` environment:
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint), or a
    /// directory. Default: `<database file>.files` beside an SQLite file; a
    /// temporary directory for an in-memory database; `chatgate-files` for
    /// PostgreSQL (give several instances one S3 bucket).
    #[arg(long, env = "CHATGATE_FILES_URL")]
    pub files_url: Option<String>,

    /// Largest file a visitor or an agent may upload, in bytes.
    #[arg(long, env = "CHATGATE_MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// How long (seconds) an upload that no message carries is kept before
    /// the cleaner removes it (its record and its bytes).
    #[arg(long, env = "CHATGATE_UNSENT_UPLOAD_TTL", default_value_t = 86_400)]
    pub unsent_upload_ttl: u64,

    /// How long a signed file URL stays valid, in seconds.
    #[arg(long, env = "CHATGATE_FILE_URL_TTL", default_value_t = 3_600)]
    pub file_url_ttl: u64,

    /// Burst of messages a conversation may send at once.
    #[arg(long, env = "CHATGATE_SEND_BURST", default_value_t = 30)]
    pub send_burst: u32,

    /// Visitor context updates (`/app/context`) a conversation may store per
    /// minute, after a burst of as many; beyond, the socket gets an ERROR
    /// `429 rate-limited` (a page sends one or two per view).
    #[arg(long, env = "CHATGATE_CONTEXT_PER_MINUTE", default_value_t = 6)]
    pub context_per_minute: u32,

    /// How long (seconds) a visitor context of a conversation that never got
    /// a message is kept before the cleaner removes it.
    #[arg(long, env = "CHATGATE_UNUSED_CONTEXT_TTL", default_value_t = 86_400)]
    pub unused_context_ttl: u64,

    /// How often (milliseconds) each instance looks for conversations idle
    /// past their channel's `auto_close_hours` and closes them (instances
    /// racing close each one once).
    #[arg(long, env = "CHATGATE_AUTO_CLOSE_EVERY_MS", default_value_t = 60_000)]
    pub auto_close_every_ms: u64,
    /// How often (milliseconds) the housekeeping erases the conversations
    /// past their tenant's retention (data rights; off unless a tenant sets
    /// `retention_days`). Hourly by default; instances racing erase each
    /// conversation once.
    #[arg(long, env = "CHATGATE_RETENTION_EVERY_MS", default_value_t = 3_600_000)]
    pub retention_every_ms: u64,
    /// Milliseconds added to the clock that business hours are read by
    /// (0: the real time). For trying a schedule, and for tests that reach
    /// an opening or closing in a second rather than waiting for the
    /// minute; nothing else in chatgate sees the shifted time.
    #[arg(
        long,
        env = "CHATGATE_HOURS_CLOCK_OFFSET_MS",
        default_value_t = 0,
        hide = true
    )]
    pub hours_clock_offset_ms: i64,
    /// How long (seconds) a channel's previous identity secret still
    /// verifies visitors' identities after a rotation.
    #[arg(long, env = "CHATGATE_IDENTITY_SECRET_GRACE", default_value_t = 86_400)]
    pub identity_secret_grace: u64,

    /// Failed logins allowed per account and client IP per minute (API and
    /// console alike); beyond, logins to that account from that IP are 429
    /// until the budget refills. Successful logins do not count.
    #[arg(long, env = "CHATGATE_LOGIN_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub login_failures_per_minute: u32,

    /// Failed logins allowed per client IP per minute, whatever the accounts
    /// tried; beyond, every login from that IP is 429 until the budget
    /// refills. Successful logins do not count, so an office behind one NAT
    /// can log in at once.
    #[arg(
        long,
        env = "CHATGATE_LOGIN_IP_FAILURES_PER_MINUTE",
        default_value_t = 100
    )]
    pub login_ip_failures_per_minute: u32,

    /// Longest search query (`search` of the agent API's message listings),
    /// in characters (400 above).
    #[arg(long, env = "CHATGATE_MAX_SEARCH_CHARS", default_value_t = 256)]
    pub max_search_chars: usize,

    /// Distinct reactions one user may put on one message (409
    /// `too-many-reactions` beyond).
    #[arg(long, env = "CHATGATE_MAX_REACTIONS_PER_USER", default_value_t = 50)]
    pub max_reactions_per_user: u32,

    /// Peers whose `X-Forwarded-For` header names the client (comma separated IPs).
    #[arg(long, env = "CHATGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Marks the console's session cookie `Secure` even when requests do not
    /// say they came over https (a TLS proxy that sends no
    /// `X-Forwarded-Proto`). Set it whenever the console is served over https.
    #[arg(long, env = "CHATGATE_CONSOLE_SECURE_COOKIE", default_value_t = false,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub console_secure_cookie: bool,

    /// Seconds after which the sessions of an instance that stopped renewing
    /// them (it crashed) no longer count as connected. Use one value for every
    /// instance of a deployment.
    #[arg(long, env = "CHATGATE_PRESENCE_TTL", default_value_t = 60)]
    pub presence_ttl: u64,

    /// Seconds a client has to send a request's headers: from the moment it
    /// connects for its first request, from the request's first byte for the
    /// later ones on a kept-alive connection. Then the connection is closed.
    #[arg(long, env = "CHATGATE_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Seconds a kept-alive HTTP connection may wait for its next request
    /// before the server closes it.
    #[arg(long, env = "CHATGATE_KEEPALIVE_IDLE_TIMEOUT", default_value_t = 60)]
    pub keepalive_idle_timeout: u64,

    /// Seconds a client has to send a request's body, from when the server
    /// starts reading it (right after the head); then 408 and the connection
    /// closes.
    #[arg(long, env = "CHATGATE_BODY_READ_TIMEOUT", default_value_t = 10)]
    pub body_read_timeout: u64,

    /// Largest request head (request line and headers), in bytes: hyper's
    /// read buffer, so it is also what one connection may buffer. Beyond it
    /// the request is answered 431 and the connection closed. At least 8192.
    #[arg(long, env = "CHATGATE_MAX_HEAD_BYTES", default_value_t = 64 * 1024)]
    pub max_head_bytes: usize,

    /// Seconds a visitor socket (`/ws.chatplugin`) has, from its upgrade, to
    /// complete its STOMP CONNECT; heart-beats and pings do not extend it.
    #[arg(long, env = "CHATGATE_STOMP_CONNECT_TIMEOUT", default_value_t = 10)]
    pub stomp_connect_timeout: u64,

    /// Live visitor sockets per conversation on one instance (each browser
    /// tab holds one); the next CONNECT gets an ERROR `too-many-sessions`.
    #[arg(
        long,
        env = "CHATGATE_MAX_SESSIONS_PER_CONVERSATION",
        default_value_t = 50
    )]
    pub max_sessions_per_conversation: usize,

    /// Open TCP connections (WebSockets included) per client IP on one
    /// instance; beyond, a new connection is closed as soon as it is
    /// accepted. Connections from `CHATGATE_TRUSTED_PROXIES` are not counted.
    #[arg(long, env = "CHATGATE_MAX_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub max_connections_per_ip: usize,

    /// Seconds between the checks a live agent event socket makes that its
    /// token has not expired and its agent is still enabled. A revoked
    /// session (logout, password change, disabled or deleted agent) closes
    /// the socket at once; this check catches expiry, and a revocation event
    /// another instance published while the bus was down.
    #[arg(long, env = "CHATGATE_AGENT_RECHECK_SECS", default_value_t = 10)]
    pub agent_recheck_secs: u64,

    /// Seconds a typist may stay silent after a start before its
    /// `stop_typing` is published for it (visitor-api.md: 10 s).
    #[arg(long, env = "CHATGATE_TYPING_SILENCE_SECS", default_value_t = 10)]
    pub typing_silence_secs: u64,

    /// Seconds to wait for sessions to close on shutdown before giving up.
    #[arg(long, env = "CHATGATE_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Milliseconds a request waits for a PostgreSQL connection before it is
    /// answered 503 `store-unavailable`. While the database is down, a new
    /// connection cannot be opened and every request would otherwise wait
    /// sqlx's 30 s before failing (clients time out first). Lift it for a
    /// load test that queues on the pool on purpose.
    #[arg(
        long,
        env = "CHATGATE_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 3_000
    )]
    pub database_acquire_timeout_ms: u64,

    /// The SMTP server that sends email (`smtp://host:port`, with
    /// `user:password@` if it needs them). Without it, no email is sent
    /// and the widget never asks for an address.
    #[arg(long, env = "CHATGATE_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// The sender of every email.
    #[arg(
        long,
        env = "CHATGATE_SMTP_FROM",
        default_value = "chatgate <chatgate@localhost>"
    )]
    pub smtp_from: String,

    /// The address visitors reach this server at, for the links in emails
    /// (default: `http://` and the listening address).
    #[arg(long, env = "CHATGATE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Milliseconds an agent's reply waits undelivered, its visitor
    /// offline, before it is emailed (5 minutes).
    #[arg(
        long,
        env = "CHATGATE_EMAIL_OFFLINE_DELAY_MS",
        default_value_t = 300_000
    )]
    pub email_offline_delay_ms: u64,

    /// At most one offline email per conversation per this many
    /// milliseconds (10 minutes).
    #[arg(long, env = "CHATGATE_EMAIL_THROTTLE_MS", default_value_t = 600_000)]
    pub email_throttle_ms: u64,

    /// At most one transcript per conversation per this many milliseconds
    /// (an hour).
    #[arg(
        long,
        env = "CHATGATE_TRANSCRIPT_INTERVAL_MS",
        default_value_t = 3_600_000
    )]
    pub transcript_interval_ms: u64,

    /// Transcripts a client IP may ask for per hour.
    #[arg(long, env = "CHATGATE_TRANSCRIPTS_PER_IP_HOUR", default_value_t = 10)]
    pub transcripts_per_ip_hour: u32,

    /// Milliseconds between the outbox worker's looks for due rows (a new
    /// row due now wakes it at once on its own instance).
    #[arg(long, env = "CHATGATE_OUTBOX_POLL_MS", default_value_t = 1_000)]
    pub outbox_poll_ms: u64,

    /// The first retry of a failed send waits this many milliseconds, each
    /// next one twice as long (with jitter), up to an hour.
    #[arg(long, env = "CHATGATE_OUTBOX_RETRY_MS", default_value_t = 5_000)]
    pub outbox_retry_ms: u64,

    /// Outbox rows one instance delivers at once (SMTP exchanges in
    /// flight); a round's rows wait their turn.
    #[arg(long, env = "CHATGATE_OUTBOX_CONCURRENCY", default_value_t = 16)]
    pub outbox_concurrency: usize,

    /// Milliseconds an instance's claim on outbox rows holds: after a
    /// crash, the rows it was sending are sent again this long after their
    /// claim (a row whose turn comes after half of it is given back).
    #[arg(long, env = "CHATGATE_OUTBOX_LEASE_MS", default_value_t = 120_000)]
    pub outbox_lease_ms: u64,

    /// Days a sent or dropped outbox row (an email, a webhook delivery and
    /// its log line) is kept before the hourly housekeeping deletes it.
    #[arg(long, env = "CHATGATE_OUTBOX_KEEP_DAYS", default_value_t = 7)]
    pub outbox_keep_days: u64,

    /// Milliseconds a webhook request (connect, send, answer) may take
    /// before it counts as failed.
    #[arg(long, env = "CHATGATE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,

    /// Milliseconds a webhook event is retried for; an endpoint whose
    /// event still fails then is paused and its admins told.
    #[arg(
        long,
        env = "CHATGATE_WEBHOOK_GIVE_UP_MS",
        default_value_t = 86_400_000
    )]
    pub webhook_give_up_ms: u64,

    /// Milliseconds an instance trusts its copy of a tenant's webhook
    /// endpoints (changes made on this instance apply at once; those made
    /// on another within this long).
    #[arg(long, env = "CHATGATE_WEBHOOK_CACHE_MS", default_value_t = 2_000)]
    pub webhook_cache_ms: u64,

    /// Lets webhooks reach private and other non-public addresses
    /// (loopback, RFC 1918 and fc00::/7, link-local with the cloud
    /// metadata address, unspecified...). Off by default: an endpoint whose
    /// URL names such an address (or `localhost`) is refused, and a
    /// delivery whose host resolves to one is not sent. For a receiver on
    /// the operator's own network, or on this machine.
    #[arg(long, env = "CHATGATE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,
}

impl Default for Config {
    fn default() -> Self {
        // An empty command line yields the documented defaults, but clap also
        // reads CHATGATE_* variables; `Default` is for code and tests, so the
        // values a stray environment could change are pinned back here.
        let mut config = Cli::parse_from(["chatgate"]).config;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        config.database_url = "chatgate.db".into();
        config.jwt_secret = None;
        config.redis_url = None;
        config.redis_prefix = "chatgate".into();
        config.smtp_url = None;
        config.public_url = None;
        config.hours_clock_offset_ms = 0;
        config.webhook_allow_private = false;
        config
    }
}

/// A configuration value that cannot work, reported as one line at start.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Where files live (see `files_url`).
    pub fn files_location(&self) -> String {
        if let Some(url) = &self.files_url {
            return url.clone();
        }
        let db = self.database_url.as_str();
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            return "chatgate-files".into();
        }
        let path = db.strip_prefix("sqlite://").unwrap_or(db);
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.contains(":memory:") || db.contains("mode=memory") {
            return std::env::temp_dir()
                .join(format!("chatgate-files-{}", uuid::Uuid::new_v4()))
                .to_string_lossy()
                .into_owned();
        }
        format!("{path}.files")
    }

    /// Checks the values that clap's types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("visitor-token-ttl", self.visitor_token_ttl),
            ("resume-token-ttl", self.resume_token_ttl),
            ("agent-token-ttl", self.agent_token_ttl),
            ("max-body-bytes", self.max_body_bytes as u64),
            ("max-upload-bytes", self.max_upload_bytes),
            ("file-url-ttl", self.file_url_ttl),
            ("unsent-upload-ttl", self.unsent_upload_ttl),
            ("max-text-chars", self.max_text_chars as u64),
            ("max-frame-bytes", self.max_frame_bytes as u64),
            ("session-queue", self.session_queue as u64),
            ("heartbeat-ms", self.heartbeat_ms),
            ("outbox-poll-ms", self.outbox_poll_ms),
            ("outbox-retry-ms", self.outbox_retry_ms),
            ("outbox-concurrency", self.outbox_concurrency as u64),
            ("webhook-timeout-ms", self.webhook_timeout_ms),
            ("outbox-lease-ms", self.outbox_lease_ms),
            ("outbox-keep-days", self.outbox_keep_days),
            ("webhook-give-up-ms", self.webhook_give_up_ms),
            (
                "transcripts-per-ip-hour",
                u64::from(self.transcripts_per_ip_hour),
            ),
            ("max-history", u64::from(self.max_history)),
            (
                "authenticate-per-minute",
                u64::from(self.authenticate_per_minute),
            ),
            ("authenticate-burst", u64::from(self.authenticate_burst)),
            ("send-per-second", u64::from(self.send_per_second)),
            ("send-burst", u64::from(self.send_burst)),
            ("context-per-minute", u64::from(self.context_per_minute)),
            (
                "login-failures-per-minute",
                u64::from(self.login_failures_per_minute),
            ),
            (
                "login-ip-failures-per-minute",
                u64::from(self.login_ip_failures_per_minute),
            ),
            ("max-search-chars", self.max_search_chars as u64),
            (
                "max-reactions-per-user",
                u64::from(self.max_reactions_per_user),
            ),
            ("presence-ttl", self.presence_ttl),
            ("header-read-timeout", self.header_read_timeout),
            ("keepalive-idle-timeout", self.keepalive_idle_timeout),
            ("body-read-timeout", self.body_read_timeout),
            ("stomp-connect-timeout", self.stomp_connect_timeout),
            ("agent-recheck-secs", self.agent_recheck_secs),
            ("typing-silence-secs", self.typing_silence_secs),
            (
                "max-sessions-per-conversation",
                self.max_sessions_per_conversation as u64,
            ),
            ("max-connections-per-ip", self.max_connections_per_ip as u64),
            (
                "database-acquire-timeout-ms",
                self.database_acquire_timeout_ms,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError(format!("--{name} must be greater than 0")));
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError(
                "--max-frame-bytes must be at least 1024".into(),
            ));
        }
        if self.max_head_bytes < 8192 {
            // hyper's smallest read buffer.
            return Err(ConfigError("--max-head-bytes must be at least 8192".into()));
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return Err(ConfigError(
                    "CHATGATE_JWT_SECRET must be at least 32 bytes long".into(),
                ));
            }
        }
        if self.redis_prefix.is_empty()
            || self
                .redis_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError(format!(
                "--redis-prefix must be non-empty, without spaces or control characters, got `{}`",
                self.redis_prefix.escape_debug()
            )));
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError(format!(
                    "--redis-url must start with redis:// or rediss://, got `{}`",
                    redact_url(url)
                )));
            }
        }
        match self.database_url.split_once("://") {
            Some(("postgres" | "postgresql" | "sqlite", rest)) if !rest.is_empty() => Ok(()),
            Some((scheme, _)) => Err(ConfigError(format!(
                "unsupported database URL scheme `{scheme}` (use a file path, sqlite:// or postgres://)"
            ))),
            None if self.database_url.trim().is_empty() => {
                Err(ConfigError("--database-url must not be empty".into()))
            }
            None => Ok(()),
        }
    }
}

/// A database or Redis URL as it may be logged: the password of its user
/// info (`scheme://user:password@host`) and any `password=` parameter
/// replaced by `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:<redacted>@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=<redacted>")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_service_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://chat:s3cret@db:5432/chat?sslmode=require"),
            "postgres://chat:<redacted>@db:5432/chat?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:s3cret@cache:6379"),
            "redis://:<redacted>@cache:6379"
        );
        assert_eq!(
            redact_url("postgres://db/chat?user=chat&password=s3cret"),
            "postgres://db/chat?user=chat&password=<redacted>"
        );
        assert_eq!(redact_url("chatgate.db"), "chatgate.db");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn zero_limits_are_rejected_with_the_option_name() {
        let config = Config {
            max_text_chars: 0,
            ..Config::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--max-text-chars"), "{err}");
    }

    #[test]
    fn an_empty_or_spaced_redis_prefix_is_rejected() {
        for prefix in ["", "two words", "tab\there"] {
            let config = Config {
                redis_prefix: prefix.into(),
                ..Config::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("--redis-prefix"), "{err}");
        }
    }

    #[test]
    fn unknown_database_scheme_is_rejected() {
        let config = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }
}
