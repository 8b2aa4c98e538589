//! `rtx-engine`: the reference trading backend. With no subcommand it serves.

mod api;
mod config;
mod market;
mod server;
mod sim;
mod store;
mod trading;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rtx-engine: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::CheckConfig) => {
            use std::io::Write;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "configuration OK: {config:#?}");
            ExitCode::SUCCESS
        }
        None => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rtx-engine: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rtx-engine: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
