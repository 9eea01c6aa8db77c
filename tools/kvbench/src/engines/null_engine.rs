//! The `null` engine: stores nothing, finds nothing. Its row is the harness's own ceiling and cost:
//! the ops/s no engine can exceed in this harness, and the peak RSS that is the harness's (key order,
//! operation stream, Zipf table), to subtract from the in-process engines' figures.

use anyhow::Result;

use super::Engine;

/// Does nothing.
#[derive(Debug)]
pub struct Null;

impl Engine for Null {
    fn load_batch(&self, batch: &[(&[u8], &[u8])]) -> Result<()> {
        std::hint::black_box(batch);
        Ok(())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        std::hint::black_box((key, value));
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<bool> {
        std::hint::black_box(key);
        Ok(false)
    }

    fn delete(&self, key: &[u8]) -> Result<()> {
        std::hint::black_box(key);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn notes(&self) -> String {
        "harness baseline: stores nothing".into()
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
