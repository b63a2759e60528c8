//! `statectl list`, `verify`, `extract`, `pack`: inspecting and rebuilding archives.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::output::without_os_error;
use super::Output;
use crate::archive::streams::HashingReader;
use crate::archive::{
    read_archive, verify::BundleFields, verify_against, CheckOnly, EntryKind, InnerEntry, Level,
    Problem, Visitor,
};
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::archive_path::archive_or_default;
use crate::ops::{extract::extract, pack::pack};
use crate::records::{record::mode_string, RecordTable};

/// List the files inside an archive (both layers)
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Reads ARCHIVE completely (both gzip layers checked to the end) and lists the \
files of its inner local.tgz. With -l: mode, owner, size, mtime; with --json: path, mode, uid, \
gid, size, mtime and the sha256 of each file's content. Changes nothing. ARCHIVE defaults to the \
next-boot bank's state.tgz. An archive verify refuses lists nothing and exits 1; with --partial \
the files read before the problem (the safe regular files) are listed on stdout first, then \
the error, exit 1.",
    after_help = "Examples:\n  statectl list -l\n  statectl list /vmfs/volumes/datastore1/state.tgz --json\n  \
statectl list --partial damaged-state.tgz"
)]
pub struct ListArgs {
    /// The archive [default: the next-boot bank's state.tgz]
    #[arg(value_name = "ARCHIVE")]
    pub archive: Option<PathBuf>,
    /// Long listing: mode, owner, size, mtime
    #[arg(short = 'l', long = "long")]
    pub long: bool,
    /// On an archive verify refuses, list what could be read before failing (exit 1 still)
    #[arg(long)]
    pub partial: bool,
}

pub fn list(host: &Host, out: &Output, args: &ListArgs) -> Result<ExitCode> {
    let archive = archive_or_default(host, args.archive.as_ref())?;
    let mut partial = PartialList::default();
    let visitor: &mut dyn Visitor = if args.partial {
        &mut partial
    } else {
        &mut CheckOnly
    };
    let read = read_archive(&archive, &host.limits, visitor);
    let refused = match read {
        Ok(summary) => match summary.ensure_clean("it is not listed") {
            Ok(()) => {
                for problem in &summary.problems {
                    out.warn(&format!("{}: {}", archive.display(), problem.message));
                }
                if args.long && !out.json {
                    let fields = summary
                        .bundle
                        .as_ref()
                        .map(|b| BundleFields::of(&b.manifest));
                    print_bundle(out, fields.as_ref());
                }
                print_files(out, args.long, &summary.files)?;
                return Ok(Exit::Success.into());
            }
            Err(err) => err,
        },
        Err(err) => err,
    };
    if args.partial {
        print_files(out, args.long, &partial.files)?;
    }
    Err(refused)
}

/// A bundle's `Manifest.txt` fields, one `bundle: KEY=value` line each, as `Manifest.txt`
/// names them.
fn print_bundle(out: &Output, fields: Option<&BundleFields>) {
    let Some(f) = fields else {
        return;
    };
    for (key, value) in [
        ("RELEASELEVEL", &f.releaselevel),
        ("UUID", &f.uuid),
        ("KERNELOPTS", &f.kerneloptions),
        ("USEROPTS", &f.useropts),
    ] {
        out.line(&format!("bundle: {key}={value}"));
    }
}

fn print_files(out: &Output, long: bool, files: &RecordTable) -> Result<()> {
    if out.json {
        return out.json_list(files);
    }
    for file in files.iter() {
        if long {
            out.line(&format!(
                "{} {:>5}/{:<5} {:>10} {} {}",
                mode_string(file.mode),
                file.uid,
                file.gid,
                file.size,
                crate::clock::utc_datetime(file.mtime),
                file.path
            ));
        } else {
            out.line(file.path);
        }
    }
    Ok(())
}

/// Collects the safe regular files as the reader meets them, so `list --partial` has what was
/// read before a fatal problem.
#[derive(Default)]
struct PartialList {
    files: RecordTable,
}

impl Visitor for PartialList {
    fn entry(&mut self, entry: &InnerEntry, data: &mut dyn Read) -> Result<()> {
        let (Ok(path), EntryKind::File, false) = (&entry.path, entry.meta.kind, entry.meta.sparse)
        else {
            return Ok(());
        };
        let mut hashing = HashingReader::new(data);
        std::io::copy(&mut hashing, &mut std::io::sink())?;
        self.files
            .push(&entry.meta.record_ref(path, hashing.digest()));
        Ok(())
    }
}

/// Check an archive: gzip layers, tar structure, names, manifest
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Reads ARCHIVE to its end and reports every problem with a level instead of \
stopping at the first: gzip CRC and length of both layers, tar structure, trailing data, unsafe \
member names, links, devices, setuid bits, duplicates, and mismatches against the statectl.json \
manifest (hash, size, missing or extra members). Changes nothing. Exit 0 when no error-level \
problem was found, else 1.",
    after_help = "Examples:\n  statectl verify\n  statectl verify /mnt/bootbank/state.tgz --json"
)]
pub struct VerifyArgs {
    /// The archive [default: the next-boot bank's state.tgz]
    #[arg(value_name = "ARCHIVE")]
    pub archive: Option<PathBuf>,
}

