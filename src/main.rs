//! The `signpost` binary: parse the command line, install logging, run the command, exit with its
//! code ([`signpost::Exit`]). Text logs are coloured only when stderr is a terminal (and `NO_COLOR`
//! is unset); JSON logs never are. After `serve` has drained, the process exits without waiting
//! for blocking threads (step 7 of `lifecycle`'s order).

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use signpost::Exit;
use signpost::cli::{Cli, Command, LogFormat};

/// jemalloc, not glibc's malloc: glibc keeps what a reload frees resident in holes it cannot hand
/// to the next snapshot's large tables, so a server of 100,000 servers grew from 193 to 327 MiB
/// over six reloads; jemalloc reuses and returns those pages (README "Performance").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNPOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let colours = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(colours).init(),
        LogFormat::Json => logs.with_ansi(false).json().init(),
    }
    let exit = match cli.command {
        Command::Serve(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => {
                let code = rt.block_on(signpost::serve(args));
                // Dropping the runtime would wait for every blocking thread to finish.
                rt.shutdown_background();
                code
            }
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                Exit::Failure
            }
        },
        Command::Check(args) => signpost::check(args),
        Command::Hint(args) => signpost::hint(args),
        Command::Import(args) => match args.from {
            signpost::cli::ImportFrom::Litellm(args) => signpost::import_litellm(args),
        },
        Command::Probe(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(signpost::probe(args)),
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                Exit::Failure
            }
        },
    };
    exit.into()
}
