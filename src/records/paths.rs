//! `PathList`: a list of paths in one arena string, for the change lists of 100,000 files.
//!
//! A `Vec<String>` of short paths costs about 80 bytes a path (the `String`, its heap block
//! and the allocator's rounding); here a path costs its bytes plus 4. It serializes as a JSON
//! array of strings, like the `Vec<String>` it replaces. Its paths come from a selection or an
//! archive, whose names are bounded far below 4 GiB together (the selection refuses more, a
//! reader keeps at most 8 MiB), so 32-bit offsets hold them.

use serde::ser::{Serialize, SerializeSeq, Serializer};

/// Paths in push order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathList {
    names: String,
    ends: Vec<u32>,
}

impl PathList {
    /// An empty list with room for `paths` paths of `name_bytes` bytes together.
    pub fn with_capacity(paths: usize, name_bytes: usize) -> PathList {
        PathList {
            names: String::with_capacity(name_bytes),
            ends: Vec::with_capacity(paths),
        }
    }

    pub fn push(&mut self, path: &str) {
        self.names.push_str(path);
        self.ends.push(self.names.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Path `i`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.names[start..self.ends[i] as usize]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Keeps only the paths `keep` is true for, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let kept: PathList = self.iter().filter(|p| keep(p)).collect();
        *self = kept;
    }
}

impl<'a> FromIterator<&'a str> for PathList {
    fn from_iter<I: IntoIterator<Item = &'a str>>(paths: I) -> PathList {
        let mut list = PathList::default();
        paths.into_iter().for_each(|path| list.push(path));
        list
    }
}

impl<'a> IntoIterator for &'a PathList {
    type Item = &'a str;
    type IntoIter = Box<dyn Iterator<Item = &'a str> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Serialize for PathList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for path in self.iter() {
            seq.serialize_element(path)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_back_in_order_filter_and_serialize_as_strings() {
        let mut list: PathList = ["etc/a", "", "etc/b/c"].into_iter().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["etc/a", "", "etc/b/c"]);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"["etc/a","","etc/b/c"]"#
        );
        list.retain(|p| !p.is_empty());
        assert_eq!(list.len(), 2);
        assert_eq!(list.get(1), "etc/b/c");
        assert!(PathList::default().is_empty());
    }
}
