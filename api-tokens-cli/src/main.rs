//! `api-tokens`: the operator's command line for API tokens, over the library's own stores.
//!
//! Run `api-tokens --help` for the commands, the environment and the exit codes; this crate's
//! README walks through an incident, the library's `guide::migration` through a migration.

mod audit;
mod cli;
mod cmd;
mod error;
mod output;
mod secrets;
mod select;
mod setup;
mod span;

use std::process::ExitCode;

use api_tokens::Status;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, ImportCommand, KeysCommand};
use crate::error::CliError;

fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's own codes, documented).
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.code());
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            if e.exit() == error::Exit::Usage {
                eprintln!("see 'api-tokens help' for the commands and their flags");
            }
            ExitCode::from(e.exit() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Completions { shell } = cli.command {
        let mut command = Cli::command();
        clap_complete::generate(shell, &mut command, "api-tokens", &mut std::io::stdout());
        return Ok(());
    }
    let ctx = setup::context(&cli.global)?;
    let result = match &cli.command {
        // The key commands show what they found even on a mismatch, then fail like the rest.
        Command::Keys(KeysCommand::Check(a)) => cmd::keys::run(&ctx, a, false),
        Command::Keys(KeysCommand::Status(a)) => cmd::keys::run(&ctx, a, true),
        command => setup::check_keys(&ctx.tokens).and_then(|_| dispatch(&ctx, command)),
    };
    // A change whose audit line was lost is reported, whatever else happened.
    if let Some(e) = ctx.audit.take_failure() {
        if let Err(first) = result {
            eprintln!("error[{}]: {first}", first.code());
        }
        return Err(CliError::Audit(e));
    }
    result
}

fn dispatch(ctx: &setup::Ctx, command: &Command) -> Result<(), CliError> {
    match command {
        Command::List(a) => cmd::manage::list(ctx, a),
        Command::Show(a) => cmd::manage::show(ctx, a),
        Command::Create(a) => cmd::manage::create(ctx, a),
        Command::Update(a) => cmd::manage::update(ctx, a),
        Command::Enable(a) => cmd::manage::set_status(ctx, a, Status::Enabled),
        Command::Disable(a) => cmd::manage::set_status(ctx, a, Status::Disabled),
        Command::Delete(a) => cmd::manage::delete(ctx, a),
        Command::Regenerate(a) => cmd::manage::regenerate(ctx, a),
        Command::Revoke(a) => cmd::revoke::revoke(ctx, a),
        Command::Import(ImportCommand::Zabbix(a)) => cmd::import::zabbix(ctx, a),
        Command::Report(r) => cmd::report::run(ctx, r),
        Command::Keys(_) | Command::Completions { .. } => Ok(()),
    }
}
