//! Every on-disk decoder of the engine on arbitrary bytes. Input: `selector | flags | data`; the
//! selector picks the decoder, flag bit 0 recomputes the format's checksums over `data` first (so
//! the checks behind a checksum are reached too), the other bits pick parameters.
//!
//! Properties: no decoder panics or hangs; an accepted input re-encodes consistently — a replayed
//! log prefix re-encodes byte for byte, a valid page's entries re-encode into a page that decodes to
//! the same entries, a decoded checkpoint or manifest survives encode→decode unchanged, a sync point
//! stored again reads back, a value record whose checksum was made right reads back exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tierkv::fuzzing::{self as f, CheckpointImage, ManifestImage, Scratch};

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let (selector, flags, data) = (input[0], input[1], &input[2..]);
    let seal = flags & 1 != 0;
    let scratch = Scratch::new();
    match selector % 9 {
        0 => log(&scratch, flags, data),
        1 => page(flags, data),
        2 => index(&scratch, flags, data),
        3 => checkpoint(seal, flags, data),
        4 => manifest(&scratch, seal, data),
        5 => syncpoint(&scratch, seal, data),
        6 => value_file(&scratch, flags, data),
        7 => value_record(seal, data),
        _ => bloom(data),
    }
});

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// Log segment replay; shard and segment number from the header itself (flag 2) or fixed.
fn log(scratch: &Scratch, flags: u8, data: &[u8]) {
    let (shard, seq) = if flags & 2 != 0 {
        (u32_at(data, 12), u64_at(data, 16))
    } else {
        (0, 1)
    };
    // The sync point: everything durable (mid-file damage is an error) or nothing (a torn tail).
    let durable = if flags & 4 != 0 { u64::MAX } else { 0 };
    let mut bytes = data.to_vec();
    if flags & 1 != 0 {
        f::seal_log(&mut bytes, seq);
    }
    let Ok(r) = f::log_replay(scratch, &bytes, shard, seq, durable) else {
        return;
    };
    let valid = r.valid_len as usize;
    assert!(valid >= f::LOG_HEADER_BYTES && valid <= bytes.len());
    assert!(valid as u64 + r.torn_bytes <= bytes.len() as u64);
    if r.torn_bytes == 0 {
        // A clean end: an all-zero record header, or fewer zero bytes than a header. What lies
        // after a zero header is not examined (docs/format/log.md: the rest of the file is zero).
        let rest = &bytes[valid..];
        assert!(rest[..rest.len().min(19)].iter().all(|&b| b == 0));
    }
    let records: Vec<_> = r.records.iter().map(|(_, rec)| rec.clone()).collect();
    let (encoded, written) = f::log_encode(
        scratch,
        &records,
        shard,
        seq,
        r.prev_len,
        bytes.len() as u64,
    )
    .expect("re-encoding replayed records");
    assert_eq!(written, records.len(), "replayed records no longer fit");
    assert_eq!(
        &encoded[..valid],
        &bytes[..valid],
        "the replayed prefix re-encodes differently"
    );
}

/// A global-table page: validate, list, look up; a valid page's entries re-encode.
fn page(flags: u8, data: &[u8]) {
    let mut page = vec![0u8; f::PAGE_BYTES];
    let n = data.len().min(f::PAGE_BYTES);
    page[..n].copy_from_slice(&data[..n]);
    if flags & 1 != 0 {
        f::seal_page(&mut page);
    }
    let slot = if flags & 2 != 0 { u32_at(&page, 28) } else { 1 };
    let bucket = (flags & 4 != 0).then(|| u32_at(&page, 8));
    let entries = f::page_entries(&page);
    for (e, _) in entries.iter().take(64) {
        let _ = f::page_find(&page, &e.key);
    }
    let _ = f::page_find(&page, b"absent-key");
    let Ok(info) = f::page_validate(&page, slot, bucket) else {
        return;
    };
    assert_eq!(entries.len(), info.count as usize);
    for (e, fp) in &entries {
        assert_eq!(*fp, f::key_fingerprint(&e.key));
        let found = f::page_find(&page, &e.key).expect("a valid page's key is found");
        assert_eq!(found.key, e.key);
    }
    let plain: Vec<_> = entries.iter().map(|(e, _)| e.clone()).collect();
    let pages = f::page_encode_bucket(info.bucket, info.generation, &plain, slot);
    assert_eq!(
        pages.len(),
        1,
        "a valid page's entries re-encode into more pages"
    );
    let again = f::page_validate(&pages[0].1, slot, Some(info.bucket)).expect("re-encoded page");
    assert_eq!((again.count, again.used), (info.count, info.used));
    let back: Vec<_> = f::page_entries(&pages[0].1)
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(back, plain);
}

/// The index-file header.
fn index(scratch: &Scratch, flags: u8, data: &[u8]) {
    let mut bytes = data.to_vec();
    if flags & 1 != 0 {
        f::seal_header32(&mut bytes);
    }
    let (shard, generation) = if flags & 2 != 0 {
        (u32_at(&bytes, 12), u64_at(&bytes, 16))
    } else {
        (0, 1)
    };
    let slots = (flags >> 2) as u32 % 4;
    if f::index_open(scratch, &bytes, shard, generation, slots).is_ok() {
        assert!(bytes.len() as u64 >= slots as u64 * f::PAGE_BYTES as u64);
        assert!(bytes.len() >= 32);
    }
}

