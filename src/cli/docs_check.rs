//! Keeps the user reference (`docs/*.md`) in step with the CLI: every subcommand of
//! `Cli::command()`, however deep, has a heading ``## `statectl PATH` `` in docs/, and every long
//! flag of that command is written as `` `--flag `` in that heading's section (the global
//! options in the section headed "Global options"). A test, so adding a flag without its line
//! in docs/ fails CI with a message saying which flag of which command and where to add it.

use std::path::Path;

/// The file a missing entry should go to.
const REFERENCE: &str = "docs/reference.md";

/// A heading of the docs and the lines under it, up to the next heading of its level or higher.
struct Section {
    level: usize,
    title: String,
    body: String,
}

fn sections(markdown: &str) -> Vec<Section> {
    let lines: Vec<&str> = markdown.lines().collect();
    let level_of = |line: &str| {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
    };
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(level) = level_of(line) else {
            continue;
        };
        let end = lines[i + 1..]
            .iter()
            .position(|l| level_of(l).is_some_and(|other| other <= level))
            .map_or(lines.len(), |n| i + 1 + n);
        found.push(Section {
            level,
            title: line[level..].trim().to_string(),
            body: lines[i + 1..end].join("\n"),
        });
    }
    found
}

/// The section whose heading is exactly `` `statectl PATH` `` (the command path).
fn command_section<'a>(docs: &'a [Section], path: &str) -> Option<&'a Section> {
    let wanted = format!("`{path}`");
    docs.iter().find(|s| s.title == wanted)
}

fn mentions_flag(text: &str, long: &str) -> bool {
    let needle = format!("`--{long}");
    text.match_indices(&needle).any(|(at, _)| {
        let next = text[at + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

fn documented_flags(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_hide_set()
            && !matches!(a.get_id().as_str(), "help" | "version")
            && a.get_long().is_some()
    })
}

/// Every subcommand or long flag of `cmd` (a built command tree) that `markdown` lacks, as
/// one sentence each saying what to add where.
pub fn missing_from_docs(cmd: &clap::Command, markdown: &str) -> Vec<String> {
    let docs = sections(markdown);
    let mut missing = Vec::new();
    let global = docs.iter().find(|s| s.title.contains("Global options"));
    for arg in documented_flags(cmd).filter(|a| a.is_global_set()) {
        let long = arg.get_long().unwrap_or_default();
        if !global.is_some_and(|s| mentions_flag(&s.body, long)) {
            missing.push(format!(
                "the global option `--{long}` is not in {REFERENCE}: add a line with `--{long}` \
                 under the heading \"## Global options\""
            ));
        }
    }
    walk(cmd, cmd.get_name(), &docs, &mut missing);
    missing
}

fn walk(cmd: &clap::Command, path: &str, docs: &[Section], missing: &mut Vec<String>) {
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let sub_path = format!("{path} {}", sub.get_name());
        let depth = sub_path.split(' ').count();
        let heading = format!("{} `{sub_path}`", "#".repeat(depth));
        match command_section(docs, &sub_path) {
            None => missing.push(format!(
                "the command `{sub_path}` has no section in {REFERENCE}: add the heading \
                 \"{heading}\" with a line for each of its flags"
            )),
            Some(section) => {
                for arg in documented_flags(sub).filter(|a| !a.is_global_set()) {
                    let long = arg.get_long().unwrap_or_default();
                    if !mentions_flag(&section.body, long) {
                        missing.push(format!(
                            "the flag `--{long}` of `{sub_path}` is not in {REFERENCE}: add a \
                             line with `--{long}` under the heading \"{}\"",
                            "#".repeat(section.level) + " " + &section.title
                        ));
                    }
                }
            }
        }
        walk(sub, &sub_path, docs, missing);
    }
}

/// All of docs/*.md, in name order.
pub fn read_docs(dir: &Path) -> std::io::Result<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    names.sort();
    let mut all = String::new();
    for name in names {
        all.push_str(&std::fs::read_to_string(name)?);
        all.push('\n');
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn fake() -> Command {
        let mut cmd = Command::new("statectl")
            .arg(
                Arg::new("root")
                    .long("root")
                    .global(true)
                    .action(ArgAction::Set),
            )
            .subcommand(
                Command::new("list")
                    .arg(
                        Arg::new("long")
                            .short('l')
                            .long("long")
                            .action(ArgAction::SetTrue),
                    )
                    .arg(
                        Arg::new("partial")
                            .long("partial")
                            .action(ArgAction::SetTrue),
                    ),
            )
            .subcommand(Command::new("bank").subcommand(
                Command::new("sync").arg(Arg::new("from").long("from").action(ArgAction::Set)),
            ));
        cmd.build();
        cmd
    }

    const COMPLETE: &str = "# Reference\n## Global options\n- `--root DIR`: the root\n\
        ## `statectl list`\n- `-l`, `--long`: long\n- `--partial`: what it could\n\
        ## `statectl bank`\n### `statectl bank sync`\n- `--from NAME`\n";

    #[test]
    fn complete_docs_have_nothing_missing() {
        assert_eq!(missing_from_docs(&fake(), COMPLETE), Vec::<String>::new());
    }

    #[test]
    fn a_flag_without_a_line_is_named_with_its_command_and_heading() {
        let docs = COMPLETE.replace("- `--partial`: what it could\n", "");
        assert_eq!(
            missing_from_docs(&fake(), &docs),
            [
                "the flag `--partial` of `statectl list` is not in docs/reference.md: add a line \
              with `--partial` under the heading \"## `statectl list`\""
            ]
        );
    }

    #[test]
    fn a_flag_mentioned_only_in_another_section_or_as_a_prefix_is_missing() {
        let docs = COMPLETE
            .replace("- `--partial`: what it could\n", "")
            .replace(
                "- `--from NAME`\n",
                "- `--partial-ish`, see `--partial` of list\n",
            );
        let missing = missing_from_docs(&fake(), &docs);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("`--partial` of `statectl list`"));
        assert!(missing[1].contains("`--from` of `statectl bank sync`"));
    }

    #[test]
    fn a_missing_command_and_a_missing_global_option_are_reported() {
        let docs = COMPLETE
            .replace("### `statectl bank sync`\n- `--from NAME`\n", "")
            .replace("- `--root DIR`: the root\n", "");
        let missing = missing_from_docs(&fake(), &docs);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("global option `--root`"));
        assert!(missing[1].contains(
            "the command `statectl bank sync` has no section in docs/reference.md: add the \
             heading \"### `statectl bank sync`\""
        ));
    }

    /// The real CLI against the real docs/: fails when a command or flag lacks its line.
    #[test]
    fn docs_cover_every_command_and_flag() {
        let docs = read_docs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"))
            .expect("docs/ is readable");
        let mut cmd = crate::cli::command();
        cmd.build();
        let missing = missing_from_docs(&cmd, &docs);
        assert!(
            missing.is_empty(),
            "docs/ is behind the CLI:\n{}",
            missing.join("\n")
        );
    }
}
