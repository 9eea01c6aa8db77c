//! Batched reads and writes: a batch is submitted to io_uring in one go (up to [`RING_ENTRIES`] in
//! flight) and reaped together; where io_uring is unavailable — or the file's backend does not hand
//! out a descriptor — the same batch runs as positioned `pread`/`pwrite` calls, one after another.
//! Both paths give the same bytes and the same errors (a read past the end is corruption naming the
//! file and offset), so callers never know which one ran.

use std::cell::RefCell;
use std::sync::OnceLock;

use io_uring::{opcode, types, IoUring};

use super::StorageFile;
use crate::error::{Error, Result};

/// Submission-queue entries of each thread's ring: the deepest queue a batch reaches.
pub const RING_ENTRIES: u32 = 256;

/// How batched I/O is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchIo {
    /// io_uring, one ring per thread.
    Uring,
    /// Positioned calls, one after another.
    Positioned,
}

impl BatchIo {
    /// The name `stats()` reports.
    pub fn name(self) -> &'static str {
        match self {
            BatchIo::Uring => "io_uring",
            BatchIo::Positioned => "pread",
        }
    }
}

/// True when this process can create an io_uring (kernel support, not blocked by seccomp or
/// `io_uring_disabled`). Probed once.
pub(crate) fn uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| IoUring::new(8).is_ok())
}

thread_local! {
    static RING: RefCell<Option<IoUring>> = const { RefCell::new(None) };
}

/// One read of a batch: fill `buf` from `file` at `offset`, at least its first `need` bytes (the
/// rest may lie past the end of the file, as the tail of an aligned direct read does).
#[derive(Debug)]
pub(crate) struct ReadReq<'a> {
    pub file: &'a StorageFile,
    pub offset: u64,
    pub buf: &'a mut [u8],
    pub need: usize,
}

/// One write of a batch: all of `buf` to `file` at `offset`.
#[derive(Debug)]
pub(crate) struct WriteReq<'a> {
    pub file: &'a StorageFile,
    pub offset: u64,
    pub buf: &'a [u8],
}

/// Fills every request's buffer (its first `need` bytes at least). A file that ends before them is
/// corruption.
pub(crate) fn read_batch(how: BatchIo, reqs: &mut [ReadReq<'_>]) -> Result<()> {
    let uring_ok =
        how == BatchIo::Uring && reqs.iter().all(|r| r.file.backend.uring_fd().is_some());
    if !uring_ok || reqs.len() == 1 {
        for r in reqs.iter_mut() {
            r.file.read_at_least(r.buf, r.offset, 0, r.need)?;
        }
        return Ok(());
    }
    let done = with_ring(|ring| {
        for chunk in reqs.chunks_mut(RING_ENTRIES as usize) {
            let entries: Vec<_> = chunk
                .iter_mut()
                .enumerate()
                .map(|(i, r)| {
                    let fd = r.file.backend.uring_fd().expect("checked above");
                    opcode::Read::new(types::Fd(fd), r.buf.as_mut_ptr(), r.buf.len() as u32)
                        .offset(r.offset)
                        .build()
                        .user_data(i as u64)
                })
                .collect();
            let results = submit_all(ring, &entries)?;
            for (i, res) in results.into_iter().enumerate() {
                let r = &mut chunk[i];
                finish(r.file, res, r.need, |done| {
                    r.file
                        .read_at_least(r.buf, r.offset, done, r.need)
                        .map(|_| ())
                })?;
            }
        }
        Ok(())
    });
    match done {
        Some(r) => r,
        None => read_batch(BatchIo::Positioned, reqs),
    }
}

/// Writes every request's buffer.
pub(crate) fn write_batch(how: BatchIo, reqs: &[WriteReq<'_>]) -> Result<()> {
    let uring_ok =
        how == BatchIo::Uring && reqs.iter().all(|r| r.file.backend.uring_fd().is_some());
    if !uring_ok || reqs.len() == 1 {
        for r in reqs {
            r.file.write_all_at(r.buf, r.offset)?;
        }
        return Ok(());
    }
    let done = with_ring(|ring| {
        for chunk in reqs.chunks(RING_ENTRIES as usize) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let fd = r.file.backend.uring_fd().expect("checked above");
                    opcode::Write::new(types::Fd(fd), r.buf.as_ptr(), r.buf.len() as u32)
                        .offset(r.offset)
                        .build()
                        .user_data(i as u64)
                })
                .collect();
            let results = submit_all(ring, &entries)?;
            for (i, res) in results.into_iter().enumerate() {
                let r = &chunk[i];
                finish(r.file, res, r.buf.len(), |done| {
                    r.file.write_all_at(&r.buf[done..], r.offset + done as u64)
                })?;
            }
        }
        Ok(())
    });
    match done {
        Some(r) => r,
        None => write_batch(BatchIo::Positioned, reqs),
    }
}

