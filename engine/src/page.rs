//! Global-table pages: one 4 KiB page per bucket plus chained overflow pages. Format:
//! `docs/format/index.md`. This module owns the byte layout (encode, decode, validate); `flush.rs`
//! owns which page lives in which slot.
//!
//! ```text
//! page header (32 bytes):
//!   0 crc32 u32 (bytes 4..4096) | 4 magic "TKVP" | 8 bucket u32 | 12 next slot u32 (0 = end)
//!  16 generation u64 | 24 entry count n u16 | 26 entry bytes u16 | 28 own slot u32
//! directory:  fingerprint u8 × n | pad to even | entry offset u16 × n (from the entries' start)
//! entries:    key_len u16 (bits 0..11; bit 15 = hot offset present) | value_len u32
//!             | data offset u48 | [hot offset u48] | key bytes
//! ```
//! A lookup scans the `n` one-byte fingerprints (the low byte of the key hash; `memchr`, SIMD) and
//! compares only the entries whose fingerprint matches: about two cache lines instead of half a page.

use crate::io::le;

/// Size of one global-table page.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the page header.
pub const PAGE_HEADER: usize = 32;
/// Bytes available for the directory and entries in one page.
pub const PAGE_PAYLOAD: usize = PAGE_SIZE - PAGE_HEADER;
const MAGIC: &[u8; 4] = b"TKVP";
const HOT_FLAG: u16 = 1 << 15;
const KEY_LEN_MASK: u16 = 0x0FFF;
/// Entry header bytes without the optional hot offset.
pub const ENTRY_HEADER: usize = 12;
/// Directory bytes per entry (fingerprint and offset).
pub const DIR_BYTES: usize = 3;

/// Where a key's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Length of the value.
    pub value_len: u32,
    /// Offset of the value record in the data file.
    pub data_off: u64,
    /// Offset of a hot copy in the hot file, when one exists.
    pub hot_off: Option<u64>,
}

/// The directory fingerprint of a key hash.
#[inline]
pub(crate) fn fingerprint(hash: u64) -> u8 {
    hash as u8
}

/// Page bytes an entry for `key` takes (directory included).
#[inline]
pub(crate) fn entry_len(key_len: usize, loc: &Loc) -> usize {
    DIR_BYTES + ENTRY_HEADER + if loc.hot_off.is_some() { 6 } else { 0 } + key_len
}

/// Header fields of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageHeader {
    pub bucket: u32,
    pub next: u32,
    pub generation: u64,
    pub count: u16,
    pub used: u16,
    pub slot: u32,
}

#[inline]
pub(crate) fn header(page: &[u8]) -> PageHeader {
    PageHeader {
        bucket: le::u32_at(page, 8),
        next: le::u32_at(page, 12),
        generation: le::u64_at(page, 16),
        count: le::u16_at(page, 24),
        used: le::u16_at(page, 26),
        slot: le::u32_at(page, 28),
    }
}

/// Where the offset array and the entries start for `count` entries.
#[inline]
fn layout(count: usize) -> (usize, usize) {
    let offsets = PAGE_HEADER + ((count + 1) & !1);
    (offsets, offsets + 2 * count)
}

/// Decodes the entry at `at` (an absolute page offset), bounded by `end`.
#[inline]
fn entry_at(page: &[u8], at: usize, end: usize) -> Option<(&[u8], Loc)> {
    if at + ENTRY_HEADER > end {
        return None;
    }
    let flags = le::u16_at(page, at);
    let key_len = (flags & KEY_LEN_MASK) as usize;
    let (hot_off, key_at) = if flags & HOT_FLAG != 0 {
        // The hot offset is part of the entry's header: it too must lie before `end`.
        if at + ENTRY_HEADER + 6 > end {
            return None;
        }
        (Some(le::u48_at(page, at + 12)), at + 18)
    } else {
        (None, at + 12)
    };
    if key_at + key_len > end {
        return None;
    }
    Some((
        &page[key_at..key_at + key_len],
        Loc {
            value_len: le::u32_at(page, at + 2),
            data_off: le::u48_at(page, at + 6),
            hot_off,
        },
    ))
}

/// The page's entry count, clamped so that a damaged header cannot index past the page.
#[inline]
fn bounded_count(page: &[u8]) -> usize {
    (le::u16_at(page, 24) as usize).min(PAGE_PAYLOAD / DIR_BYTES)
}

/// The entries of `page` with their fingerprints, in directory order.
pub(crate) fn entries(page: &[u8]) -> impl Iterator<Item = (&[u8], Loc, u8)> + '_ {
    let count = bounded_count(page);
    let (offsets, start) = layout(count);
    (0..count).map_while(move |i| {
        let at = start + le::u16_at(page, offsets + 2 * i) as usize;
        entry_at(page, at, PAGE_SIZE).map(|(k, loc)| (k, loc, page[PAGE_HEADER + i]))
    })
}

