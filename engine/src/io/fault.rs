//! A fault-injecting storage backend for tests: it writes through to the real files (so memory maps
//! and directory listings see what the engine wrote) and keeps, beside them, a model of what a power
//! cut would leave.
//!
//! The model: each file (inode) has its **durable** bytes — what its last successful `sync_data` made
//! durable — and the list of writes, length changes and preallocations issued since, **pending**.
//! Each directory has its durable entries — what its last `sync_dir` made durable — beside the
//! current ones. [`FaultStorage::write_crash_image`] materialises the state after a simulated crash in
//! another directory: durable entries only (a file whose directory entry was never synced is lost,
//! a rename that was never synced is undone), each with its durable bytes plus the pending changes a
//! [`CrashMode`] keeps: none, all, a random subset of 512-byte sectors (any order), or all but a torn
//! last write.
//!
//! It also injects errors: [`FailRule`] fails the Nth operation of chosen kinds with `EIO` or `ENOSPC`,
//! once or from then on; [`FaultStorage::crash_at_sync`] "cuts the power" when the Nth sync is issued:
//! that sync and every later operation fail with `EIO`, so nothing after the crash reaches the model.
//!
//! Register it for a store directory with [`super::register_storage`]; paths are matched by prefix,
//! so give it the path the store is opened with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::backend::{FileBackend, OpenHow, StorageBackend};

/// The unit a torn or partly lost write is cut into.
pub const SECTOR: u64 = 512;

/// The error an injected failure returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: the file system is full.
    Enospc,
}

impl Fault {
    fn error(self) -> std::io::Error {
        std::io::Error::from_raw_os_error(match self {
            Fault::Eio => libc::EIO,
            Fault::Enospc => libc::ENOSPC,
        })
    }
}

/// Kinds of operation, for counting and for choosing which ones a [`FailRule`] hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `write_at`.
    Write,
    /// `set_len` or `allocate`.
    Resize,
    /// `sync_data` of a file.
    SyncData,
    /// `sync_dir`.
    SyncDir,
    /// Creating a file or directory, renaming, removing.
    Namespace,
}

impl OpKind {
    /// Every kind that changes or syncs storage.
    pub const ALL: &'static [OpKind] = &[
        OpKind::Write,
        OpKind::Resize,
        OpKind::SyncData,
        OpKind::SyncDir,
        OpKind::Namespace,
    ];
    /// The two sync kinds.
    pub const SYNCS: &'static [OpKind] = &[OpKind::SyncData, OpKind::SyncDir];
}

/// Fail operations of `kinds`: the one whose 0-based count among those kinds is `nth`, and with
/// `persistent` every later one too.
#[derive(Clone, Debug)]
pub struct FailRule {
    /// Which operation (0-based, counted over `kinds` only) fails first.
    pub nth: u64,
    /// The error.
    pub fault: Fault,
    /// Keep failing after the first.
    pub persistent: bool,
    /// The kinds counted and failed.
    pub kinds: Vec<OpKind>,
}

/// What a simulated crash keeps of the changes issued since each file's last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing unsynced survives.
    DropUnsynced,
    /// Everything written survives (the page cache reached the disk in time).
    KeepUnsynced,
    /// Each 512-byte sector of each pending write, and each pending length change, survives or not
    /// at random (so any subset, in any order).
    RandomSectors,
    /// Every pending change survives except the last write, which is torn at a random sector
    /// boundary (a prefix of its sectors survives).
    TornLastWrite,
}

impl CrashMode {
    /// Every mode.
    pub const ALL: [CrashMode; 4] = [
        CrashMode::DropUnsynced,
        CrashMode::KeepUnsynced,
        CrashMode::RandomSectors,
        CrashMode::TornLastWrite,
    ];
}

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

fn apply(content: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, bytes } => write_into(content, *offset, bytes),
        Pending::SetLen(len) => content.resize(*len as usize, 0),
    }
}

fn write_into(content: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset as usize..end].copy_from_slice(bytes);
}

/// `bytes` written at `offset`, cut at sector boundaries of the file.
fn sectors(offset: u64, bytes: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let pos = offset + at as u64;
        let room = (SECTOR - pos % SECTOR) as usize;
        let n = room.min(bytes.len() - at);
        out.push((pos, &bytes[at..at + n]));
        at += n;
    }
    out
}