/// Runs `f` with this thread's ring, creating it on first use; `None` when no ring can be made.
fn with_ring<T>(f: impl FnOnce(&mut IoUring) -> Result<T>) -> Option<Result<T>> {
    RING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = IoUring::new(RING_ENTRIES).ok();
        }
        slot.as_mut().map(f)
    })
}

/// Submits `entries` (at most [`RING_ENTRIES`]), waits for all of them, and returns each one's
/// result in entry order (bytes transferred, or a negative errno).
fn submit_all(ring: &mut IoUring, entries: &[io_uring::squeue::Entry]) -> Result<Vec<i32>> {
    // SAFETY: every entry points at a buffer borrowed by the caller for the whole of this call, and
    // the call does not return before every entry has completed (reaped below), so the kernel never
    // touches a buffer after its borrow ends.
    unsafe {
        ring.submission()
            .push_multiple(entries)
            .expect("a chunk never exceeds the ring");
    }
    let mut results = vec![0i32; entries.len()];
    let mut reaped = 0;
    while reaped < entries.len() {
        match ring.submit_and_wait(entries.len() - reaped) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // The entries may still be in flight: wait them out before the buffers go.
                drain(ring, &mut results, &mut reaped, entries.len());
                return Err(Error::io("io_uring", e));
            }
        }
        for cqe in ring.completion() {
            results[cqe.user_data() as usize] = cqe.result();
            reaped += 1;
        }
    }
    Ok(results)
}

fn drain(ring: &mut IoUring, results: &mut [i32], reaped: &mut usize, total: usize) {
    while *reaped < total {
        if ring.submit_and_wait(1).is_err() {
            // Nothing more can be learned; leak-free only if the kernel completes them later.
            std::thread::yield_now();
        }
        for cqe in ring.completion() {
            results[cqe.user_data() as usize] = cqe.result();
            *reaped += 1;
        }
    }
}

/// Turns one completion into the outcome of its request: an errno is the file's I/O error; a short
/// transfer is completed with positioned calls by `rest(bytes_done)`.
fn finish(
    file: &StorageFile,
    res: i32,
    len: usize,
    rest: impl FnOnce(usize) -> Result<()>,
) -> Result<()> {
    if res < 0 {
        return Err(Error::io(
            &file.path,
            std::io::Error::from_raw_os_error(-res),
        ));
    }
    let done = res as usize;
    if done < len {
        rest(done)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> Vec<BatchIo> {
        let mut v = vec![BatchIo::Positioned];
        if uring_available() {
            v.push(BatchIo::Uring);
        }
        v
    }

    #[test]
    fn batches_read_and_write_the_same_on_both_paths() {
        for how in both() {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f");
            let f = crate::io::create_rw(&p).unwrap();
            let blocks: Vec<Vec<u8>> = (0..300u32)
                .map(|i| vec![(i % 251) as u8; 100 + i as usize])
                .collect();
            let writes: Vec<WriteReq<'_>> = blocks
                .iter()
                .enumerate()
                .map(|(i, b)| WriteReq {
                    file: &f,
                    offset: i as u64 * 1000,
                    buf: b,
                })
                .collect();
            write_batch(how, &writes).unwrap();
            let mut bufs: Vec<Vec<u8>> = blocks.iter().map(|b| vec![0u8; b.len()]).collect();
            let mut reads: Vec<ReadReq<'_>> = bufs
                .iter_mut()
                .enumerate()
                .map(|(i, b)| ReadReq {
                    file: &f,
                    offset: i as u64 * 1000,
                    need: b.len(),
                    buf: b,
                })
                .collect();
            read_batch(how, &mut reads).unwrap();
            assert_eq!(bufs, blocks, "{how:?}");
            // A read past the end is corruption naming the file, on both paths.
            let mut a = vec![0u8; 10];
            let mut b = vec![0u8; 10];
            let mut past = [
                ReadReq {
                    file: &f,
                    offset: 0,
                    buf: &mut a,
                    need: 10,
                },
                ReadReq {
                    file: &f,
                    offset: 10_000_000,
                    buf: &mut b,
                    need: 10,
                },
            ];
            let e = read_batch(how, &mut past).unwrap_err();
            assert!(matches!(e, Error::Corruption { .. }), "{how:?}: {e}");
        }
    }
}
