//! The hand-written sections of the manual page: EXIT STATUS (the reference's codes, from
//! [`crate::exit`]), FILES, ENVIRONMENT (the options' variables, read from the command tree,
//! plus the few the code reads directly) and EXAMPLES (the jobs admins actually do).

use roff::{bold, italic, roman, Roff};

use crate::exit::{Exit, Monitoring};

/// Appends EXIT STATUS, FILES, ENVIRONMENT and EXAMPLES.
pub fn sections(doc: &mut Roff, cmd: &clap::Command) {
    exit_status(doc);
    files(doc);
    environment(doc, cmd);
    examples(doc);
}

fn item(doc: &mut Roff, term: &str, text: &str) {
    doc.control("TP", []);
    doc.text([bold(term)]);
    doc.text([roman(text)]);
}

fn exit_status(doc: &mut Roff) {
    doc.control("SH", ["EXIT STATUS"]);
    for (code, text) in [
        (
            Exit::Success,
            "Success; for backup also \"nothing changed, nothing written\"; for status, in sync.",
        ),
        (
            Exit::Failure,
            "Failure: one line on stderr, statectl: error: <what> `<path>`: <cause>; <what to \
             do>. With -v the cause chain follows, one cause a line.",
        ),
        (
            Exit::Usage,
            "Command-line usage error (unknown option, missing argument): one line naming the \
             problem and the usage. The drop-in name backup.sh keeps ESXi's behaviour instead \
             (usage line, exit 0; \"Invalid parameter for is_shutdown\", exit 1).",
        ),
        (Exit::Pending, "status and diff: changes are pending."),
        (
            Exit::LockBusy,
            "Another statectl held the bank lock for longer than --wait.",
        ),
    ] {
        item(doc, &(code as u8).to_string(), text);
    }
    let monitoring = format!(
        "bank check alone uses the monitoring plugin codes: {} OK, {} WARNING, {} CRITICAL, \
         {} UNKNOWN.",
        Monitoring::Ok as u8,
        Monitoring::Warning as u8,
        Monitoring::Critical as u8,
        Monitoring::Unknown as u8
    );
    doc.control("PP", []);
    doc.text([roman(monitoring)]);
}

fn files(doc: &mut Roff) {
    doc.control("SH", ["FILES"]);
    for (term, text) in [
        (
            "<root>/etc/statectl.toml",
            "Selection rules (optional TOML): select (\"branched\", ESXi's rule: files with a \
             .# branch; or \"sticky\": also T-flagged files), scan, include, exclude, required. \
             Without it, var/lib/vmware/configstore/backup is included where it exists.",
        ),
        (
            "<bank>/state.tgz",
            "The archive: a gzip tar holding local.tgz (the files, ESXi layout) and the \
             statectl.json manifest. Mode 0600.",
        ),
        (
            "<bank>/boot.cfg",
            "The boot loader's configuration; backup appends \" --- state.tgz\" to modules= \
             when missing, through a temp file and rename.",
        ),
        (
            "<bank>/.statectl-*.tmp",
            "Temp files of a run in progress; those of a killed run are removed by the next.",
        ),
        (
            "/run/statectl/",
            "Run directory (STATECTL_RUN_DIR): bank locks (flock) and the stat cache; \
             RAM-backed, never on the boot media.",
        ),
        (
            "/dev/log",
            "Syslog socket: every written archive, warning and error is reported with ident \
             statectl (STATECTL_SYSLOG_SOCKET).",
        ),
        (
            "auto-backup.sh, backup.sh",
            "Drop-in names (ESXi: /sbin/auto-backup.sh run by cron, backup.sh run by \
             inittab at shutdown): a link to statectl with one of these names takes ESXi's \
             arguments. auto-backup.sh [OPTIONS] is backup [OPTIONS]; backup.sh 0|1 [DIR] \
             [OPTIONS] is backup, 1 adding --shutdown and DIR --bank DIR; without an argument \
             it prints \"Usage: <name> IsShutdown [PATH_NAME]\" (exit 0), with another first \
             argument \"Invalid parameter for is_shutdown: X\" (exit 1).",
        ),
    ] {
        item(doc, term, text);
    }
}

fn environment(doc: &mut Roff, cmd: &clap::Command) {
    doc.control("SH", ["ENVIRONMENT"]);
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let long = arg.get_long().unwrap_or_default();
        item(
            doc,
            &env.to_string_lossy(),
            &format!("Default for --{long}."),
        );
    }
    item(
        doc,
        "STATECTL_SYSLOG_SOCKET",
        "The syslog datagram socket (default /dev/log); nothing is logged when it does not \
         exist.",
    );
}

/// (what it is for, command lines).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "Hourly backup from root's crontab (silent on success, so cron mails only failures):",
        &["1 * * * * /opt/statectl/statectl -q backup"],
    ),
    (
        "Or keep ESXi's crontab and inittab as they are, through the drop-in links (keep \
         the original scripts beside them; on ESXi /sbin is rebuilt at every boot, so run these \
         from /etc/rc.local.d/local.sh):",
        &[
            "mv /sbin/auto-backup.sh /sbin/auto-backup.sh.orig",
            "mv /sbin/backup.sh /sbin/backup.sh.orig",
            "ln -s /opt/statectl/statectl /sbin/auto-backup.sh",
            "ln -s /opt/statectl/statectl /sbin/backup.sh",
        ],
    ),
    (
        "Shutdown hook (inittab or an rc script run after services stop): always write, wait \
         at most 60 s for the lock:",
        &["::shutdown:/opt/statectl/statectl -q backup --shutdown"],
    ),
    (
        "Reset a forgotten root password from a rescue system, with the bank mounted at \
         /mnt/bootbank:",
        &[
            "statectl verify /mnt/bootbank/state.tgz",
            "statectl passwd root --clear --archive /mnt/bootbank/state.tgz",
        ],
    ),
    (
        "Restore a saved configuration onto a new or rebuilt host, looking first:",
        &[
            "statectl restore /vmfs/volumes/datastore1/state.tgz --dry-run",
            "statectl restore /vmfs/volumes/datastore1/state.tgz",
        ],
    ),
    (
        "Or put a configuration bundle in place for the next boot (ESXi's firmware restore), \
         then reboot without a shutdown backup:",
        &[
            "statectl install configBundle-esx01-20240101T000000Z.tgz",
            "reboot -f",
        ],
    ),
    (
        "Edit an encrypted archive (ESXi 7.0 U2+ local.tgz.ve, key store mode NONE) and encrypt \
         it again with the same key store and a fresh IV:",
        &[
            "statectl extract /bootbank/state.tgz --to /tmp/s && vi /tmp/s/etc/hosts",
            "statectl pack /tmp/s --like /bootbank/state.tgz --output /tmp/state.tgz",
        ],
    ),
    (
        "Monitoring (a Nagios/NRPE check; exit 0 OK, 1 WARNING, 2 CRITICAL):",
        &["command[statectl]=/opt/statectl/statectl bank check"],
    ),
    (
        "See what the next backup would save:",
        &["statectl status --json", "statectl diff etc/hosts"],
    ),
];

fn examples(doc: &mut Roff) {
    doc.control("SH", ["EXAMPLES"]);
    for (what, lines) in EXAMPLES {
        doc.control("PP", []);
        doc.text([roman(*what)]);
        doc.control("RS", ["4"]);
        doc.control("nf", []);
        for line in *lines {
            doc.text([italic(*line)]);
        }
        doc.control("fi", []);
        doc.control("RE", []);
    }
}
