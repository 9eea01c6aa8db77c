//! Placeholder for `kvtool simulate` (issue 6), replaced by the simulations' own module at merge.

/// Arguments of `kvtool simulate`.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {}

/// Runs a simulation; returns the exit code.
pub fn run(_args: &SimulateArgs, _json: bool) -> anyhow::Result<i32> {
    anyhow::bail!("simulate is not available in this build")
}
