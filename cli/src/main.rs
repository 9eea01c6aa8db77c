//! `kvtool`: the command line of the tierkv storage engine (commands land with their issue).
fn main() {
    println!("kvtool {}", env!("CARGO_PKG_VERSION"));
}
