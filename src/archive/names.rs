//! Member-name rules: what a path inside an archive may look like before anything uses it.
//!
//! # Security
//! A name is accepted only when it is valid UTF-8, relative, free of `..`, NUL and control
//! characters, and short enough for any target filesystem to hold: no component over
//! [`MAX_COMPONENT`] bytes (`NAME_MAX` of ext4, tmpfs, VFAT), no path over [`MAX_PATH`] bytes
//! (`PATH_MAX`). `./` prefixes and empty or `.` components (what GNU tar writes) are normalized
//! away, so `./etc//hosts` and `etc/hosts` are the same member. Callers that write to disk
//! (extract, restore) refuse the whole archive on the first unsafe name; readers report it.
//!
//! A refused name is never kept: messages show it through [`display_name`], which keeps at
//! most [`SHOWN_BYTES`] of it (a 64 KiB name in 100,000 messages would be 6 GiB).

/// Longest name component a target filesystem holds (Linux `NAME_MAX`).
pub const MAX_COMPONENT: usize = 255;
/// Longest path accepted, in bytes (Linux `PATH_MAX`; docs/reference.md "Limits").
pub const MAX_PATH: usize = 4096;
/// Bytes of a raw name shown in a message; the rest is summarized by its length.
pub const SHOWN_BYTES: usize = 200;

/// Normalizes a member name, or says why it is unsafe.
pub fn normalize_member_name(raw: &[u8]) -> Result<String, String> {
    if raw.len() > MAX_PATH {
        return Err(format!(
            "name of {} bytes, over the {MAX_PATH}-byte path limit",
            raw.len()
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|_| "name is not valid UTF-8".to_string())?;
    if text.chars().any(char::is_control) {
        return Err("name holds a control character".to_string());
    }
    if text.starts_with('/') {
        return Err("absolute path".to_string());
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` component".to_string()),
            _ if part.len() > MAX_COMPONENT => {
                return Err(format!(
                    "a component of {} bytes, over the {MAX_COMPONENT}-byte name limit of \
                     the target filesystem",
                    part.len()
                ))
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("empty name".to_string());
    }
    Ok(parts.join("/"))
}

/// Whether a name is the archive's own top directory (`.`, `./`, what `tar -C dir -czf x .`
/// writes first). Readers skip such a directory entry: it names nothing below the root and its
/// mode must not loosen the directory an archive is extracted into.
pub fn is_root_name(raw: &[u8]) -> bool {
    !raw.is_empty()
        && raw.first() != Some(&b'/')
        && raw
            .split(|&b| b == b'/')
            .all(|part| part.is_empty() || part == b".")
}

/// A printable form of a raw name for messages: lossy UTF-8 with control characters escaped,
/// cut after [`SHOWN_BYTES`] bytes (the length of the whole is said).
pub fn display_name(raw: &[u8]) -> String {
    if raw.len() <= SHOWN_BYTES {
        return String::from_utf8_lossy(raw).escape_debug().to_string();
    }
    let head = String::from_utf8_lossy(&raw[..SHOWN_BYTES])
        .escape_debug()
        .to_string();
    format!("{head}... ({} bytes)", raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_what_tar_tools_write() {
        assert_eq!(normalize_member_name(b"etc/hosts").unwrap(), "etc/hosts");
        assert_eq!(normalize_member_name(b"./etc/hosts").unwrap(), "etc/hosts");
        assert_eq!(
            normalize_member_name(b"etc//vmware/./x").unwrap(),
            "etc/vmware/x"
        );
        assert_eq!(normalize_member_name(b"etc/").unwrap(), "etc");
    }

    #[test]
    fn refuses_names_no_filesystem_holds_and_shows_them_short() {
        let component = "c".repeat(MAX_COMPONENT);
        assert!(normalize_member_name(format!("etc/{component}").as_bytes()).is_ok());
        let err = normalize_member_name(format!("etc/{component}x").as_bytes()).unwrap_err();
        assert!(err.contains("256 bytes"), "{err}");
        let deep = format!("etc/{}", "d/".repeat(2046));
        assert_eq!(deep.len(), MAX_PATH);
        assert!(normalize_member_name(deep.as_bytes()).is_ok());
        let long = vec![b'a'; 60_000];
        assert!(normalize_member_name(&long)
            .unwrap_err()
            .contains("60000 bytes"));
        let shown = display_name(&long);
        assert!(
            shown.len() < SHOWN_BYTES + 40 && shown.ends_with("(60000 bytes)"),
            "{shown}"
        );
    }

    #[test]
    fn only_dot_names_are_the_root() {
        for root in [&b"."[..], b"./", b".//", b"././"] {
            assert!(is_root_name(root), "{root:?}");
        }
        for other in [&b""[..], b"/", b"/.", b"./etc", b"..", b"etc/."] {
            assert!(!is_root_name(other), "{other:?}");
        }
    }

    #[test]
    fn refuses_escapes_and_garbage() {
        for bad in [
            &b"/etc/passwd"[..],
            b"../x",
            b"etc/../../x",
            b"etc/\x01x",
            b"etc/\xffx",
            b"",
            b"./",
            b"etc/a\nb",
        ] {
            assert!(normalize_member_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