/// A checkpoint and the Bloom filter it carries.
fn checkpoint(seal: bool, flags: u8, data: &[u8]) {
    let mut bytes = data.to_vec();
    if seal {
        f::seal_checkpoint(&mut bytes);
    }
    let shard = if flags & 2 != 0 {
        u32_at(&bytes, 12)
    } else {
        0
    };
    let Ok(c) = CheckpointImage::decode(&bytes, shard) else {
        return;
    };
    let _ = c.check_bloom();
    let again = CheckpointImage::decode(&c.encode(shard), shard).expect("re-encoded checkpoint");
    assert_eq!(again, c);
}

/// The manifest (raw, or `data` as the JSON between the magic and CRC lines) and its routing.
fn manifest(scratch: &Scratch, seal: bool, data: &[u8]) {
    let bytes = if seal {
        f::seal_manifest(data)
    } else {
        data.to_vec()
    };
    let Ok(Some(m)) = ManifestImage::load(scratch, &bytes) else {
        return;
    };
    let routing = m.routing(scratch);
    if let Ok((bits, route)) = &routing {
        assert_eq!(route.len(), 1usize << bits);
        let n = m.shard_specs().len() as u32;
        assert!(route.iter().all(|&i| i < n));
    }
    let stored = m.store(scratch).expect("storing a loaded manifest");
    let back = ManifestImage::load(scratch, &stored)
        .expect("reloading a stored manifest")
        .expect("the stored manifest exists");
    assert_eq!(back, m);
    assert_eq!(back.routing(scratch).is_ok(), routing.is_ok());
}

/// The sync point: open, then a store must read back.
fn syncpoint(scratch: &Scratch, seal: bool, data: &[u8]) {
    let mut bytes = data.to_vec();
    if seal {
        f::seal_syncpoint(&mut bytes);
    }
    let Ok(g) = f::syncpoint_open(scratch, Some(&bytes)) else {
        return;
    };
    let next = g.wrapping_add(1);
    if f::syncpoint_store(scratch, &[next]).is_ok() {
        let stored = std::fs::read(scratch.path().join("SYNCED")).expect("read SYNCED");
        let back =
            f::syncpoint_open(scratch, Some(&stored)).expect("reopening a stored sync point");
        assert_eq!(back, next, "a stored sync point did not read back");
    }
}

/// A data-file or hot-file header, opened at several checkpointed ends.
fn value_file(scratch: &Scratch, flags: u8, data: &[u8]) {
    let mut bytes = data.to_vec();
    if flags & 1 != 0 {
        f::seal_header32(&mut bytes);
    }
    let hot = flags & 4 != 0;
    let shard = if flags & 2 != 0 {
        u32_at(&bytes, 12)
    } else {
        0
    };
    let end = match (flags >> 3) % 4 {
        0 => 0,
        1 => 32,
        2 => bytes.len() as u64,
        _ => bytes.len() as u64 + 1,
    };
    if let Ok(at) = f::value_file_open(scratch, &bytes, hot, shard, end) {
        assert!(at >= 32, "a value file appends inside its header");
        assert!(at >= end);
    }
}

/// A value record: `off u64 | len u32 | hash u64 | file bytes`. Sealed: a correct record is first
/// written at `off` when it fits, and must then read back exactly.
fn value_record(seal: bool, data: &[u8]) {
    if data.len() < 20 {
        return;
    }
    let (off, len, hash) = (
        u64_at(data, 0) % 4096,
        u32_at(data, 8) % 4096,
        u64_at(data, 12),
    );
    let mut file = data[20..].to_vec();
    let (start, end) = (off as usize, off as usize + 4 + len as usize);
    let sealed = seal && off >= 32 && end <= file.len();
    if sealed {
        let mut c = tierkv_crc(hash, &file[start + 4..end]);
        file[start..start + 4].swap_with_slice(&mut c);
    }
    match f::value_read(&file, off, len, hash) {
        Ok(v) => {
            assert_eq!(v.len(), len as usize);
            assert_eq!(&v[..], &file[start + 4..end]);
        }
        Err(e) => assert!(!sealed, "a sealed record failed: {e}"),
    }
}

/// The value-record CRC as `docs/format/data.md` defines it.
fn tierkv_crc(hash: u64, value: &[u8]) -> [u8; 4] {
    let mut c = crc32fast_like(&hash.to_le_bytes(), 0);
    c = crc32fast_like(value, c);
    c.to_le_bytes()
}

/// Bitwise CRC-32 (IEEE), continuing from `crc`: independent of the engine's implementation.
fn crc32fast_like(bytes: &[u8], crc: u32) -> u32 {
    let mut c = !crc;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Bloom filter bytes as a checkpoint carries them.
fn bloom(data: &[u8]) {
    let _ = f::bloom_check(data, 1000, 10, 0);
}