pub fn verify(host: &Host, out: &Output, args: &VerifyArgs) -> Result<ExitCode> {
    let archive = archive_or_default(host, args.archive.as_ref())?;
    // Member-path warnings need the rules; a broken config must not stop a verify.
    let rules = host.selection().ok();
    let report = verify_against(&archive, &host.limits, rules.as_ref());
    let errors: Vec<&str> = report
        .problems
        .iter()
        .filter(|p| p.level == Level::Error)
        .map(|p| p.message.as_str())
        .collect();
    if out.json {
        out.json(&report)?;
    } else {
        // Each problem once: a lone error is only on the error line on stderr (warnings are
        // listed all the same).
        let listed = errors.len() > 1;
        let shown = |p: &&Problem| p.level == Level::Warning || listed;
        for problem in report.problems.iter().filter(shown) {
            let level = match problem.level {
                Level::Error => "error",
                Level::Warning => "warning",
            };
            out.line(&format!("{level}: {}", without_os_error(&problem.message)));
        }
        print_bundle(out, report.bundle.as_ref());
        if report.ok && !out.quiet {
            out.line(&format!(
                "ok: {} ({} files)",
                archive.display(),
                report.files
            ));
        }
        if !report.ok {
            let what = match errors.as_slice() {
                [only] => without_os_error(only),
                [first, ..] => format!(
                    "{} (one of {} errors, listed above)",
                    without_os_error(first),
                    errors.len()
                ),
                [] => "errors listed above".to_string(),
            };
            out.error(&anyhow::anyhow!(
                "archive `{}` failed verification: {what}",
                archive.display()
            ));
        }
    }
    match report.ok {
        true => Ok(Exit::Success.into()),
        false => Ok(Exit::Failure.into()),
    }
}

/// Unpack an archive's files under a private directory
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Validates every entry of ARCHIVE first, then unpacks its inner files as \
DIR/etc/... with their modes (sticky bit included), mtimes and, as root, numeric owners. DIR is \
created 0700 because archives hold password hashes and private keys. Nothing is ever written \
outside DIR: absolute names, `..`, links, devices and setuid entries refuse the whole archive, \
and no file is written through a symlink. Changes nothing on the bank.",
    after_help = "Examples:\n  statectl extract --to /tmp/state\n  statectl extract /mnt/bootbank/state.tgz --to /tmp/state"
)]
pub struct ExtractArgs {
    /// The archive [default: the next-boot bank's state.tgz]
    #[arg(value_name = "ARCHIVE")]
    pub archive: Option<PathBuf>,
    /// Directory to unpack into (created 0700)
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Unpack into a directory that is not empty (files are replaced)
    #[arg(long)]
    pub force: bool,
}

pub fn extract_cmd(host: &Host, out: &Output, args: &ExtractArgs) -> Result<ExitCode> {
    let archive = archive_or_default(host, args.archive.as_ref())?;
    let report = extract(&archive, &args.to, args.force, &host.limits)?;
    out.warn_all(&report.warnings);
    if out.json {
        out.json(&report)?;
    } else if !out.quiet {
        out.line(&format!(
            "extracted {} files into {}",
            report.files,
            report.dir.display()
        ));
    }
    Ok(Exit::Success.into())
}

/// Build a state.tgz from a directory tree
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Packs the regular files under DIR (named relative to it, e.g. etc/shadow) into \
FILE in the ESXi layout (state.tgz holding local.tgz, plus the statectl.json manifest), keeping \
their modes (sticky bit included), owners and mtimes, deterministically and atomically (temp file, \
fsync, rename). `.#*` branch copies are skipped; symlinks and special files are refused. FILE is \
created 0600. With --like ARCHIVE, FILE gets ARCHIVE's layout: when ARCHIVE is encrypted (ESXi \
7.0 U2+ local.tgz.ve), FILE is encrypted with the same encryption.info and key and a fresh IV. A \
plaintext FILE never replaces an encrypted one.",
    after_help = "Examples:\n  statectl extract --to /tmp/state && vi /tmp/state/etc/hosts\n  \
statectl pack /tmp/state --output /tmp/state.tgz && statectl verify /tmp/state.tgz\n  \
statectl pack /tmp/state --like /bootbank/state.tgz --output /tmp/state.tgz  # keep encryption"
)]
pub struct PackArgs {
    /// The tree to pack (its etc/... become the members)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The archive to write
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Write FILE in ARCHIVE's layout: encrypted with its key store (a fresh IV) if it is
    #[arg(long, value_name = "ARCHIVE")]
    pub like: Option<PathBuf>,
}

pub fn pack_cmd(host: &Host, out: &Output, args: &PackArgs) -> Result<ExitCode> {
    let report = pack(host, &args.dir, &args.output, args.like.as_deref())?;
    if out.json {
        out.json(&report)?;
    } else if !out.quiet {
        out.line(&format!(
            "wrote {} ({} files, {} bytes)",
            report.output.display(),
            report.files,
            report.bytes
        ));
    }
    Ok(Exit::Success.into())
}
