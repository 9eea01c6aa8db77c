//! Global-table pages: one 4 KiB page per bucket plus chained overflow pages. Format:
//! `docs/format/index.md`. This module owns the byte layout (encode, decode, validate); `index.rs`
//! owns which page lives in which slot.
//!
//! ```text
//! page header (32 bytes):
//!   0 crc32 u32 (bytes 4..4096) | 4 magic "TKVP" | 8 bucket u32 | 12 next slot u32 (0 = none)
//!  16 generation u64 | 24 entry count u16 | 26 entry bytes u16 | 28 own slot u32
//! entry:
//!   key_len u16 (bits 0..11; bit 15 = hot offset present) | value_len u32 | data offset u48
//!   | [hot offset u48] | key bytes
//! ```

use crate::io::le;

/// Size of one global-table page.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the page header.
pub(crate) const PAGE_HEADER: usize = 32;
/// Bytes available for entries in one page.
pub(crate) const PAGE_PAYLOAD: usize = PAGE_SIZE - PAGE_HEADER;
const MAGIC: &[u8; 4] = b"TKVP";
const HOT_FLAG: u16 = 1 << 15;
const KEY_LEN_MASK: u16 = 0x0FFF;
/// Entry header bytes without the optional hot offset.
pub(crate) const ENTRY_HEADER: usize = 12;

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

/// Bytes an entry for `key` takes in a page.
#[inline]
pub(crate) fn entry_len(key_len: usize, loc: &Loc) -> usize {
    ENTRY_HEADER + if loc.hot_off.is_some() { 6 } else { 0 } + key_len
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

/// Iterates the entries of a page whose header was validated.
pub(crate) struct Entries<'a> {
    page: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], Loc);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at + ENTRY_HEADER > self.end {
            return None;
        }
        let p = self.page;
        let at = self.at;
        let flags = le::u16_at(p, at);
        let key_len = (flags & KEY_LEN_MASK) as usize;
        let value_len = le::u32_at(p, at + 2);
        let data_off = le::u48_at(p, at + 6);
        let (hot_off, key_at) = if flags & HOT_FLAG != 0 {
            (Some(le::u48_at(p, at + 12)), at + 18)
        } else {
            (None, at + 12)
        };
        if key_at + key_len > self.end {
            return None;
        }
        self.at = key_at + key_len;
        Some((
            &p[key_at..key_at + key_len],
            Loc {
                value_len,
                data_off,
                hot_off,
            },
        ))
    }
}

/// The entries of `page`.
#[inline]
pub(crate) fn entries(page: &[u8]) -> Entries<'_> {
    let used = le::u16_at(page, 26) as usize;
    Entries {
        page,
        at: PAGE_HEADER,
        end: PAGE_HEADER + used.min(PAGE_PAYLOAD),
    }
}

/// Looks `key` up in one page. Skips entries by their key length and decodes only the match (the hot
/// loop of every get that reaches the SSD).
#[inline]
pub(crate) fn find(page: &[u8], key: &[u8]) -> Option<Loc> {
    let end = PAGE_HEADER + (le::u16_at(page, 26) as usize).min(PAGE_PAYLOAD);
    let mut at = PAGE_HEADER;
    while at + ENTRY_HEADER <= end {
        let flags = le::u16_at(page, at);
        let key_len = (flags & KEY_LEN_MASK) as usize;
        let key_at = at + if flags & HOT_FLAG != 0 { 18 } else { 12 };
        if key_at + key_len > end {
            return None;
        }
        if key_len == key.len() && &page[key_at..key_at + key_len] == key {
            return Some(Loc {
                value_len: le::u32_at(page, at + 2),
                data_off: le::u48_at(page, at + 6),
                hot_off: (flags & HOT_FLAG != 0).then(|| le::u48_at(page, at + 12)),
            });
        }
        at = key_at + key_len;
    }
    None
}

/// Checks a page's magic, checksum, own slot, bucket and entry layout. Returns the reason it is bad.
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
    if h.used as usize > PAGE_PAYLOAD {
        return Err(format!("entry bytes {} exceed the page payload", h.used));
    }
    let mut n = 0u16;
    let mut bytes = 0usize;
    for (k, loc) in entries(page) {
        n += 1;
        bytes += entry_len(k.len(), &loc);
    }
    if n != h.count || bytes != h.used as usize {
        return Err(format!(
            "page holds {n} entries in {bytes} bytes, header says {} in {}",
            h.count, h.used
        ));
    }
    Ok(h)
}