/// Looks `key` (whose hash is `hash`) up in one page: fingerprint scan, then key comparison.
#[inline]
pub(crate) fn find(page: &[u8], key: &[u8], hash: u64) -> Option<Loc> {
    let count = bounded_count(page);
    let (offsets, start) = layout(count);
    let fps = &page[PAGE_HEADER..PAGE_HEADER + count];
    for i in memchr::memchr_iter(fingerprint(hash), fps) {
        let at = start + le::u16_at(page, offsets + 2 * i) as usize;
        if let Some((k, loc)) = entry_at(page, at, PAGE_SIZE) {
            if k == key {
                return Some(loc);
            }
        }
    }
    None
}

/// Checks a page's magic, checksum, own slot, bucket and layout. Returns the reason it is bad.
pub(crate) fn validate(page: &[u8], slot: u32, bucket: Option<u32>) -> Result<PageHeader, String> {
    if page.len() != PAGE_SIZE {
        return Err(format!("page of {} bytes", page.len()));
    }
    if &page[4..8] != MAGIC {
        return Err("bad page magic".into());
    }
    if crc32fast::hash(&page[4..]) != le::u32_at(page, 0) {
        return Err("page checksum mismatch".into());
    }
    let h = header(page);
    if h.slot != slot {
        return Err(format!(
            "misdirected page: it says slot {}, read from slot {slot}",
            h.slot
        ));
    }
    if let Some(b) = bucket {
        if h.bucket != b {
            return Err(format!(
                "page belongs to bucket {}, expected bucket {b}",
                h.bucket
            ));
        }
    }
    let count = h.count as usize;
    let (_, start) = layout(count);
    if start + h.used as usize > PAGE_SIZE {
        return Err(format!(
            "{count} entries in {} bytes do not fit a page",
            h.used
        ));
    }
    let mut n = 0usize;
    let mut expect_at = start;
    for (k, loc, fp) in entries(page) {
        let at = start + le::u16_at(page, layout(count).0 + 2 * n) as usize;
        if at != expect_at {
            return Err(format!("entry {n} is not where the directory says"));
        }
        if fp != fingerprint(crate::hash::KeyHash::of(k).0) {
            return Err(format!("entry {n} has a wrong fingerprint"));
        }
        expect_at += entry_len(k.len(), &loc) - DIR_BYTES;
        n += 1;
    }
    if n != count || expect_at - start != h.used as usize {
        return Err(format!(
            "page holds {n} entries in {} bytes, header says {count} in {}",
            expect_at - start,
            h.used
        ));
    }
    Ok(h)
}

/// Builds pages for one bucket from its entries `(key, location, fingerprint)`, chaining overflow
/// pages. `next_slot` supplies the slot of each page in chain order (the first is the primary page).
/// Appends `(slot, page bytes)` pairs to `out`.
pub(crate) fn encode_bucket<'k>(
    bucket: u32,
    generation: u64,
    entries: impl IntoIterator<Item = (&'k [u8], Loc, u8)>,
    mut next_slot: impl FnMut() -> u32,
    out: &mut Vec<(u32, Box<[u8; PAGE_SIZE]>)>,
) {
    let mut body: Vec<u8> = Vec::with_capacity(PAGE_PAYLOAD);
    let mut fps: Vec<u8> = Vec::with_capacity(PAGE_PAYLOAD / 16);
    let mut offsets: Vec<u16> = Vec::with_capacity(PAGE_PAYLOAD / 16);
    let mut slot = next_slot();
    for (key, loc, fp) in entries {
        let len = entry_len(key.len(), &loc) - DIR_BYTES;
        let (_, start) = layout(fps.len() + 1);
        if start + body.len() + len > PAGE_SIZE && !fps.is_empty() {
            let next = next_slot();
            out.push((
                slot,
                seal(bucket, next, generation, slot, &fps, &offsets, &body),
            ));
            body.clear();
            fps.clear();
            offsets.clear();
            slot = next;
        }
        let mut flags = key.len() as u16;
        if loc.hot_off.is_some() {
            flags |= HOT_FLAG;
        }
        offsets.push(body.len() as u16);
        fps.push(fp);
        body.extend_from_slice(&flags.to_le_bytes());
        body.extend_from_slice(&loc.value_len.to_le_bytes());
        le::put_u48(&mut body, loc.data_off);
        if let Some(h) = loc.hot_off {
            le::put_u48(&mut body, h);
        }
        body.extend_from_slice(key);
    }
    out.push((
        slot,
        seal(bucket, 0, generation, slot, &fps, &offsets, &body),
    ));
}

