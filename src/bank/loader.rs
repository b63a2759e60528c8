//! The boot loader's own reading of `boot.cfg`, rule for rule as vmware/esx-boot does it.
//!
//! Every rule below names the esx-boot line it comes from (file:line at commit 32924c6 of
//! github.com/vmware/esx-boot). Where that code disagrees with the comment above it (parse.c's
//! header says "spaces around the separator are ignored"), the code wins:
//! - lines are split at `\n` only; a `\r` is whitespace to `str_merge_spaces` (parse.c:168,
//!   string.c:116), which trims the line and folds every run of whitespace (BS, TAB, LF, VT, FF,
//!   CR, space and Latin-1 NBSP: libc/ctypes.c:16) into one space; a NUL ends the line (the
//!   line is a C string, parse.c:178).
//! - an empty line or one starting with `#` is skipped (parse.c:96).
//! - `locate_value` (parse.c:47) takes the first `=`; its loop meant to skip blanks before `=`
//!   tests `sep_start[0]`, which is the `=` itself, so it never moves (parse.c:60): the key part
//!   is everything before `=`, a trailing blank included. `strncasecmp(key, line, n)`
//!   (parse.c:64, libc/string.c:276) then matches when those `n` bytes are a case-insensitive
//!   *prefix* of an option's name: `updated =5` matches nothing, `up=9` is `updated`, `=5` is
//!   the table's first option. The first option of the table that matches wins (parse.c:101).
//! - blanks after `=` are skipped (parse.c:69); an empty value sets the option to integer 0
//!   (parse.c:105), which for a string option is a NULL (we model it as absent).
//! - an integer option's value must pass `is_number` (string.c:427: an optional `-`, then only
//!   digits; `-` alone passes); else `parse_option` returns ERR_SYNTAX, `parse_config_file`
//!   stops (parse.c:183) and the caller drops the whole file (safeboot/bootbank.c:142, the bank
//!   is not even listed; mboot/config.c:671, "Configuration error").
//! - `atoi` is `(int)strtol(s, NULL, 10)` (libc/standard.c:258): strtol saturates at the
//!   `long` bounds and the cast keeps the low 32 bits. We model the 64-bit UEFI builds
//!   (`long` is 64 bits, env/common.mk:108); the 32-bit BIOS build saturates at 2^31-1 instead.
//! - a later line for the same option overwrites the earlier one: the last one wins.

/// The Latin-1 whitespace of esx-boot's `isspace` (libc/ctypes.c:16).
pub fn is_space(byte: u8) -> bool {
    matches!(byte, 0x08..=0x0d | b' ' | 0xa0)
}

/// The type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
}

/// One option of a table: name, type, default integer value.
#[derive(Debug, Clone, Copy)]
pub struct OptionDef {
    pub key: &'static str,
    pub kind: Kind,
    pub default: i32,
}

const fn opt(key: &'static str, kind: Kind, default: i32) -> OptionDef {
    OptionDef { key, kind, default }
}

/// safeboot's table, in its order (safeboot/config.c:22-26).
pub const SAFEBOOT: &[OptionDef] = &[
    opt("build", Kind::Str, 0),
    opt("updated", Kind::Int, 0),
    opt("bootstate", Kind::Int, 0),
    opt("quickboot", Kind::Int, 0),
];

/// mboot's table, in its order (mboot/config.c:71-87).
pub const MBOOT: &[OptionDef] = &[
    opt("kernel", Kind::Str, 0),
    opt("kernelopt", Kind::Str, 0),
    opt("modules", Kind::Str, 0),
    opt("title", Kind::Str, 0),
    opt("prefix", Kind::Str, 0),
    opt("nobootif", Kind::Int, 0),
    opt("timeout", Kind::Int, 5),
    opt("noquirks", Kind::Int, 0),
    opt("norts", Kind::Int, 0),
    opt("crypto", Kind::Str, 0),
    opt("runtimewd", Kind::Int, 0),
    opt("tftpblksize", Kind::Int, 0),
    opt("acpitables", Kind::Str, 0),
    opt("runtimewdtimeout", Kind::Int, 0),
    opt("skip", Kind::Int, 0),
    opt("errtimeout", Kind::Int, -1),
];