/// Builds pages for one bucket from its entries, chaining overflow pages. `slots` supplies the slot of
/// each page in chain order (the first is the primary page). Returns `(slot, page bytes)` pairs.
pub(crate) fn encode_bucket<'k>(
    bucket: u32,
    generation: u64,
    entries: impl IntoIterator<Item = (&'k [u8], Loc)>,
    mut next_slot: impl FnMut() -> u32,
    out: &mut Vec<(u32, Box<[u8; PAGE_SIZE]>)>,
) {
    let first = out.len();
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let mut used = 0usize;
    let mut count = 0u16;
    let mut slot = next_slot();
    let mut buf = Vec::with_capacity(64);
    for (key, loc) in entries {
        buf.clear();
        let mut flags = key.len() as u16;
        if loc.hot_off.is_some() {
            flags |= HOT_FLAG;
        }
        buf.extend_from_slice(&flags.to_le_bytes());
        buf.extend_from_slice(&loc.value_len.to_le_bytes());
        le::put_u48(&mut buf, loc.data_off);
        if let Some(h) = loc.hot_off {
            le::put_u48(&mut buf, h);
        }
        buf.extend_from_slice(key);
        if used + buf.len() > PAGE_PAYLOAD {
            let next = next_slot();
            seal(&mut page, bucket, next, generation, count, used, slot);
            out.push((slot, page));
            page = Box::new([0u8; PAGE_SIZE]);
            used = 0;
            count = 0;
            slot = next;
        }
        page[PAGE_HEADER + used..PAGE_HEADER + used + buf.len()].copy_from_slice(&buf);
        used += buf.len();
        count += 1;
    }
    seal(&mut page, bucket, 0, generation, count, used, slot);
    out.push((slot, page));
    debug_assert!(out.len() > first);
}

fn seal(
    page: &mut [u8; PAGE_SIZE],
    bucket: u32,
    next: u32,
    generation: u64,
    count: u16,
    used: usize,
    slot: u32,
) {
    page[4..8].copy_from_slice(MAGIC);
    page[8..12].copy_from_slice(&bucket.to_le_bytes());
    page[12..16].copy_from_slice(&next.to_le_bytes());
    page[16..24].copy_from_slice(&generation.to_le_bytes());
    page[24..26].copy_from_slice(&count.to_le_bytes());
    page[26..28].copy_from_slice(&(used as u16).to_le_bytes());
    page[28..32].copy_from_slice(&slot.to_le_bytes());
    let crc = crc32fast::hash(&page[4..]);
    page[..4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(i: u64) -> Loc {
        Loc {
            value_len: i as u32,
            data_off: i * 100,
            hot_off: if i % 3 == 0 { Some(i * 7) } else { None },
        }
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
                .map(|(i, k)| (k.as_slice(), loc(i as u64))),
            || slots.next().unwrap(),
            &mut out,
        );
        assert!(out.len() >= 3, "400 entries need overflow pages");
        // Chain order and validation.
        for (i, (slot, page)) in out.iter().enumerate() {
            let h = validate(&page[..], *slot, Some(7)).unwrap();
            let expect_next = out.get(i + 1).map_or(0, |(s, _)| *s);
            assert_eq!(h.next, expect_next);
            assert_eq!(h.generation, 3);
        }
        for (i, k) in keys.iter().enumerate() {
            let found = out.iter().find_map(|(_, p)| find(&p[..], k));
            assert_eq!(found, Some(loc(i as u64)));
        }
        assert_eq!(out.iter().find_map(|(_, p)| find(&p[..], b"absent")), None);
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut out = Vec::new();
        let keys = [b"alpha".as_slice(), b"beta", b"gamma"];
        let mut s = 1u32;
        encode_bucket(
            0,
            1,
            keys.iter().map(|k| (*k, loc(1))),
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
        encode_bucket(5, 1, [(b"k".as_slice(), loc(1))], || 9, &mut out);
        assert!(validate(&out[0].1[..], 9, Some(5)).is_ok());
        assert!(validate(&out[0].1[..], 10, Some(5))
            .unwrap_err()
            .contains("misdirected"));
        assert!(validate(&out[0].1[..], 9, Some(6))
            .unwrap_err()
            .contains("bucket"));
    }
}
