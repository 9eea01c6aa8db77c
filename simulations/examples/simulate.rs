//! Runs `kvtool simulate` end to end without the CLI crate: it compiles the CLI's own
//! `cli/src/commands/simulate.rs` into a tiny binary (`cargo run -p tiersim --example simulate --
//! [--json] bloom --fpr 0.01 --keys 1000000`).

#[path = "../../cli/src/commands/simulate.rs"]
mod simulate;

use clap::Parser;

#[derive(Parser, Debug)]
struct Cli {
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    args: simulate::SimulateArgs,
}

fn main() {
    let cli = Cli::parse();
    match simulate::run(&cli.args, cli.json) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