/// A small deterministic generator (SplitMix64), so that a crash image is a function of its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    /// Current file entries under the root.
    names: BTreeMap<PathBuf, usize>,
    /// File entries a crash keeps.
    durable_names: BTreeMap<PathBuf, usize>,
    /// Directories created through this backend that exist now.
    dirs: BTreeSet<PathBuf>,
    /// Directories created through this backend whose entry a crash keeps.
    durable_dirs: BTreeSet<PathBuf>,
    /// Every directory ever created through this backend (others existed before: durable).
    created_dirs: BTreeSet<PathBuf>,
    counts: HashMap<OpKind, u64>,
    /// Operations counted by the fail rule.
    rule_count: u64,
    rule: Option<FailRule>,
    rule_fired: bool,
    injected: u64,
    crash_at_sync: Option<u64>,
    crashed: bool,
}

impl State {
    /// With `TIERKV_FAULT_TRACE` set, prints each sync and rename with its number (debugging aid).
    fn trace(&self, what: &str, path: &Path) {
        if std::env::var_os("TIERKV_FAULT_TRACE").is_some() {
            let n = self.count(OpKind::SyncData) + self.count(OpKind::SyncDir);
            eprintln!("fault: sync#{n} {what} {}", path.display());
        }
    }

    fn count(&self, kind: OpKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Counts an operation and decides whether it fails.
    fn admit(&mut self, kind: OpKind) -> std::io::Result<()> {
        if self.crashed {
            return Err(Fault::Eio.error());
        }
        if matches!(kind, OpKind::SyncData | OpKind::SyncDir) {
            let n = self.count(OpKind::SyncData) + self.count(OpKind::SyncDir) + 1;
            if self.crash_at_sync == Some(n) {
                self.crashed = true;
                return Err(Fault::Eio.error());
            }
        }
        *self.counts.entry(kind).or_default() += 1;
        if let Some(rule) = &self.rule {
            if rule.kinds.contains(&kind) {
                let n = self.rule_count;
                self.rule_count += 1;
                if n == rule.nth || (rule.persistent && self.rule_fired) {
                    self.rule_fired = true;
                    self.injected += 1;
                    return Err(rule.fault.error());
                }
            }
        }
        Ok(())
    }

    /// The inode of `path`, adopting a file that existed before this backend saw it (its bytes are
    /// taken as durable).
    fn inode_of(&mut self, path: &Path) -> std::io::Result<usize> {
        if let Some(&i) = self.names.get(path) {
            return Ok(i);
        }
        let bytes = std::fs::read(path)?;
        let i = self.inodes.len();
        self.inodes.push(Inode {
            durable: bytes,
            pending: Vec::new(),
        });
        self.names.insert(path.to_path_buf(), i);
        self.durable_names.insert(path.to_path_buf(), i);
        Ok(i)
    }
}

/// The fault-injecting backend (see the module documentation).
#[derive(Debug)]
pub struct FaultStorage {
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

impl FaultStorage {
    /// A backend for the files under `root` (which must exist).
    pub fn new(root: &Path) -> Arc<FaultStorage> {
        Arc::new(FaultStorage {
            root: root.to_path_buf(),
            state: Arc::default(),
        })
    }

    /// Installs a failure rule (replacing any earlier one); its count starts now.
    pub fn fail(&self, rule: FailRule) {
        let mut s = self.state.lock();
        s.rule = Some(rule);
        s.rule_count = 0;
        s.rule_fired = false;
    }

    /// Removes the failure rule.
    pub fn clear_failures(&self) {
        self.state.lock().rule = None;
    }

    /// Cuts the power when the `n`-th sync (1-based, files and directories together, counted from
    /// the backend's creation) is issued.
    pub fn crash_at_sync(&self, n: u64) {
        self.state.lock().crash_at_sync = Some(n);
    }

    /// Cuts the power now.
    pub fn crash_now(&self) {
        self.state.lock().crashed = true;
    }

    /// Whether the power was cut.
    pub fn crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Operations of `kind` admitted so far.
    pub fn count(&self, kind: OpKind) -> u64 {
        self.state.lock().count(kind)
    }

