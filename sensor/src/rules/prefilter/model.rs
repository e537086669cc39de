//! The agent's model of the kernel's check (`sensor-ebpf/src/file/filter.rs`)
//! over [`Tables`]: the same key and hash steps (`sensor_common::prefilter`),
//! so the property test (`tests/prefilter_proptest.rs`) checks the kernel's
//! verdicts against the full evaluator.

use sensor_common::prefilter::{
    fill_first_key, fill_path_key, first_component_at, fold_key, forms, gram_hit, name_hashes,
    name_shape, op_bit, plain_name, proc_name_hash, proc_window, tail_window, NameHashes, NameScan,
    NameShape, DATA_LEN, GATE_COMPONENT_READ, GATE_KEY, KEY_DATA, PROC_WINDOW, PROC_WINDOW_ROOM,
    SHAPE_MAX, TAIL, TAIL_ROOM,
};
use sensor_common::{file_op, FILE_NAME_AT, FILE_OLD_PATH_AT, FILE_PATH_MAX};

use crate::kernel::file_filter::Tables;

impl Tables {
    /// The model of the kernel's exec step (`file_filter::on_exec`): the
    /// verdict a process gets from its executed file's name (`name`: the
    /// first component of the kernel's walk of `binprm->file`, `None` when
    /// the walk did not finish): the operations its name passes, or `None`
    /// (no entry: it passes everything).
    pub fn proc_verdict(&self, name: Option<&[u8]>) -> Option<u32> {
        let name = name.filter(|n| (1..PROC_WINDOW).contains(&n.len()))?;
        let mut w = [0u8; PROC_WINDOW_ROOM];
        let (n, to) = proc_window(name.len());
        w[to..to + n].copy_from_slice(name);
        let (h, hf) = proc_name_hash(&w);
        let mask = |h| self.procs.get(&h).copied().unwrap_or(0);
        Some(mask(h) | mask(hf))
    }

    /// [`Tables::passes_process`] for a process whose name no rule names.
    pub fn passes(
        &self,
        op: u32,
        walk: Option<&[u8]>,
        old_walk: Option<&[u8]>,
        names: bool,
    ) -> bool {
        self.passes_process(op, Some(0), walk, old_walk, names)
    }

