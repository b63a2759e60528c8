//! The inner layer, `local.tgz`: walks its tar entries, checks each (name, kind, mode,
//! duplicates, file-versus-directory conflicts, sparse members), hashes regular files while
//! the visitor reads them, and records what it found.

use std::io::{BufReader, Read};

use super::super::entries::{walk, EntryMeta, Tracked, WalkError};
use super::super::gzip::GzMembers;
use super::super::names::normalize_member_name;
use super::super::streams::{describe_io, drain, Budgeted, HashingReader};
use super::super::{Problem, INNER_NAME};
use super::index::{Conflict, Node};
use super::outer::is_top_directory;
use super::{EntryKind, InnerEntry, ReadState};

impl ReadState<'_> {
    pub(super) fn read_inner(&mut self, data: &mut dyn Read) -> Result<(), WalkError> {
        let format =
            |err: std::io::Error| WalkError::Format(format!("{INNER_NAME}: {}", describe_io(&err)));
        let mut buffered = BufReader::with_capacity(64 << 10, data);
        let gz = GzMembers::new(&mut buffered);
        let limits = self.limits;
        let mut rest = walk(
            Budgeted::new(gz, self.budget.clone()),
            &limits,
            INNER_NAME,
            |meta, content| self.inner_entry(meta, content),
        )?;
        let (_, nonzero) = drain(&mut rest).map_err(format)?;
        if nonzero {
            self.problems.push(Problem::warning(format!(
                "{INNER_NAME}: non-zero data after the end of the tar archive"
            )));
        }
        drop(rest);
        let (trailing, _) = drain(&mut buffered).map_err(format)?;
        if trailing > 0 {
            self.problems.push(Problem::warning(format!(
                "{INNER_NAME}: {trailing} bytes of trailing data after the gzip stream"
            )));
        }
        self.inner_done = true;
        Ok(())
    }

    fn inner_entry(&mut self, meta: &EntryMeta, content: &mut dyn Read) -> Result<(), WalkError> {
        if is_top_directory(meta) {
            return Ok(()); // not shown to the visitor: it names nothing below the root
        }
        let entry = InnerEntry {
            meta: meta.clone(),
            path: normalize_member_name(&meta.raw_name),
        };
        self.check_entry(&entry)?;
        let mut tracked = Tracked::new(content);
        let is_safe_file = entry.path.is_ok() && meta.kind == EntryKind::File && !meta.sparse;
        if !is_safe_file {
            return self.visit(&entry, &mut tracked);
        }
        let mut hashing = match self.check_content {
            true => HashingReader::new(&mut tracked),
            false => HashingReader::counting(&mut tracked),
        };
        let visited = self.visitor.entry(&entry, &mut hashing);
        let drained = visited.and_then(|()| Ok(drain(&mut hashing)?));
        if let Err(err) = drained {
            return Err(tracked.classify(err));
        }
        let sha256 = hashing.digest();
        let path = entry.path.as_deref().unwrap_or_default();
        self.keep_name(path.len()).map_err(WalkError::Format)?;
        self.files.push(&meta.record_ref(path, sha256));
        Ok(())
    }

    fn visit(&mut self, entry: &InnerEntry, tracked: &mut Tracked<'_>) -> Result<(), WalkError> {
        match self.visitor.entry(entry, tracked) {
            Ok(()) => Ok(()),
            Err(err) => Err(tracked.classify(err)),
        }
    }

    fn check_entry(&mut self, entry: &InnerEntry) -> Result<(), WalkError> {
        let meta = &entry.meta;
        let path = match &entry.path {
            Ok(path) => path,
            Err(reason) => {
                self.problems.push(Problem::error(format!(
                    "unsafe member `{}` in {INNER_NAME}: {reason}",
                    entry.name()
                )));
                return Ok(());
            }
        };
        if meta.sparse {
            self.problems.push(Problem::error(format!(
                "`{path}` in {INNER_NAME} is a sparse file (GNU or PAX sparse member), which \
                 statectl does not restore; pack it again without --sparse"
            )));
            return Ok(());
        }
        let node = match meta.kind {
            EntryKind::File => {
                if meta.mode & 0o6000 != 0 {
                    self.problems.push(Problem::error(format!(
                        "`{path}` has the setuid or setgid bit (mode {:04o})",
                        meta.mode
                    )));
                }
                Node::File
            }
            EntryKind::Directory => {
                self.keep_name(path.len()).map_err(WalkError::Format)?;
                self.directories.push(path.clone());
                Node::Directory
            }
            kind => {
                self.problems.push(Problem::error(format!(
                    "`{path}` is {}; only regular files and directories are allowed",
                    kind.describe()
                )));
                Node::File
            }
        };
        match self.index.insert(path, node) {
            Ok(()) => {}
            Err(Conflict::Refused(message)) => self.problems.push(Problem::error(message)),
            Err(Conflict::CaseOnly(message)) => {
                self.case_collision.get_or_insert_with(|| message.clone());
                self.problems.push(Problem::warning(message));
            }
            Err(Conflict::TooManyDirectories(cap)) => {
                return Err(WalkError::Format(format!(
                    "{INNER_NAME}: its names imply more than {cap} directories"
                )))
            }
        }
        Ok(())
    }

    /// After the whole archive: the checks that need all of it.
    pub(super) fn finish_checks(&mut self) {
        if !self.inner_seen {
            self.problems
                .push(Problem::error(format!("state.tgz holds no {INNER_NAME}")));
        }
        self.finish_listed();
        self.finish_bundle();
    }
}
