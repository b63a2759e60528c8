//! `statectl man`: the manual page, generated from the clap definition.
//!
//! One page holds everything: clap_mangen renders NAME, SYNOPSIS, DESCRIPTION and the global
//! OPTIONS; every subcommand, however deep, gets its own subsection under COMMANDS (walked from
//! the command tree, so commands added later appear without touching this file); EXIT STATUS,
//! FILES, ENVIRONMENT and EXAMPLES are written here. The committed `man/statectl.1` is compared
//! with this output by a test; `STATECTL_UPDATE_MAN=1 cargo test --lib man_page` rewrites it.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Arg, Args};
use roff::{bold, italic, roman, Roff};

use super::Output;
use crate::exit::Exit;

/// Print the manual page (roff) on stdout
#[derive(Debug, Clone, Args)]
#[command(
    long_about = "Prints the statectl(1) manual page in roff, generated from the same \
definition as --help: every command and option, exit status, files, environment and examples. \
Changes nothing.",
    after_help = "Examples:\n  statectl man | man -l -\n  \
statectl man > /usr/local/share/man/man1/statectl.1"
)]
pub struct ManArgs {}

pub fn run(out: &Output, _args: &ManArgs) -> Result<ExitCode> {
    out.text(&render()?);
    Ok(Exit::Success.into())
}

/// The whole manual page.
pub fn render() -> Result<String> {
    let mut cmd = super::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    let fail = || "cannot render the manual page";
    man.render_title(&mut page).with_context(fail)?;
    man.render_name_section(&mut page).with_context(fail)?;
    man.render_synopsis_section(&mut page).with_context(fail)?;
    man.render_description_section(&mut page)
        .with_context(fail)?;
    man.render_options_section(&mut page).with_context(fail)?;
    let mut doc = Roff::new();
    doc.control("SH", ["COMMANDS"]);
    for sub in visible_subcommands(&cmd) {
        render_command(&mut doc, sub);
    }
    super::man_text::sections(&mut doc, &cmd);
    doc.to_writer(&mut page).with_context(fail)?;
    man.render_version_section(&mut page).with_context(fail)?;
    let page = String::from_utf8_lossy(&page).into_owned();
    Ok(drop_repeated_preambles(&page))
}

/// Each roff render starts with the same apostrophe preamble; one is enough.
fn drop_repeated_preambles(page: &str) -> String {
    let preamble = Roff::new().render();
    match page.strip_prefix(&preamble) {
        Some(rest) => format!("{preamble}{}", rest.replace(&preamble, "")),
        None => page.to_string(),
    }
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
}

/// One subsection per command: usage, description, its own options, examples; then its
/// subcommands.
fn render_command(doc: &mut Roff, sub: &clap::Command) {
    let usage = sub.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim().to_string();
    doc.control("SS", [usage.as_str()]);
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        paragraphs(doc, &about.to_string());
    }
    let own: Vec<&Arg> = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set() && !is_builtin(a))
        .collect();
    for arg in own {
        option_item(doc, arg);
    }
    if let Some(after) = sub.get_after_long_help().or_else(|| sub.get_after_help()) {
        doc.control("PP", []);
        doc.control("nf", []);
        for line in after.to_string().lines() {
            doc.text([roman(line)]);
        }
        doc.control("fi", []);
    }
    for nested in visible_subcommands(sub) {
        render_command(doc, nested);
    }
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// Text with blank-line paragraph breaks.
pub(super) fn paragraphs(doc: &mut Roff, text: &str) {
    doc.control("PP", []);
    for line in text.lines() {
        if line.trim().is_empty() {
            doc.control("PP", []);
        } else {
            doc.text([roman(line)]);
        }
    }
}

fn option_item(doc: &mut Roff, arg: &Arg) {
    let mut head = Vec::new();
    if arg.is_positional() {
        let name = arg
            .get_value_names()
            .map(|names| names.join(" "))
            .unwrap_or_else(|| arg.get_id().to_string());
        head.push(italic(name));
    } else {
        let mut flags = Vec::new();
        if let Some(short) = arg.get_short() {
            flags.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            flags.push(format!("--{long}"));
        }
        head.push(bold(flags.join(", ")));
        if let (true, Some(names)) = (takes_a_value(arg), arg.get_value_names()) {
            head.push(roman(" "));
            head.push(italic(names.join(" ")));
        }
    }
    doc.control("TP", []);
    doc.text(head);
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && takes_a_value(arg) {
        help.push_str(&format!(" [default: {}]", defaults.join(", ")));
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !values.is_empty() {
        help.push_str(&format!(" [possible values: {}]", values.join(", ")));
    }
    doc.text([roman(help)]);
}

fn takes_a_value(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn committed() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man/statectl.1")
    }

    /// Fails when `man/statectl.1` is stale; `STATECTL_UPDATE_MAN=1` rewrites it instead.
    #[test]
    fn man_page_is_up_to_date() {
        let fresh = render().unwrap();
        if std::env::var_os("STATECTL_UPDATE_MAN").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(committed().parent().unwrap()).unwrap();
            std::fs::write(committed(), &fresh).unwrap();
            return;
        }
        let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
        assert!(
            on_disk == fresh,
            "man/statectl.1 is stale: run `STATECTL_UPDATE_MAN=1 cargo test --lib man_page` \
             and commit the result"
        );
    }

    #[test]
    fn man_page_has_every_section_and_command() {
        let page = render().unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "COMMANDS",
            "\"EXIT STATUS\"",
            "FILES",
            "ENVIRONMENT",
            "EXAMPLES",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "no {section}");
        }
        let mut cmd = crate::cli::command();
        cmd.build();
        for sub in visible_subcommands(&cmd) {
            let heading = format!(".SS \"statectl {}", sub.get_name());
            assert!(page.contains(&heading), "no section for {}", sub.get_name());
        }
        assert_eq!(page.matches(&Roff::new().render()).count(), 1);
    }

    /// Every command, however deep, says what it does and shows an example in --help.
    #[test]
    fn every_command_teaches_with_an_example() {
        fn walk(cmd: &clap::Command, path: &str) {
            let name = format!("{path} {}", cmd.get_name());
            assert!(
                cmd.get_long_about().or_else(|| cmd.get_about()).is_some(),
                "`{name}` has no about"
            );
            let after = cmd
                .get_after_long_help()
                .or_else(|| cmd.get_after_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(after.contains("Example"), "`{name}` --help has no example");
            for sub in visible_subcommands(cmd) {
                walk(sub, &name);
            }
        }
        let mut cmd = crate::cli::command();
        cmd.build();
        walk(&cmd, "");
    }
}
