//! The manifest against what `local.tgz` really holds, one manifest record at a time: records
//! are checked as the manifest streams by (it normally follows `local.tgz`) and then dropped;
//! only a manifest that comes first has its records kept until the files are known.

use super::super::{Problem, INNER_NAME, MANIFEST_NAME};
use super::ReadState;
use crate::records::{hex, FileRecord};

/// Comparison state: the files sorted by path (indices), which of them the manifest listed,
/// and the records of a manifest read before `local.tgz`.
#[derive(Default)]
pub(super) struct Listed {
    by_path: Vec<u32>,
    listed: Vec<bool>,
    early: Vec<FileRecord>,
    /// The first difference between the manifest and the files.
    first_mismatch: Option<String>,
    /// The manifest was set aside for not matching.
    stale: bool,
}

impl ReadState<'_> {
    /// Takes one manifest record: checked now when `local.tgz` was read, else kept for
    /// [`Self::finish_listed`].
    pub(super) fn manifest_record(&mut self, record: FileRecord) -> Result<(), String> {
        if !self.inner_done {
            self.keep_name(record.path.len())?;
            self.listed.early.push(record);
            return Ok(());
        }
        self.check_record(&record);
        Ok(())
    }

    fn check_record(&mut self, expected: &FileRecord) {
        if self.listed.listed.len() != self.files.len() {
            self.index_files();
        }
        let files = &self.files;
        let found = self
            .listed
            .by_path
            .binary_search_by(|&at| files.path(at as usize).cmp(&expected.path));
        let Ok(at) = found.map(|pos| self.listed.by_path[pos] as usize) else {
            self.mismatch(format!(
                "`{}` is in the manifest but not in {INNER_NAME}",
                expected.path
            ));
            return;
        };
        if std::mem::replace(&mut self.listed.listed[at], true) {
            self.mismatch(format!(
                "`{}` is listed twice in the manifest",
                expected.path
            ));
            return;
        }
        let record = self.files.get(at);
        let sha256 = hex(&record.sha256);
        let problem = if expected.sha256 != sha256 || expected.size != record.size {
            format!(
                "`{}`: content does not match the manifest (sha256 {} size {}, manifest says {} size {})",
                record.path, sha256, record.size, expected.sha256, expected.size
            )
        } else if (expected.mode, expected.uid, expected.gid, expected.mtime)
            != (record.mode, record.uid, record.gid, record.mtime)
        {
            format!(
                "`{}`: mode, owner or mtime does not match the manifest",
                record.path
            )
        } else {
            return;
        };
        self.mismatch(problem);
    }

    fn index_files(&mut self) {
        let files = &self.files;
        let mut by_path: Vec<u32> = (0..files.len() as u32).collect();
        by_path.sort_unstable_by(|&a, &b| files.path(a as usize).cmp(files.path(b as usize)));
        self.listed.by_path = by_path;
        self.listed.listed = vec![false; files.len()];
    }

    /// After the whole archive: checks a manifest that came first, then names every file the
    /// manifest did not list.
    pub(super) fn finish_listed(&mut self) {
        if !self.manifest_seen || self.manifest.is_none() {
            return;
        }
        for record in std::mem::take(&mut self.listed.early) {
            self.check_record(&record);
        }
        if self.listed.listed.len() != self.files.len() {
            self.index_files();
        }
        for at in 0..self.files.len() {
            if !self.listed.listed[at] {
                let path = self.files.path(at);
                let message = format!("`{path}` is in {INNER_NAME} but not in the manifest");
                self.mismatch(message);
            }
        }
        self.drop_stale_manifest();
    }

    /// Notes a difference between the manifest and `local.tgz`; the first one is kept.
    fn mismatch(&mut self, message: String) {
        self.listed.first_mismatch.get_or_insert(message);
    }

    /// A manifest that does not match is statectl's note gone stale (the classic hand edit:
    /// extract both members, edit, tar them again), never ESXi's: ESXi ignores it, so the
    /// archive is read as one without a manifest, with one warning naming the first mismatch.
    fn drop_stale_manifest(&mut self) {
        let Some(first) = self.listed.first_mismatch.take() else {
            return;
        };
        self.manifest = None;
        self.listed.stale = true;
        self.problems.push(Problem::warning(format!(
            "{MANIFEST_NAME} does not match {INNER_NAME} ({first}); the archive is read as one \
             without a manifest (ESXi ignores it too); to fix it, pack the files again with \
             `statectl pack`, or drop {MANIFEST_NAME} from the archive"
        )));
    }

    /// The manifest did not match `local.tgz` and was set aside.
    pub(super) fn stale_manifest(&self) -> bool {
        self.listed.stale
    }
}
