//! Global-table pages (placeholder while the format lands).
/// Size of one global-table page.
pub const PAGE_SIZE: usize = 4096;
