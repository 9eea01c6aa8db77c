//! Loads a `key<TAB>value` file into a store and reads a few keys back: the engine API in one page.
//! Usage: `cargo run --release -p tierkv --example sample -- STORE_DIR FILE.tsv [KEY ...]`

use std::io::BufRead;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, file, keys @ ..] = args.as_slice() else {
        eprintln!("usage: sample STORE_DIR FILE.tsv [KEY ...]");
        std::process::exit(2);
    };
    let db = tierkv::Db::open(store, tierkv::Options::default())?;
    let mut batch = tierkv::WriteBatch::new();
    let mut n = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(file)?).lines() {
        let line = line?;
        if let Some((k, v)) = line.split_once('\t') {
            batch.put(k, v);
            n += 1;
        }
        if batch.len() == 1000 {
            db.write_batch(&batch)?;
            batch.clear();
        }
    }
    db.write_batch(&batch)?;
    db.sync()?;
    println!("loaded {n} records into {store}");
    for k in keys {
        match db.get(k.as_bytes())? {
            Some(v) => println!("{k}\t{}", String::from_utf8_lossy(&v)),
            None => println!("{k}\t(not found)"),
        }
    }
    let stats = db.stats();
    println!("live keys: {}, flushes: {}", stats.live_keys, stats.flushes);
    db.close()?;
    Ok(())
}
