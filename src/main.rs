use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest and sqlx both use rustls; pick the ring provider once, before any TLS client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    pulseloop::cli::run(pulseloop::cli::Cli::parse()).await
}
