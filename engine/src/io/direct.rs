//! Direct I/O (`O_DIRECT`): buffers aligned to [`ALIGN`] and the one function that turns any byte
//! range into an aligned read.
//!
//! Invariant: every read of a file opened with [`super::OpenHow::READ_DIRECT`] is planned by
//! [`AlignedRange::covering`], which rounds the start down and the end up to [`ALIGN`], and lands in an
//! [`AlignedBuf`], whose address and length are multiples of [`ALIGN`]. Callers ask for the bytes they
//! want and never see the alignment, so an alignment error (`EINVAL`) cannot be constructed.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// The alignment of direct-I/O offsets, lengths and buffers: the page size, which is a multiple of
/// every logical block size Linux file systems use.
pub const ALIGN: usize = 4096;

/// A heap buffer whose address and length are multiples of [`ALIGN`], zero-filled.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its allocation exclusively, like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of at least `len` bytes (rounded up to [`ALIGN`], at least one block).
    pub fn zeroed(len: usize) -> AlignedBuf {
        let len = len.max(1).next_multiple_of(ALIGN);
        let layout = Layout::from_size_align(len, ALIGN).expect("aligned layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` initialized (zeroed or written) bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len, ALIGN).expect("aligned layout");
        // SAFETY: allocated in `zeroed` with this very layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

/// The aligned read that covers a wanted byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlignedRange {
    /// Aligned file offset the read starts at.
    pub offset: u64,
    /// Aligned length of the read.
    pub len: usize,
    /// Where the wanted bytes start inside the read.
    pub skip: usize,
    /// How many bytes are wanted.
    pub want: usize,
}

impl AlignedRange {
    /// The aligned read covering `want` bytes at `offset`.
    pub fn covering(offset: u64, want: usize) -> AlignedRange {
        let start = offset - offset % ALIGN as u64;
        let end = (offset + want as u64).next_multiple_of(ALIGN as u64);
        AlignedRange {
            offset: start,
            len: (end - start).max(ALIGN as u64) as usize,
            skip: (offset - start) as usize,
            want,
        }
    }

    /// A buffer to read this range into.
    pub fn buffer(&self) -> AlignedBuf {
        AlignedBuf::zeroed(self.len)
    }

    /// The wanted bytes inside a buffer this range was read into.
    pub fn wanted<'b>(&self, buf: &'b AlignedBuf) -> &'b [u8] {
        &buf.as_slice()[self.skip..self.skip + self.want]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_ranges_are_aligned_and_contain_the_wanted_bytes() {
        for offset in [0u64, 1, 7, 4095, 4096, 4097, 123_457, 1 << 33] {
            for want in [0usize, 1, 5, 4095, 4096, 4097, 10_001] {
                let r = AlignedRange::covering(offset, want);
                assert_eq!(r.offset % ALIGN as u64, 0);
                assert_eq!(r.len % ALIGN, 0);
                assert!(r.offset <= offset);
                assert!(r.offset + r.len as u64 >= offset + want as u64);
                assert_eq!(r.offset + r.skip as u64, offset);
                let buf = r.buffer();
                assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN, 0);
                assert!(buf.as_slice().len() >= r.len);
                assert_eq!(r.wanted(&buf).len(), want);
            }
        }
    }
}
