//! Tar entry names reduced to plain components before anything touches the disk.

use crate::Limits;

/// Why an entry name is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathFault {
    Nul,
    DotDot,
    /// Longer than `Limits::max_path_bytes` (the length is carried for the message).
    TooLong(usize),
    /// More components than `Limits::max_depth`.
    TooDeep(usize),
}

/// Splits a tar name into components: leading `/` and `./`, empty and `.` components go; `..` and NUL are
/// refused rather than resolved, because no image tool writes them and a lexical `..` is how archives escape.
/// The root itself (`./`, `/`) is an empty list.
pub(crate) fn clean<'a>(raw: &'a [u8], limits: &Limits) -> Result<Vec<&'a [u8]>, PathFault> {
    if raw.contains(&0) {
        return Err(PathFault::Nul);
    }
    if raw.len() > limits.max_path_bytes {
        return Err(PathFault::TooLong(raw.len()));
    }
    let mut parts = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathFault::DotDot),
            _ => parts.push(part),
        }
    }
    if parts.len() > limits.max_depth {
        return Err(PathFault::TooDeep(parts.len()));
    }
    Ok(parts)
}

/// `a/b` from components, the form upper-path sets and messages use.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// The parent of a joined path (`""` for a top-level name).
pub(crate) fn parent(path: &[u8]) -> Option<&[u8]> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|b| *b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    })
}

pub(crate) fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Result<Vec<String>, PathFault> {
        clean(raw.as_bytes(), &Limits::default()).map(|v| v.into_iter().map(show).collect())
    }

    #[test]
    fn strips_leading_slash_dot_and_empty_components() {
        assert_eq!(parts("/a/b").unwrap(), ["a", "b"]);
        assert_eq!(parts("./a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert_eq!(parts(".//./x").unwrap(), ["x"]);
        assert!(parts("./").unwrap().is_empty());
        assert!(parts("/").unwrap().is_empty());
        assert_eq!(parts("a/.wh..wh..opq").unwrap(), ["a", ".wh..wh..opq"]);
        assert_eq!(parts("...").unwrap(), ["..."]);
    }

    #[test]
    fn refuses_dotdot_anywhere_and_nul() {
        assert_eq!(parts("../escape"), Err(PathFault::DotDot));
        assert_eq!(parts("a/../../b"), Err(PathFault::DotDot));
        assert_eq!(parts("a/.."), Err(PathFault::DotDot));
        assert_eq!(clean(b"a\0b", &Limits::default()), Err(PathFault::Nul));
    }

    #[test]
    fn caps_length_and_depth() {
        let limits = Limits { max_path_bytes: 8, max_depth: 3, ..Limits::default() };
        assert_eq!(clean(b"abcdefghi", &limits), Err(PathFault::TooLong(9)));
        assert!(clean(b"abcdefgh", &limits).is_ok());
        assert_eq!(clean(b"a/b/c/d", &limits), Err(PathFault::TooDeep(4)));
        assert!(clean(b"a/b/c", &limits).is_ok());
    }

    #[test]
    fn join_and_parent() {
        assert_eq!(join(b"", b"a"), b"a");
        assert_eq!(join(b"a/b", b"c"), b"a/b/c");
        assert_eq!(parent(b"a/b/c"), Some(&b"a/b"[..]));
        assert_eq!(parent(b"a"), Some(&b""[..]));
        assert_eq!(parent(b""), None);
    }
}