    /// Syncs (files and directories) admitted so far.
    pub fn syncs(&self) -> u64 {
        let s = self.state.lock();
        s.count(OpKind::SyncData) + s.count(OpKind::SyncDir)
    }

    /// Failures injected by the rule so far.
    pub fn injected(&self) -> u64 {
        self.state.lock().injected
    }

    /// Writes the files a crash now would leave into `target` (created if missing), mapping the
    /// root to `target`. `seed` drives the random modes.
    pub fn write_crash_image(
        &self,
        target: &Path,
        mode: CrashMode,
        seed: u64,
    ) -> std::io::Result<()> {
        let s = self.state.lock();
        let mut rng = Rng(seed);
        std::fs::create_dir_all(target)?;
        let dir_survives = |dir: &Path| {
            dir.ancestors()
                .take_while(|a| a.starts_with(&self.root) && *a != self.root)
                .all(|a| !s.created_dirs.contains(a) || s.durable_dirs.contains(a))
        };
        for dir in &s.durable_dirs {
            if dir_survives(dir) {
                std::fs::create_dir_all(target.join(dir.strip_prefix(&self.root).unwrap_or(dir)))?;
            }
        }
        for (path, &ino) in &s.durable_names {
            let parent = path.parent().unwrap_or(&self.root);
            if !dir_survives(parent) {
                continue;
            }
            let inode = &s.inodes[ino];
            let mut content = inode.durable.clone();
            let last_write = inode
                .pending
                .iter()
                .rposition(|p| matches!(p, Pending::Write { .. }));
            for (i, p) in inode.pending.iter().enumerate() {
                match (mode, p) {
                    (CrashMode::DropUnsynced, _) => {}
                    (CrashMode::KeepUnsynced, _) => apply(&mut content, p),
                    (CrashMode::RandomSectors, Pending::Write { offset, bytes }) => {
                        for (at, piece) in sectors(*offset, bytes) {
                            if rng.coin() {
                                write_into(&mut content, at, piece);
                            }
                        }
                    }
                    (CrashMode::RandomSectors, Pending::SetLen(_)) => {
                        if rng.coin() {
                            apply(&mut content, p);
                        }
                    }
                    (CrashMode::TornLastWrite, Pending::Write { offset, bytes })
                        if Some(i) == last_write =>
                    {
                        let cut = sectors(*offset, bytes);
                        let keep = (rng.next() % (cut.len() as u64 + 1)) as usize;
                        for (at, piece) in &cut[..keep] {
                            write_into(&mut content, *at, piece);
                        }
                    }
                    (CrashMode::TornLastWrite, _) => apply(&mut content, p),
                }
            }
            let out = target.join(path.strip_prefix(&self.root).unwrap_or(path));
            if let Some(d) = out.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(out, content)?;
        }
        Ok(())
    }
}

/// One open file of a [`FaultStorage`].
#[derive(Debug)]
struct FaultFile {
    file: File,
    path: PathBuf,
    inode: usize,
    state: Arc<Mutex<State>>,
}

impl FileBackend for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.file.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<usize> {
        let mut s = self.state.lock();
        s.admit(OpKind::Write)?;
        let n = self.file.write_at(buf, offset)?;
        s.inodes[self.inode].pending.push(Pending::Write {
            offset,
            bytes: buf[..n].to_vec(),
        });
        Ok(n)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::SyncData)?;
        s.trace("sync_data", &self.path);
        self.file.sync_data()?;
        let inode = &mut s.inodes[self.inode];
        let pending = std::mem::take(&mut inode.pending);
        for p in &pending {
            apply(&mut inode.durable, p);
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Resize)?;
        self.file.set_len(len)?;
        s.inodes[self.inode].pending.push(Pending::SetLen(len));
        Ok(())
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn allocate(&self, len: u64) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Resize)?;
        let now = self.file.metadata()?.len();
        if len > now {
            self.file.set_len(len)?;
            s.inodes[self.inode].pending.push(Pending::SetLen(len));
        }
        Ok(())
    }
    fn map_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    fn uring_fd(&self) -> Option<RawFd> {
        None
    }
}