/// One line of the file as `parse_config_file` cuts it.
#[derive(Debug, Clone)]
pub struct RawLine {
    /// Byte range in the file, without the `\n`.
    pub start: usize,
    pub end: usize,
    /// The line after `str_merge_spaces` (and cut at a NUL).
    pub merged: Vec<u8>,
}

/// Cuts `bytes` into lines at `\n` (parse.c:167-193).
pub fn split_lines(bytes: &[u8]) -> Vec<RawLine> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |at| start + at);
        lines.push(RawLine {
            start,
            end,
            merged: merge_spaces(&bytes[start..end]),
        });
        start = end + 1;
    }
    lines
}

/// `str_merge_spaces` (string.c:116) of a line cut at its first NUL.
pub fn merge_spaces(line: &[u8]) -> Vec<u8> {
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut out = Vec::with_capacity(line.len());
    let mut space = true;
    for &byte in line {
        if is_space(byte) {
            if !space {
                out.push(b' ');
                space = true;
            }
        } else {
            out.push(byte);
            space = false;
        }
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

/// `locate_value` over a table: the index of the first option the line names and its value.
pub fn match_option<'a>(merged: &'a [u8], table: &[OptionDef]) -> Option<(usize, &'a [u8])> {
    let eq = merged.iter().position(|&b| b == b'=')?;
    let key_part = &merged[..eq];
    let index = table.iter().position(|def| {
        let key = def.key.as_bytes();
        key_part.len() <= key.len() && key_part.eq_ignore_ascii_case(&key[..key_part.len()])
    })?;
    let mut value = &merged[eq + 1..];
    while value.first() == Some(&b' ') {
        value = &value[1..];
    }
    Some((index, value))
}

/// `is_number` (string.c:427).
pub fn is_number(value: &[u8]) -> bool {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    digits.iter().all(u8::is_ascii_digit)
}

/// `atoi` of a value that passed [`is_number`], as the 64-bit builds compute it.
pub fn atoi(value: &[u8]) -> i32 {
    let (negative, digits) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let mut n: i64 = 0;
    for &digit in digits {
        let d = i64::from(digit - b'0');
        n = if negative {
            n.checked_mul(10)
                .and_then(|n| n.checked_sub(d))
                .unwrap_or(i64::MIN)
        } else {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(d))
                .unwrap_or(i64::MAX)
        };
        if n == i64::MIN || n == i64::MAX {
            break;
        }
    }
    n as i32
}

/// The value a line gave an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string option; `None` for an empty value (the C code stores integer 0: NULL).
    Str(Option<Vec<u8>>),
    Int(i32),
}

/// An integer option whose value `is_number` refuses: the file is unusable to that program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Index into the lines.
    pub line: usize,
    pub key: &'static str,
    pub value: Vec<u8>,
}

/// What one program (safeboot or mboot) read from the file.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub table: &'static [OptionDef],
    /// Per option: the line that set it last and its value; `None` keeps the default.
    pub values: Vec<Option<(usize, Value)>>,
    /// Per line: the option it set, if any.
    pub matched: Vec<Option<usize>>,
    pub error: Option<SyntaxError>,
}

impl Parsed {
    /// `parse_config_file` (parse.c:148) of `lines` with `table`.
    pub fn parse(lines: &[RawLine], table: &'static [OptionDef]) -> Parsed {
        let mut parsed = Parsed {
            table,
            values: vec![None; table.len()],
            matched: vec![None; lines.len()],
            error: None,
        };
        for (number, line) in lines.iter().enumerate() {
            let merged = &line.merged;
            if merged.is_empty() || merged[0] == b'#' {
                continue;
            }
            let Some((index, value)) = match_option(merged, table) else {
                continue;
            };
            let value = match (value.is_empty(), table[index].kind) {
                (true, Kind::Str) => Value::Str(None),
                (true, Kind::Int) => Value::Int(0),
                (false, Kind::Str) => Value::Str(Some(value.to_vec())),
                (false, Kind::Int) if is_number(value) => Value::Int(atoi(value)),
                (false, Kind::Int) => {
                    parsed.error = Some(SyntaxError {
                        line: number,
                        key: table[index].key,
                        value: value.to_vec(),
                    });
                    parsed.matched[number] = Some(index);
                    break;
                }
            };
            parsed.matched[number] = Some(index);
            parsed.values[index] = Some((number, value));
        }
        parsed
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.table.iter().position(|def| def.key == key)
    }

