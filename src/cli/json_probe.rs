//! Whether a value serializes as a JSON object without a `warnings` key, found by watching its
//! compact JSON text stream by (nothing is kept): `--json` documents of 100,000 paths must not
//! be built in memory just to look at their top level.

use std::io::{self, Write};

use serde::Serialize;

/// True when `value` is a JSON object and none of its own keys is `warnings`.
pub fn is_object_without_warnings<T: Serialize>(value: &T) -> serde_json::Result<bool> {
    let mut probe = TopLevel::default();
    serde_json::to_writer(&mut probe, value)?;
    Ok(probe.object && !probe.has_warnings)
}

const KEY: &[u8] = b"warnings";

/// A scanner of compact JSON text that notes the top level's kind and keys.
#[derive(Default)]
struct TopLevel {
    started: bool,
    object: bool,
    has_warnings: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// At depth 1 of the object, the next string is a key.
    expecting_key: bool,
    in_key: bool,
    /// The key so far, or `None` once it is not `warnings`.
    key_matched: Option<usize>,
}

impl TopLevel {
    fn byte(&mut self, b: u8) {
        if self.in_string {
            self.string_byte(b);
            return;
        }
        if !self.started {
            self.started = true;
            self.object = b == b'{';
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.in_key = self.object && self.depth == 1 && self.expecting_key;
                self.key_matched = Some(0);
            }
            b'{' | b'[' => {
                self.depth += 1;
                self.expecting_key = b == b'{' && self.depth == 1;
            }
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            b',' if self.depth == 1 => self.expecting_key = true,
            b':' if self.depth == 1 => self.expecting_key = false,
            _ => {}
        }
    }

    fn string_byte(&mut self, b: u8) {
        if self.escaped {
            self.escaped = false;
            self.key_matched = None;
        } else if b == b'\\' {
            self.escaped = true;
        } else if b == b'"' {
            self.in_string = false;
            if self.in_key && self.key_matched == Some(KEY.len()) {
                self.has_warnings = true;
            }
            self.in_key = false;
        } else if self.in_key {
            self.key_matched = match self.key_matched {
                Some(at) if KEY.get(at) == Some(&b) => Some(at + 1),
                _ => None,
            };
        }
    }
}

impl Write for TopLevel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        buf.iter().for_each(|&b| self.byte(b));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_objects_without_their_own_warnings_key_qualify() {
        let yes = [
            json!({"a": 1, "b": {"warnings": []}}),
            json!({"a": "warnings", "warningsx": 1, "w\"arnings": 2}),
            json!({"list": [{"warnings": 1}], "s": "{\"warnings\":"}),
            json!({}),
        ];
        for value in yes {
            assert!(is_object_without_warnings(&value).unwrap(), "{value}");
        }
        let no = [
            json!({"a": 1, "warnings": []}),
            json!({"warnings": null}),
            json!([{"a": 1}]),
            json!("text"),
            json!(3),
        ];
        for value in no {
            assert!(!is_object_without_warnings(&value).unwrap(), "{value}");
        }
    }
}