impl StorageBackend for FaultStorage {
    fn open(&self, path: &Path, how: OpenHow) -> std::io::Result<Box<dyn FileBackend>> {
        let mut s = self.state.lock();
        let exists = s.names.contains_key(path) || path.exists();
        if how.write && (how.truncate || (how.create && !exists)) {
            s.admit(OpKind::Namespace)?;
        }
        // Direct I/O is not modelled: the file is opened buffered (reads see the same bytes).
        let file = OpenOptions::new()
            .read(true)
            .write(how.write)
            .create(how.create)
            .truncate(how.truncate)
            .open(path)?;
        let inode = if exists {
            s.inode_of(path)?
        } else {
            let i = s.inodes.len();
            s.inodes.push(Inode::default());
            s.names.insert(path.to_path_buf(), i);
            i
        };
        if how.truncate {
            s.inodes[inode].pending.push(Pending::SetLen(0));
        }
        Ok(Box::new(FaultFile {
            file,
            path: path.to_path_buf(),
            inode,
            state: self.state.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Namespace)?;
        s.trace("rename", to);
        let ino = s.inode_of(from)?;
        std::fs::rename(from, to)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Namespace)?;
        std::fs::remove_file(path)?;
        s.names.remove(path);
        Ok(())
    }
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Namespace)?;
        std::fs::create_dir(path)?;
        s.dirs.insert(path.to_path_buf());
        s.created_dirs.insert(path.to_path_buf());
        Ok(())
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::SyncDir)?;
        s.trace("sync_dir", path);
        File::open(path)?.sync_all()?;
        let in_dir = |p: &Path| p.parent() == Some(path);
        // File entries directly in `path` become what they are now.
        s.durable_names.retain(|p, _| !in_dir(p));
        let now: Vec<(PathBuf, usize)> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        s.durable_names.extend(now);
        // Subdirectory entries too: a removed one takes its durable contents with it.
        let gone: Vec<PathBuf> = s
            .durable_dirs
            .iter()
            .filter(|d| in_dir(d) && !s.dirs.contains(*d))
            .cloned()
            .collect();
        for d in gone {
            s.durable_dirs.retain(|x| !x.starts_with(&d));
            s.durable_names.retain(|x, _| !x.starts_with(&d));
        }
        let created: Vec<PathBuf> = s.dirs.iter().filter(|d| in_dir(d)).cloned().collect();
        s.durable_dirs.extend(created);
        Ok(())
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        let mut s = self.state.lock();
        s.admit(OpKind::Namespace)?;
        std::fs::remove_dir_all(path)?;
        s.names.retain(|p, _| !p.starts_with(path));
        s.dirs.retain(|d| !d.starts_with(path));
        // A directory that existed before this backend saw it is modelled from now on, so that
        // its removal becomes durable only with its parent's sync.
        if !s.created_dirs.contains(path) {
            s.created_dirs.insert(path.to_path_buf());
            s.durable_dirs.insert(path.to_path_buf());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> (tempfile::TempDir, Arc<FaultStorage>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let fs = FaultStorage::new(&root);
        (dir, fs)
    }

    fn root(d: &tempfile::TempDir) -> PathBuf {
        d.path().canonicalize().unwrap()
    }

    #[test]
    fn unsynced_writes_and_unsynced_entries_are_lost() {
        let (d, fs) = storage();
        let r = root(&d);
        let f = fs.open(&r.join("a"), OpenHow::CREATE).unwrap();
        f.write_at(b"durable", 0).unwrap();
        f.sync_data().unwrap();
        // The data is synced but the directory entry is not: a crash loses the file.
        let img = tempfile::tempdir().unwrap();
        fs.write_crash_image(img.path(), CrashMode::KeepUnsynced, 1)
            .unwrap();
        assert!(!img.path().join("a").exists());
        fs.sync_dir(&r).unwrap();
        f.write_at(b"-later", 7).unwrap();
        let img = tempfile::tempdir().unwrap();
        fs.write_crash_image(img.path(), CrashMode::DropUnsynced, 1)
            .unwrap();
        assert_eq!(std::fs::read(img.path().join("a")).unwrap(), b"durable");
        let img = tempfile::tempdir().unwrap();
        fs.write_crash_image(img.path(), CrashMode::KeepUnsynced, 1)
            .unwrap();
        assert_eq!(
            std::fs::read(img.path().join("a")).unwrap(),
            b"durable-later"
        );
    }

    #[test]
    fn unsynced_rename_is_undone() {
        let (d, fs) = storage();
        let r = root(&d);
        for (name, text) in [("cur", &b"old"[..]), ("cur.tmp", b"new")] {
            let f = fs.open(&r.join(name), OpenHow::CREATE).unwrap();
            f.write_at(text, 0).unwrap();
            f.sync_data().unwrap();
        }
        fs.sync_dir(&r).unwrap();
        fs.rename(&r.join("cur.tmp"), &r.join("cur")).unwrap();
        let img = tempfile::tempdir().unwrap();
        fs.write_crash_image(img.path(), CrashMode::KeepUnsynced, 1)
            .unwrap();
        assert_eq!(std::fs::read(img.path().join("cur")).unwrap(), b"old");
        fs.sync_dir(&r).unwrap();
        let img = tempfile::tempdir().unwrap();
        fs.write_crash_image(img.path(), CrashMode::KeepUnsynced, 1)
            .unwrap();
        assert_eq!(std::fs::read(img.path().join("cur")).unwrap(), b"new");
        assert!(!img.path().join("cur.tmp").exists());
    }

    #[test]
    fn random_and_torn_modes_keep_sector_pieces() {
        let (d, fs) = storage();
        let r = root(&d);
        let f = fs.open(&r.join("f"), OpenHow::CREATE).unwrap();
        f.set_len(4096).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&r).unwrap();
        f.write_at(&[7u8; 4096], 0).unwrap();
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            for mode in [CrashMode::RandomSectors, CrashMode::TornLastWrite] {
                let img = tempfile::tempdir().unwrap();
                fs.write_crash_image(img.path(), mode, seed).unwrap();
                let bytes = std::fs::read(img.path().join("f")).unwrap();
                assert_eq!(bytes.len(), 4096);
                for sector in bytes.chunks(SECTOR as usize) {
                    // Whole sectors only: never a sector half old, half new.
                    assert!(sector.iter().all(|&b| b == sector[0]), "{mode:?}");
                }
                let new = bytes.chunks(512).filter(|s| s[0] == 7).count();
                if mode == CrashMode::TornLastWrite {
                    let prefix = bytes.chunks(512).take_while(|s| s[0] == 7).count();
                    assert_eq!(prefix, new, "a torn write keeps a prefix");
                }
                seen.insert(new);
            }
        }
        assert!(seen.contains(&0) || seen.contains(&8));
        assert!(seen.len() > 3, "{seen:?}");
    }

    #[test]
    fn fail_rule_hits_the_nth_operation_once_or_for_good() {
        let (d, fs) = storage();
        let r = root(&d);
        let f = fs.open(&r.join("f"), OpenHow::CREATE).unwrap();
        fs.fail(FailRule {
            nth: 1,
            fault: Fault::Enospc,
            persistent: false,
            kinds: vec![OpKind::Write],
        });
        f.write_at(b"a", 0).unwrap();
        let e = f.write_at(b"b", 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        f.write_at(b"c", 1).unwrap();
        f.sync_data().unwrap();
        fs.fail(FailRule {
            nth: 0,
            fault: Fault::Eio,
            persistent: true,
            kinds: OpKind::SYNCS.to_vec(),
        });
        f.write_at(b"d", 2).unwrap();
        for _ in 0..3 {
            assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
        }
        assert_eq!(fs.injected(), 4);
        assert_eq!(std::fs::read(r.join("f")).unwrap(), b"acd");
    }

    #[test]
    fn crash_at_sync_stops_everything_after_it() {
        let (d, fs) = storage();
        let r = root(&d);
        fs.crash_at_sync(2);
        let f = fs.open(&r.join("f"), OpenHow::CREATE).unwrap();
        f.write_at(b"one", 0).unwrap();
        f.sync_data().unwrap();
        f.write_at(b"two", 3).unwrap();
        assert!(fs.sync_dir(&r).is_err());
        assert!(fs.crashed());
        assert!(f.write_at(b"three", 6).is_err());
        assert_eq!(fs.syncs(), 1);
    }
}
