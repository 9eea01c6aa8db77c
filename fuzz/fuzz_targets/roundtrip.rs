//! Encode→decode round trips of every on-disk format, from structured values the fuzzer builds
//! (`arbitrary`): what the engine's writer produces its reader must give back unchanged, and damage
//! must be caught — a truncated log replays to a prefix of its records, a flipped checkpoint byte is
//! rejected, a record read under another key's hash is rejected.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierkv::fuzzing::{self as f, CheckpointImage, LogRecord, ManifestImage, PageEntry, Scratch};

// One value per input, built once: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Arbitrary, Debug)]
enum Case {
    Log {
        shard: u32,
        seq: u64,
        prev_len: u32,
        records: Vec<(bool, u64, Vec<u8>, Vec<u8>)>,
        cut: u16,
    },
    Page {
        bucket: u32,
        generation: u64,
        first_slot: u32,
        entries: Vec<(Vec<u8>, u32, u64, Option<u64>)>,
        /// Repeat each entry this many times (0 = once), to reach overflow chains cheaply.
        repeat: u8,
    },
    Index {
        shard: u32,
        generation: u64,
    },
    Checkpoint {
        shard: u32,
        fixed: [u64; f::CHECKPOINT_FIXED_FIELDS],
        page_map: Vec<u32>,
        free_slots: Vec<u32>,
        data_free: Vec<(u64, u32)>,
        bloom: Option<(u16, Vec<u64>)>,
        flip: u16,
    },
    Manifest {
        layout: u64,
        shards: u32,
        ssd: String,
        hdd: String,
        split: Vec<(u32, u32, u8)>,
    },
    Sync {
        values: Vec<u64>,
    },
    Values {
        hot: bool,
        shard: u32,
        values: Vec<(u64, Vec<u8>)>,
    },
}

fuzz_target!(|case: Case| {
    let scratch = Scratch::new();
    match case {
        Case::Log {
            shard,
            seq,
            prev_len,
            records,
            cut,
        } => log(&scratch, shard, seq, prev_len, records, cut),
        Case::Page {
            bucket,
            generation,
            first_slot,
            entries,
            repeat,
        } => page(bucket, generation, first_slot, entries, repeat),
        Case::Index { shard, generation } => {
            let bytes = f::index_create(&scratch, shard, generation).expect("create index");
            f::index_open(&scratch, &bytes, shard, generation, 1).expect("open created index");
            assert!(f::index_open(&scratch, &bytes, shard ^ 1, generation, 1).is_err());
            assert!(f::index_open(&scratch, &bytes, shard, generation ^ 1, 1).is_err());
        }
        Case::Checkpoint {
            shard,
            fixed,
            mut page_map,
            free_slots,
            data_free,
            bloom,
            flip,
        } => {
            if page_map.is_empty() {
                page_map.push(0);
            }
            let bloom_bytes = match &bloom {
                Some((cap, hashes)) => f::bloom_build(*cap as u64, hashes),
                None => Vec::new(),
            };
            let c = CheckpointImage::new(fixed, page_map, free_slots, data_free, bloom_bytes);
            let bytes = c.encode(shard);
            let back = CheckpointImage::decode(&bytes, shard).expect("decode encoded checkpoint");
            assert_eq!(back, c);
            if bloom.is_some() {
                back.check_bloom()
                    .expect("an engine-built Bloom filter decodes");
            }
            let mut bad = bytes.clone();
            let at = flip as usize % bad.len();
            bad[at] ^= 1 << (flip >> 13);
            assert!(
                CheckpointImage::decode(&bad, shard).is_err(),
                "a flipped bit at {at} went unnoticed"
            );
            assert!(CheckpointImage::decode(&bytes[..bytes.len() - 1], shard).is_err());
        }
        Case::Manifest {
            layout,
            shards,
            ssd,
            hdd,
            split,
        } => {
            let m = ManifestImage::new(layout, shards, ssd.into(), hdd.into(), split);
            let bytes = m.store(&scratch).expect("store manifest");
            let back = ManifestImage::load(&scratch, &bytes)
                .expect("load stored manifest")
                .expect("stored manifest exists");
            assert_eq!(back, m);
            let _ = back.routing(&scratch);
        }
        Case::Sync { values } => {
            assert_eq!(f::syncpoint_open(&scratch, None).expect("create"), 0);
            let values = &values[..values.len().min(16)];
            f::syncpoint_store(&scratch, values).expect("store sync points");
            let bytes = std::fs::read(scratch.path().join("SYNCED")).unwrap();
            let g = f::syncpoint_open(&scratch, Some(&bytes)).expect("reopen");
            assert_eq!(g, values.last().copied().unwrap_or(0));
        }
        Case::Values { hot, shard, values } => {
            let (offs, bytes) = f::value_file_write(&scratch, hot, shard, &values).expect("write");
            for ((h, v), off) in values.iter().zip(&offs) {
                let got = f::value_read(&bytes, *off, v.len() as u32, *h).expect("read back");
                assert_eq!(&got, v);
                assert!(f::value_read(&bytes, *off, v.len() as u32, h ^ 1).is_err());
            }
            let end = bytes.len() as u64;
            assert_eq!(
                f::value_file_open(&scratch, &bytes, hot, shard, end).expect("reopen"),
                end
            );
            // A file no checkpoint references past its header may be started afresh (a torn
            // header from a crash at its creation), so the kind is only binding beyond it.
            if end > 32 {
                assert!(f::value_file_open(&scratch, &bytes, !hot, shard, end).is_err());
            }
            assert!(f::value_file_open(&scratch, &bytes, hot, shard ^ 1, end).is_err());
        }
    }
});

