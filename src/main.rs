//! The `chatgate` binary: parse the configuration, start, serve until
//! SIGINT/SIGTERM. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

use chatgate::config::{AdminCommand, Cli, Command, TenantCommand};
use chatgate::service::setup;
use chatgate::Application;

fn main() -> ExitCode {
    keep_large_allocations_returnable();
    run()
}

/// glibc raises its mmap threshold each time a large block is freed, so a
/// later block of that size comes from the heap and stays there: every
/// Argon2 hash (19 MiB of memory) left the process 250 MiB larger after a
/// few logins. A fixed threshold keeps large blocks mmapped, and returned
/// to the system when freed (RSS under load: 270 MiB before, 13 MiB after).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_allocations_returnable() {
    // SAFETY: mallopt only sets a malloc parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_allocations_returnable() {}

#[tokio::main]
async fn run() -> ExitCode {
    // Colours only on a terminal: a log file or a collector gets plain
    // text (a `WARN` that grep, or the bench's log check, can find).
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Admin(AdminCommand::ResetPassword { email })) => {
            reset_password(&cli.config, &email).await
        }
        Some(Command::Tenant(TenantCommand::Add { name })) => add_tenant(&cli.config, &name).await,
        None => serve(cli.config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chatgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, or `chatgate=info,warn`; either way two libraries log
/// nothing below a level that keeps tokens out: the WebSocket library
/// writes every frame received at TRACE (a STOMP CONNECT, or an agent
/// socket's token renewal, carries a token), and warp every path segment it
/// matches at TRACE.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "chatgate=info,warn".into());
    ["tungstenite=info", "tokio_tungstenite=info", "warp=debug"]
        .into_iter()
        .filter_map(|directive| directive.parse().ok())
        .fold(filter, |filter, directive| filter.add_directive(directive))
}

async fn serve(config: chatgate::Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    if let Some(first) = app.first_start() {
        println!("chatgate: first start, created:");
        println!("  admin login:    {}", first.admin_email);
        println!("  admin password: {}", first.admin_password);
        println!("  demo channel:   {}", first.channel_id);
        println!(
            "  demo page:      {base}/demo?channel_id={}",
            first.channel_id
        );
    }
    println!("chatgate listening on {base}");
    app.run_until_stopped(shutdown_signal()).await;
    Ok(())
}

async fn reset_password(config: &chatgate::Config, email: &str) -> anyhow::Result<()> {
    let reset = setup::reset_password(config, email).await?;
    if let Some(err) = reset.not_announced {
        eprintln!("warning: live sockets close at their next check ({err})");
    }
    println!("new password for {email}: {}", reset.password);
    Ok(())
}

async fn add_tenant(config: &chatgate::Config, name: &str) -> anyhow::Result<()> {
    let (email, password) = setup::add_tenant(config, name).await?;
    println!("tenant {name} created");
    println!("  admin login:    {email}");
    println!("  admin password: {password}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