    /// The model of the kernel check (`sensor-ebpf/src/file/filter.rs`):
    /// whether a record of `op` by a process with verdict `proc` (see
    /// [`Tables::proc_verdict`]) with these walked paths (`None`: not
    /// walked whole) is sent. `names` is a record carrying names as the
    /// process passed them (syscall tracepoints for unlink and rename).
    pub fn passes_process(
        &self,
        op: u32,
        proc: Option<u32>,
        walk: Option<&[u8]>,
        old_walk: Option<&[u8]>,
        names: bool,
    ) -> bool {
        if !self.on.contains(&op) {
            return true;
        }
        // No rule names processes: names play no part (`PROC_NONE`).
        if !self.procs.is_empty() && proc.is_none_or(|mask| mask & op_bit(op) != 0) {
            return true;
        }
        let Some(walk) = walk else { return true };
        if names || (op == file_op::RENAME && old_walk.is_none()) {
            return true;
        }
        // The gate, before the walk (the kernel's `gate_drops_walk`: opens,
        // creations and BPF LSM / fentry deletions; a rename is walked in
        // two halves and not gated). A walk of the root has no first
        // component: not gated.
        if let Some(first) = outermost(walk).filter(|_| op != file_op::RENAME) {
            let leaf = walk.split(|b| *b == 0).next().unwrap_or_default();
            if self.gated.contains(&op) && !self.gate_keeps(op, leaf, first) {
                return false;
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        let new = self.matches::<0>(&mut data, walk, op);
        new || (op == file_op::RENAME
            && old_walk.is_some_and(|old| self.matches::<FILE_OLD_PATH_AT>(&mut data, old, op)))
    }

    /// The model of the kernel check of a syscall-tracepoint record (names
    /// as the process passed them, `FILE_NAMES`; `dir` the walked
    /// directory, `None`: not whole; `name`/`old_name` the names' bytes
    /// without their NUL, `None`: not read whole): checked like a walk
    /// when every name is plain, sent unchecked otherwise.
    pub fn passes_names(
        &self,
        op: u32,
        proc: Option<u32>,
        dir: Option<&[u8]>,
        name: Option<&[u8]>,
        old_name: Option<&[u8]>,
    ) -> bool {
        if !self.on.contains(&op) {
            return true;
        }
        if !self.procs.is_empty() && proc.is_none_or(|mask| mask & op_bit(op) != 0) {
            return true;
        }
        let (Some(dir), Some(name)) = (dir, name) else {
            return true;
        };
        // The gate (the kernel's `gate_drops_names`), before the names'
        // directory is walked: every name must be dropped.
        if self.gated.contains(&op) && (op != file_op::RENAME || old_name.is_some()) {
            let dir_first = outermost(dir);
            let keeps = |n: &[u8]| self.name_keeps(op, n, dir_first);
            let dropped = !keeps(name) && old_name.is_none_or(|o| !keeps(o));
            if dropped {
                return false;
            }
        }
        let mut data = vec![0u8; DATA_LEN];
        let mut joined = |at: usize, name: &[u8]| -> Option<bool> {
            let nl = name.len() + 1;
            if !(2..=255).contains(&nl) || nl + dir.len() >= FILE_PATH_MAX {
                return None;
            }
            let mut walk = name.to_vec();
            walk.push(0);
            walk.extend_from_slice(dir);
            if at == 0 {
                self.check::<0, true>(&mut data, &walk, op)
            } else {
                self.check::<FILE_OLD_PATH_AT, true>(&mut data, &walk, op)
            }
        };
        let Some(new) = joined(0, name) else {
            return true;
        };
        if op != file_op::RENAME {
            return new;
        }
        let Some(old) = old_name.and_then(|o| joined(FILE_OLD_PATH_AT, o)) else {
            return true;
        };
        new || old
    }

    /// The kernel's `gate_keeps`: a basename (`leaf`) and a first
    /// component (`first`, cut at `GATE_COMPONENT_READ` bytes as the
    /// kernel reads it) that some atom of `op` could still match.
    fn gate_keeps(&self, op: u32, leaf: &[u8], first: &[u8]) -> bool {
        let mut data = [0u8; DATA_LEN];
        let n = leaf.len().min(SHAPE_MAX - 1);
        data[..n].copy_from_slice(&leaf[..n]);
        let mut scan = NameScan::default();
        let hashes = name_hashes::<0>(&data, 1, op, &mut scan);
        if self.names_hit(&hashes) {
            return true;
        }
        let mut key = [0u8; GATE_KEY];
        let n = first.len().min(GATE_COMPONENT_READ);
        key[0] = op as u8;
        key[1..1 + n].copy_from_slice(&first[..n]);
        let hit = |key: &[u8]| self.first.iter().any(|e| key.starts_with(e));
        if hit(&key[..n + 2]) {
            return true;
        }
        if self.forms_of(op) & forms::FOLD_PATHS == 0 {
            return false;
        }
        fold_key(&mut key);
        hit(&key[..n + 2])
    }

    /// The kernel's `names_hit`.
    fn names_hit(&self, h: &NameHashes) -> bool {
        let hit = |x: Option<u64>| x.is_some_and(|h| self.names.contains(&h));
        hit(h.name) || hit(h.ext)
    }

    /// The kernel's `name_keeps`: a name the process passed, relative to
    /// a directory whose first component is `dir_first` (`None`: the
    /// root).
    fn name_keeps(&self, op: u32, name: &[u8], dir_first: Option<&[u8]>) -> bool {
        if name.len() >= SHAPE_MAX || name.contains(&0) {
            return true;
        }
        let mut data = Box::new([0u8; DATA_LEN]);
        data[FILE_NAME_AT..FILE_NAME_AT + name.len()].copy_from_slice(name);
        let mut s = NameShape::default();
        if !name_shape::<FILE_NAME_AT>(&data, &mut s) {
            return true;
        }
        let (n, leaf, first_end) = (s.n as usize, s.leaf as usize, s.first_end as usize);
        let abs = name.first() == Some(&b'/');
        let first = match dir_first {
            Some(d) if !abs => d,
            _ => &name[abs as usize..first_end],
        };
        self.gate_keeps(op, &name[leaf..n], first)
    }

    fn matches<const AT: usize>(&self, data: &mut [u8], walk: &[u8], op: u32) -> bool {
        self.check::<AT, false>(data, walk, op) != Some(false)
    }

    /// The kernel's `matches`: `PLAIN` requires the first component to be
    /// a plain name (`None` when it is not).
    fn check<const AT: usize, const PLAIN: bool>(
        &self,
        data: &mut [u8],
        walk: &[u8],
        op: u32,
    ) -> Option<bool> {
        let len = walk.len().min(FILE_PATH_MAX - 1);
        data[AT..AT + len].copy_from_slice(&walk[..len]);
        let Ok(data): Result<&[u8; DATA_LEN], _> = (&*data).try_into() else {
            return Some(true);
        };
        let mut scan = NameScan::default();
        let hashes = name_hashes::<AT>(data, len, op, &mut scan);
        if PLAIN && !plain_name(&scan, data[AT], data[AT + 1]) {
            return None;
        }
        if self.names_hit(&hashes) {
            return Some(true);
        }
        let mut tail = [0u8; TAIL_ROOM];
        let (from, to, n) = tail_window(len);
        tail[to..to + n].copy_from_slice(&data[AT + from..AT + from + n]);
        let mut key = [0u8; KEY_DATA];
        fill_path_key(&tail, op, &mut key);
        // LPM: some entry is a prefix of the full-length key.
        if self.paths.iter().any(|e| key.starts_with(e)) {
            return Some(true);
        }
        let start = first_component_at(&tail, &mut scan);
        fill_first_key(&tail, start, op, &mut key);
        if self.paths.iter().any(|e| key.starts_with(e)) {
            return Some(true);
        }
        let forms = self.forms_of(op);
        if forms & forms::FOLD_PATHS != 0 {
            fold_key(&mut key);
            if self.paths.iter().any(|e| key.starts_with(e)) {
                return Some(true);
            }
            fill_path_key(&tail, op, &mut key);
            fold_key(&mut key);
            if self.paths.iter().any(|e| key.starts_with(e)) {
                return Some(true);
            }
        }
        if forms & forms::GRAMS != 0 {
            if len > TAIL {
                return Some(true);
            }
            return Some(self.grams.get(&op).is_none_or(|bits| gram_hit(&tail, bits)));
        }
        Some(false)
    }
}

/// The outermost component of a walk (its last one); `None` for the
/// root's empty walk.
pub(super) fn outermost(walk: &[u8]) -> Option<&[u8]> {
    let body = walk.strip_suffix(&[0])?;
    body.rsplit(|b| *b == 0).next()
}

/// A path in the kernel walk's form: components innermost first, each
/// NUL-terminated (what `kernel::decode::cwd_from_components` reverses).
pub fn walk_form(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    let body = path.strip_prefix(b"/").unwrap_or(path);
    if body.is_empty() {
        return out;
    }
    for c in body.rsplit(|b| *b == b'/') {
        out.extend_from_slice(c);
        out.push(0);
    }
    out
}