fn log(
    scratch: &Scratch,
    shard: u32,
    seq: u64,
    prev_len: u32,
    records: Vec<(bool, u64, Vec<u8>, Vec<u8>)>,
    cut: u16,
) {
    let records: Vec<LogRecord> = records
        .into_iter()
        .filter(|(_, _, k, _)| !k.is_empty() && k.len() <= f::KEY_LIMIT)
        .map(|(put, seq, key, value)| LogRecord {
            put,
            seq,
            key,
            value,
        })
        .collect();
    let used: usize = records
        .iter()
        .map(|r| 19 + r.key.len() + r.value.len())
        .sum();
    let capacity = (f::LOG_HEADER_BYTES + used + 64) as u64;
    let (bytes, written) =
        f::log_encode(scratch, &records, shard, seq, prev_len, capacity).expect("encode log");
    assert_eq!(written, records.len());
    let r = f::log_replay(scratch, &bytes, shard, seq, u64::MAX).expect("replay encoded log");
    let back: Vec<_> = r.records.into_iter().map(|(_, rec)| rec).collect();
    assert_eq!(back, records);
    assert_eq!(r.valid_len as usize, f::LOG_HEADER_BYTES + used);
    assert_eq!((r.torn_bytes, r.prev_len), (0, prev_len));
    // Every cut of the file at or after the header replays (nothing synced) to a prefix.
    let at = f::LOG_HEADER_BYTES + cut as usize % (bytes.len() - f::LOG_HEADER_BYTES + 1);
    let cut_r = f::log_replay(scratch, &bytes[..at], shard, seq, 0).expect("replay a cut log");
    let n = cut_r.records.len();
    assert!(n <= records.len());
    for ((_, got), want) in cut_r.records.iter().zip(&records) {
        assert_eq!(got, want);
    }
    // Another segment number or shard must not replay these records.
    assert!(f::log_replay(scratch, &bytes, shard ^ 1, seq, u64::MAX).is_err());
    assert!(f::log_replay(scratch, &bytes, shard, seq ^ 1, u64::MAX).is_err());
}

fn page(
    bucket: u32,
    generation: u64,
    first_slot: u32,
    entries: Vec<(Vec<u8>, u32, u64, Option<u64>)>,
    repeat: u8,
) {
    const U48: u64 = (1 << 48) - 1;
    let entries: Vec<PageEntry> = entries
        .into_iter()
        .filter(|(k, ..)| !k.is_empty() && k.len() <= f::KEY_LIMIT)
        .flat_map(|(key, value_len, data_off, hot_off)| {
            let e = PageEntry {
                key,
                value_len,
                data_off: data_off & U48,
                hot_off: hot_off.map(|h| h & U48),
            };
            std::iter::repeat_n(e, 1 + repeat as usize % 32)
        })
        .collect();
    // Chained slots must not wrap around to a slot already used.
    let first_slot = first_slot.min(u32::MAX - 1024);
    let pages = f::page_encode_bucket(bucket, generation, &entries, first_slot);
    let mut back = Vec::new();
    for (i, (slot, p)) in pages.iter().enumerate() {
        assert_eq!(*slot, first_slot + i as u32);
        let info = f::page_validate(p, *slot, Some(bucket)).expect("an encoded page validates");
        let next = pages.get(i + 1).map_or(0, |(s, _)| *s);
        assert_eq!((info.next, info.generation), (next, generation));
        assert!(f::page_validate(p, slot.wrapping_add(1), Some(bucket)).is_err());
        for (e, _) in f::page_entries(p) {
            let found = f::page_find(p, &e.key).expect("an encoded key is found");
            assert_eq!(found.key, e.key);
            back.push(e);
        }
    }
    assert_eq!(back, entries);
}
