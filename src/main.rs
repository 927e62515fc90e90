use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    pulseloop::memory::limit_malloc_arenas();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        pulseloop::tls::install_crypto_provider();
        pulseloop::cli::run(pulseloop::cli::Cli::parse()).await
    })
}
