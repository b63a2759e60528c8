//! Member-name rules: what a path inside an archive may look like before anything uses it.
//!
//! # Security
//! A name is accepted only when it is valid UTF-8, relative, free of `..`, NUL and control
//! characters. `./` prefixes and empty or `.` components (what GNU tar writes) are normalized
//! away, so `./etc//hosts` and `etc/hosts` are the same member. Callers that write to disk
//! (extract, restore) refuse the whole archive on the first unsafe name; readers report it.

/// Normalizes a member name, or says why it is unsafe.
pub fn normalize_member_name(raw: &[u8]) -> Result<String, String> {
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

/// A printable form of a raw name for messages: lossy UTF-8 with control characters escaped.
pub fn display_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).escape_debug().to_string()
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