fn seal(
    bucket: u32,
    next: u32,
    generation: u64,
    slot: u32,
    fps: &[u8],
    offsets: &[u16],
    body: &[u8],
) -> Box<[u8; PAGE_SIZE]> {
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let (off_at, start) = layout(fps.len());
    page[4..8].copy_from_slice(MAGIC);
    page[8..12].copy_from_slice(&bucket.to_le_bytes());
    page[12..16].copy_from_slice(&next.to_le_bytes());
    page[16..24].copy_from_slice(&generation.to_le_bytes());
    page[24..26].copy_from_slice(&(fps.len() as u16).to_le_bytes());
    page[26..28].copy_from_slice(&(body.len() as u16).to_le_bytes());
    page[28..32].copy_from_slice(&slot.to_le_bytes());
    page[PAGE_HEADER..PAGE_HEADER + fps.len()].copy_from_slice(fps);
    for (i, o) in offsets.iter().enumerate() {
        page[off_at + 2 * i..off_at + 2 * i + 2].copy_from_slice(&o.to_le_bytes());
    }
    page[start..start + body.len()].copy_from_slice(body);
    let crc = crc32fast::hash(&page[4..]);
    page[..4].copy_from_slice(&crc.to_le_bytes());
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::KeyHash;

    fn loc(i: u64) -> Loc {
        Loc {
            value_len: i as u32,
            data_off: i * 100,
            hot_off: if i % 3 == 0 { Some(i * 7) } else { None },
        }
    }

    fn fp(k: &[u8]) -> u8 {
        fingerprint(KeyHash::of(k).0)
    }

    #[test]
    fn encode_find_validate_with_overflow() {
        let keys: Vec<Vec<u8>> = (0..400u64)
            .map(|i| format!("key-{i:08}").into_bytes())
            .collect();
        let mut slots = 10u32..;
        let mut out = Vec::new();
        encode_bucket(
            7,
            3,
            keys.iter()
                .enumerate()
                .map(|(i, k)| (k.as_slice(), loc(i as u64), fp(k))),
            || slots.next().unwrap(),
            &mut out,
        );
        assert!(out.len() >= 3, "400 entries need overflow pages");
        let mut total = 0;
        for (i, (slot, page)) in out.iter().enumerate() {
            let h = validate(&page[..], *slot, Some(7)).unwrap();
            let expect_next = out.get(i + 1).map_or(0, |(s, _)| *s);
            assert_eq!(h.next, expect_next);
            assert_eq!(h.generation, 3);
            total += entries(&page[..]).count();
        }
        assert_eq!(total, 400);
        for (i, k) in keys.iter().enumerate() {
            let h = KeyHash::of(k).0;
            let found = out.iter().find_map(|(_, p)| find(&p[..], k, h));
            assert_eq!(found, Some(loc(i as u64)));
        }
        let absent = b"absent";
        assert_eq!(
            out.iter()
                .find_map(|(_, p)| find(&p[..], absent, KeyHash::of(absent).0)),
            None
        );
    }

    #[test]
    fn empty_bucket_page_is_valid() {
        let mut out = Vec::new();
        encode_bucket(1, 1, std::iter::empty(), || 4, &mut out);
        assert_eq!(out.len(), 1);
        validate(&out[0].1[..], 4, Some(1)).unwrap();
        assert_eq!(entries(&out[0].1[..]).count(), 0);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut out = Vec::new();
        let keys = [b"alpha".as_slice(), b"beta", b"gamma"];
        let mut s = 1u32;
        encode_bucket(
            0,
            1,
            keys.iter().map(|k| (*k, loc(1), fp(k))),
            || {
                s += 1;
                s
            },
            &mut out,
        );
        let (slot, page) = &out[0];
        for byte in 0..PAGE_SIZE {
            for bit in 0..8 {
                let mut p = page.clone();
                p[byte] ^= 1 << bit;
                assert!(
                    validate(&p[..], *slot, Some(0)).is_err(),
                    "flip at {byte}:{bit} not caught"
                );
            }
        }
    }

    #[test]
    fn misdirected_page_is_caught() {
        let mut out = Vec::new();
        encode_bucket(5, 1, [(b"k".as_slice(), loc(1), fp(b"k"))], || 9, &mut out);
        assert!(validate(&out[0].1[..], 9, Some(5)).is_ok());
        assert!(validate(&out[0].1[..], 10, Some(5))
            .unwrap_err()
            .contains("misdirected"));
        assert!(validate(&out[0].1[..], 9, Some(6))
            .unwrap_err()
            .contains("bucket"));
    }

    /// A checksummed page whose only entry is a hot one starting 16 bytes before the page end (its
    /// 6-byte hot offset runs past the end): validating or listing it read past the page and
    /// panicked. Confirmed through the `decoders` fuzz target with this page; now the entry is
    /// simply not there, and the page is invalid.
    #[test]
    fn hot_entry_cut_by_the_page_end_is_invalid_not_a_panic() {
        let mut page = vec![0u8; PAGE_SIZE];
        page[4..8].copy_from_slice(MAGIC);
        page[24..26].copy_from_slice(&1u16.to_le_bytes());
        let (offsets, start) = layout(1);
        let at = PAGE_SIZE - 16;
        page[offsets..offsets + 2].copy_from_slice(&((at - start) as u16).to_le_bytes());
        page[at..at + 2].copy_from_slice(&HOT_FLAG.to_le_bytes());
        page[PAGE_HEADER] = fingerprint(KeyHash::of(b"").0);
        let crc = crc32fast::hash(&page[4..]);
        page[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(entries(&page).count(), 0);
        assert_eq!(find(&page, b"", KeyHash::of(b"").0), None);
        assert!(validate(&page, 0, None).is_err());
    }
}
