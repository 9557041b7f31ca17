//! The `signpost` binary: parse the command line, install logging, run the command, exit with its
//! code (0 ok, 1 failure, 2 usage, 78 invalid config).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use signpost::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match cli.command {
        Command::Serve(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(signpost::app::serve(args)),
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => signpost::app::check(args),
        Command::Hint(args) => signpost::app::hint(args),
        Command::Import(args) => match args.from {
            signpost::cli::ImportFrom::Litellm(args) => signpost::import::litellm(args),
        },
        Command::Probe(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(signpost::probe::run(args)),
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
