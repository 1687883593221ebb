//! WASI error numbers in plugin messages, put in the user's words. A plugin's Rust or C
//! standard library describes a failed call as `No such file or directory (os error 44)`: the
//! number is WASI's (not the host's), and the words are libc's. This is the one place that
//! knows the numbers; every message a plugin returns passes through [`in_user_words`].

use std::borrow::Cow;

/// (WASI errno, wasi-libc's `strerror` text, what it means to an administrator.) Numbers from
/// the WASI `errno` enum (wasi-libc `__WASI_ERRNO_*`), which wasip2's libc still uses.
const ERRNOS: &[(u32, &str, &str)] = &[
    (
        2,
        "Permission denied",
        "permission denied: Roster's service account may not read it",
    ),
    (8, "Bad file descriptor", "the file was not open for that"),
    (14, "Connection refused", "the connection was refused"),
    (
        15,
        "Connection reset by peer",
        "the connection was reset by the other side",
    ),
    (20, "File exists", "it already exists"),
    (23, "Host is unreachable", "the host cannot be reached"),
    (28, "Invalid argument", "an invalid argument"),
    (29, "I/O error", "the disk reported an I/O error"),
    (31, "Is a directory", "it is a folder, not a file"),
    (37, "Filename too long", "the name is too long"),
    (40, "Network unreachable", "the network cannot be reached"),
    (44, "No such file or directory", "it does not exist"),
    (48, "Out of memory", "the plugin ran out of memory"),
    (51, "No space left on device", "the disk is full"),
    (52, "Function not implemented", "plugins may not do that"),
    (54, "Not a directory", "a part of the path is a file, not a folder"),
    (58, "Not supported", "plugins may not do that"),
    (63, "Operation not permitted", "not permitted to plugins"),
    (
        69,
        "Read-only file system",
        "the source's `files` folder is read-only to plugins",
    ),
    (73, "Operation timed out", "it timed out"),
    (
        76,
        "Capabilities insufficient",
        "outside what the source grants the plugin (its `files` folder and `network` settings)",
    ),
];

/// `message` with every `<libc words> (os error N)` replaced by what WASI errno N means to an
/// administrator; a number not in the table is named as a WASI error, never left bare.
pub fn in_user_words(message: &str) -> Cow<'_, str> {
    const MARK: &str = "(os error ";
    if !message.contains(MARK) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let closed = digits > 0 && after[digits..].starts_with(')');
        let Some(code) = closed.then(|| after[..digits].parse::<u32>().ok()).flatten() else {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
            continue;
        };
        let before = &rest[..at];
        match ERRNOS.iter().find(|(n, _, _)| *n == code) {
            Some((_, libc, words)) => {
                let trimmed = before.trim_end();
                match trimmed.len().checked_sub(libc.len()) {
                    Some(cut) if trimmed.is_char_boundary(cut) && trimmed[cut..].eq_ignore_ascii_case(libc) => {
                        out.push_str(&trimmed[..cut]);
                        out.push_str(words);
                    }
                    _ => {
                        out.push_str(before);
                        out.push('(');
                        out.push_str(words);
                        out.push(')');
                    }
                }
            }
            None => {
                out.push_str(before);
                out.push_str(&format!("(WASI error {code} in the plugin sandbox)"));
            }
        }
        rest = &after[digits + 1..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::in_user_words;

    #[test]
    fn a_wasi_errno_becomes_words_and_the_number_goes() {
        assert_eq!(
            in_user_words("cannot read users.json: No such file or directory (os error 44)"),
            "cannot read users.json: it does not exist"
        );
        assert_eq!(
            in_user_words("open /etc/x: Capabilities insufficient (os error 76); then (os error 2)"),
            "open /etc/x: outside what the source grants the plugin (its `files` folder and `network` settings); then (permission denied: Roster's service account may not read it)"
        );
        assert_eq!(
            in_user_words("odd: Whatever (os error 999)"),
            "odd: Whatever (WASI error 999 in the plugin sandbox)"
        );
    }

    #[test]
    fn messages_without_an_errno_are_left_alone() {
        assert!(matches!(in_user_words("401 from Graph"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(in_user_words("(os error x) (os error "), "(os error x) (os error ");
    }
}
