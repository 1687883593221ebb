//! Input layouts shared by the targets: a fuzz input split into text parts, so a corpus file
//! can be a real document (a mapping, an export, a Graph page) that a person can read.

/// The parts of `data` between NUL bytes (which no JSON text or expression contains).
pub fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0).collect()
}

/// `bytes` as text, with invalid UTF-8 replaced: the parsers under test take `&str`.
pub fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}
