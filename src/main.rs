use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    pulseloop::tls::install_crypto_provider();
    pulseloop::cli::run(pulseloop::cli::Cli::parse()).await
}