    /// The option's value as the program uses it (its default when no line set it).
    pub fn value(&self, key: &str) -> Option<Value> {
        let index = self.index(key)?;
        Some(match &self.values[index] {
            Some((_, value)) => value.clone(),
            None if self.table[index].kind == Kind::Int => Value::Int(self.table[index].default),
            None => Value::Str(None),
        })
    }

    /// The integer value of `key` (its default when unset).
    pub fn int(&self, key: &str) -> i32 {
        match self.value(key) {
            Some(Value::Int(n)) => n,
            _ => 0,
        }
    }

    /// The string value of `key`, `None` when unset or empty.
    pub fn string(&self, key: &str) -> Option<&[u8]> {
        match &self.values[self.index(key)?] {
            Some((_, Value::Str(Some(bytes)))) => Some(bytes),
            _ => None,
        }
    }

    /// The line that set `key` last.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.values[self.index(key)?]
            .as_ref()
            .map(|(line, _)| *line)
    }
}

/// Offset limit for the `bootstate=` digit (the loader patches it in place).
pub const BOOTSTATE_WINDOW: usize = 512;

/// Where `bank_set_bootstate` would patch the state digit: `scan_config` over the first 512
/// bytes (safeboot/config.c:96, 191-204). `Some(offset)` only when the byte there is `0`..`3`,
/// as the loader requires before it writes; else the loader drops the bank.
pub fn bootstate_patch_offset(bytes: &[u8]) -> Option<usize> {
    let buffer = &bytes[..bytes.len().min(BOOTSTATE_WINDOW)];
    let keyword = b"bootstate";
    let mut from = 0;
    let value_at = loop {
        let at = from + find_ascii_case(&buffer[from..], keyword)?;
        let line_start = buffer[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        let first_word = buffer[line_start..at].iter().all(|&b| is_space(b));
        from = at + keyword.len();
        if first_word {
            let rest = &buffer[from..];
            let skip = rest
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            if rest.get(skip) == Some(&b'=') {
                break from + skip + 1;
            }
        }
    };
    let skip = buffer[value_at..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let offset = value_at + skip;
    matches!(buffer.get(offset), Some(b'0'..=b'3')).then_some(offset)
}

fn find_ascii_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_wraps_like_the_64_bit_loader() {
        assert_eq!(atoi(b"5"), 5);
        assert_eq!(atoi(b"007"), 7);
        assert_eq!(atoi(b"-"), 0);
        assert_eq!(atoi(b"-1") as u32, u32::MAX);
        assert_eq!(atoi(b"4294967296"), 0);
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atoi(b"99999999999999999999999") as u32, u32::MAX);
        assert_eq!(atoi(b"-99999999999999999999999"), 0);
    }

    #[test]
    fn keys_match_by_prefix_and_never_with_a_blank_before_the_separator() {
        assert_eq!(match_option(b"up=9", SAFEBOOT), Some((1, &b"9"[..])));
        assert_eq!(match_option(b"=x", SAFEBOOT), Some((0, &b"x"[..])));
        assert_eq!(match_option(b"updated =9", SAFEBOOT), None);
        assert_eq!(match_option(b"UPDATED= 9", SAFEBOOT), Some((1, &b"9"[..])));
        assert_eq!(match_option(b"updatedx=9", SAFEBOOT), None);
    }

    #[test]
    fn merging_folds_cr_tab_and_nbsp() {
        assert_eq!(merge_spaces(b" a\t\t=\xa0b\r"), b"a = b");
        assert_eq!(merge_spaces(b"a=b\0c"), b"a=b");
    }

    #[test]
    fn the_bootstate_digit_must_be_in_the_first_512_bytes() {
        assert_eq!(bootstate_patch_offset(b"bootstate = 1\n"), Some(12));
        assert_eq!(bootstate_patch_offset(b"x bootstate=1\n"), None);
        assert_eq!(bootstate_patch_offset(b"bootstate=7\n"), None);
        let far = format!("{}\nbootstate=1\n", "#".repeat(510));
        assert_eq!(bootstate_patch_offset(far.as_bytes()), None);
    }
}
