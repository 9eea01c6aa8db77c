//! The `kvtool simulate` argument definitions (`cli/src/commands/simulate.rs`, compiled here because the
//! CLI wiring lives on another branch) are consistent and parse the documented command lines.

#[path = "../../cli/src/commands/simulate.rs"]
#[allow(dead_code)]
mod simulate;

use clap::{CommandFactory, Parser};

#[derive(Parser, Debug)]
struct Cli {
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    args: simulate::SimulateArgs,
}

#[test]
fn arguments_are_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn documented_command_lines_parse() {
    let c = Cli::try_parse_from([
        "kvtool", "--json", "bloom", "--fpr", "0.01", "--keys", "1000000",
    ])
    .unwrap();
    assert!(c.json);
    assert!(
        matches!(c.args.command, simulate::SimCommand::Bloom(ref b) if b.fpr == 0.01 && b.keys == 1_000_000)
    );
    let c = Cli::try_parse_from(["kvtool", "plan", "w.json", "--keys", "1000000000", "--json"])
        .unwrap();
    assert!(
        matches!(c.args.command, simulate::SimCommand::Plan(ref p) if p.keys == Some(1_000_000_000))
    );
    let c = Cli::try_parse_from(["kvtool", "validate", "w.json", "--tolerance", "0.2"]).unwrap();
    assert!(matches!(c.args.command, simulate::SimCommand::Validate(ref v) if v.tolerance == 0.2));
    assert!(Cli::try_parse_from(["kvtool", "validate"]).is_err());
}

#[test]
fn bloom_json_has_documented_fields() {
    // `run` prints; here the library call behind `simulate bloom --json` is checked for its fields.
    let r = tiersim::bloom::simulate(&tiersim::bloom::BloomParams {
        fpr: 0.01,
        keys: 1_000_000,
        sample_keys: 2_000,
        probes: 2_000,
        max_churn: 0.5,
        rebuild: None,
    })
    .unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert!((v["bits_per_key"].as_f64().unwrap() - 9.585).abs() < 0.001);
    assert_eq!(v["hashes"].as_u64(), Some(7));
}
