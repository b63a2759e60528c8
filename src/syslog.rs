//! Reports to the local syslog (ident `statectl`), RFC 3164 over the `/dev/log` datagram socket.
//!
//! Best effort by design: no socket, no message, never an error. `STATECTL_SYSLOG_SOCKET`
//! names another socket (tests bind their own).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Facility `user` (1), as ESXi's scripts log through `logger`.
const FACILITY: u8 = 1;

/// Message severities used by statectl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Notice = 5,
}

/// The socket messages go to.
pub fn socket_path() -> PathBuf {
    std::env::var_os("STATECTL_SYSLOG_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/log"))
}

/// Formats one RFC 3164 message (the local daemon adds time stamp and host).
pub fn format_message(severity: Severity, message: &str) -> String {
    let priority = FACILITY * 8 + severity as u8;
    let single_line = message.replace(['\n', '\r'], " ");
    format!(
        "<{priority}>statectl[{}]: {single_line}",
        std::process::id()
    )
}

/// Sends `message` to syslog if a socket is there.
pub fn log(severity: Severity, message: &str) {
    let path = socket_path();
    if !path.exists() {
        return;
    }
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.send_to(format_message(severity, message).as_bytes(), &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_priority_ident_and_one_line() {
        let text = format_message(Severity::Error, "a\nb");
        assert!(text.starts_with("<11>statectl["), "{text}");
        assert!(text.ends_with("]: a b"), "{text}");
    }
}
