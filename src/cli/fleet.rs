//! `statectl history DIR` and `statectl drift DIR`: read a store of off-host copies (see
//! `backup --copy-to`) for many hosts at once.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::Output;
use crate::exit::Exit;
use crate::host::Host;
use crate::ops::fleet::drift::{drift, Content, DriftReport};
use crate::ops::fleet::history::{history, HostHistory};

/// Per host of a copy directory: each copy, and what changed from the one before, newest first
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Reads every host directory of DIR (the directory backup --copy-to writes: \
DIR/<host id>/configBundle-<host>-<stamp>.tgz) and shows, per host, each copy (time, build, \
number of files, sha256 and size of the bundle) and the paths added, modified and removed since \
the copy before it, newest first. Every bundle is read through the hardened reader: a copy it \
refuses is a warning and is skipped. Reads one host at a time. Exit 0.",
    after_help = "Examples:\n  statectl history /vmfs/volumes/shared/statectl\n  \
statectl history /vmfs/volumes/shared/statectl --host esx01 --json"
)]
pub struct HistoryArgs {
    /// The copy directory (one subdirectory per host)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Only this host (its directory name, the host UUID, or its host name)
    #[arg(long, value_name = "ID")]
    pub host: Option<String>,
}

/// Compare the newest copy of every host in a copy directory: which hosts differ, per file
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Reads the newest copy of every host in DIR and, for every persisted file held \
by two or more hosts, groups the hosts by content (the largest group first: the hosts of the \
other groups differ from the most common one). etc/vmware/esx.conf is compared key by key \
(a key one host lacks counts as a difference), leaving out the identity keys (/system/uuid, \
/adv/Misc/HostName, /adv/Misc/HostIPAddr, /adv/Net/ManagementAddr, \
/net/vmkernelnic/child[*]/ipv4*, /net/pnic/child[*]/mac). Files that are per-host by nature are \
ignored: etc/ssh/*key*, etc/vmware/ssl/*, etc/random-seed, etc/dhclient*.leases, \
etc/vmware/.backup.counter and the ConfigStore files. A copy the hardened reader refuses is a \
warning; that host is left out and the others are compared. Exit 0 when all agree, 3 when \
something drifts, 1 on error.",
    after_help = "Examples:\n  statectl drift /vmfs/volumes/shared/statectl\n  \
statectl drift /vmfs/volumes/shared/statectl --ignore 'etc/motd' --ignore '/adv/UserVars/*' --json"
)]
pub struct DriftArgs {
    /// The copy directory (one subdirectory per host)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also ignore the files matching GLOB (root-relative), or with a leading / the esx.conf keys
    #[arg(long, value_name = "GLOB")]
    pub ignore: Vec<String>,
}

pub fn history_cmd(host: &Host, out: &Output, args: &HistoryArgs) -> Result<ExitCode> {
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    // The JSON document is opened with its first host, so an unreadable DIR prints none.
    let mut opened = false;
    let mut each = |entry: HostHistory| -> Result<()> {
        if out.json {
            let separator = if opened { ",\n" } else { "{\"hosts\": [\n" };
            write!(stdout, "{separator}")?;
            serde_json::to_writer(&mut stdout, &entry)?;
        } else {
            print_history(&mut stdout, &entry)?;
        }
        opened = true;
        Ok(())
    };
    let warnings = history(&args.dir, args.host.as_deref(), &host.limits, &mut each)?;
    if out.json {
        let open = if opened { "\n" } else { "{\"hosts\": [" };
        write!(stdout, "{open}], \"warnings\": ")?;
        serde_json::to_writer(&mut stdout, &warnings)?;
        writeln!(stdout, "}}")?;
    }
    stdout.flush()?;
    drop(stdout);
    out.warn_all(&warnings);
    Ok(Exit::Success.into())
}

fn print_history(out: &mut impl Write, entry: &HostHistory) -> Result<()> {
    writeln!(
        out,
        "{} ({}): {} copies",
        entry.name,
        entry.id,
        entry.copies.len()
    )?;
    for copy in &entry.copies {
        writeln!(
            out,
            "  {}  build {}  {} files  {} bytes  sha256 {}  {}",
            copy.time,
            if copy.build.is_empty() {
                "?"
            } else {
                &copy.build
            },
            copy.files,
            copy.size,
            &copy.sha256[..copy.sha256.len().min(12)],
            copy.path.display()
        )?;
        for (sign, paths) in [
            ("+", &copy.added),
            ("~", &copy.modified),
            ("-", &copy.removed),
        ] {
            for path in paths {
                writeln!(out, "    {sign} {path}")?;
            }
        }
    }
    Ok(())
}

pub fn drift_cmd(host: &Host, out: &Output, args: &DriftArgs) -> Result<ExitCode> {
    let report = drift(&args.dir, &args.ignore, &host.limits)?;
    out.warn_all(&report.warnings);
    let code = if report.drift.is_empty() {
        Exit::Success
    } else {
        Exit::Pending
    };
    if out.json {
        out.json_with(&report, &report.warnings)?;
    } else {
        print_drift(out, &report);
    }
    Ok(code.into())
}

fn print_drift(out: &Output, report: &DriftReport) {
    let name = |id: &str| {
        report
            .hosts
            .iter()
            .find(|h| h.id == id)
            .map_or(id.to_string(), |h| format!("{} ({id})", h.name))
    };
    for item in &report.drift {
        let what = match &item.key {
            Some(key) => format!("{} {key}", item.path),
            None => item.path.clone(),
        };
        let differing: usize = item.groups[1..].iter().map(|g| g.hosts.len()).sum();
        out.line(&format!(
            "{what}: {differing} host(s) differ from the most common"
        ));
        for (rank, group) in item.groups.iter().enumerate() {
            let content = match &group.content {
                Content::Sha256(sha) => format!("sha256 {}", &sha[..sha.len().min(12)]),
                Content::Value(Some(value)) => format!("\"{value}\""),
                Content::Value(None) => "not set".to_string(),
            };
            let label = if rank == 0 { " (most common)" } else { "" };
            let hosts: Vec<String> = group.hosts.iter().map(|id| name(id)).collect();
            out.line(&format!("  {content}{label}: {}", hosts.join(", ")));
        }
    }
    let verdict = if report.drift.is_empty() {
        format!("{} hosts compared: all agree", report.hosts.len())
    } else {
        format!(
            "{} hosts compared: {} differences",
            report.hosts.len(),
            report.drift.len()
        )
    };
    out.line(&verdict);
}
