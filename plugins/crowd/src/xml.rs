//! The XML documents of Crowd's REST API, read as a stream: the document's root is checked and
//! each element directly below it is built as a small tree and handed over, so a listing of
//! 200,000 memberships never becomes a tree of 200,000 nodes (the plugin has 128 MiB).
//!
//! A document that ends before its root element closes (a truncated answer) or that is not
//! well-formed is an error: a listing read only in part would look like deletions.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// How deep elements may nest below the root. Crowd's deepest document (an event's user with
/// its attributes' values) nests five levels; a hostile one nested 100,000 deep would overflow
/// the plugin's stack when its tree is dropped.
pub const MAX_DEPTH: usize = 64;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed, or cut off before its root element closed.
    Broken(String),
    /// Well-formed, but not the document asked for (another root element).
    Unexpected(String),
}

/// One element: its (local) name, attributes, child elements and text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (any namespace prefix dropped).
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// The text directly inside, entities resolved.
    pub text: String,
}

impl Element {
    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The first child element of that name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child element of that name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child element of that name, if it has any.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str()).filter(|t| !t.is_empty())
    }
}

fn start(e: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = e.local_name().as_ref().to_string();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::Broken(format!("attribute of <{name}>: {err}")))?;
        let key = a.key.local_name().as_ref().to_string();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| XmlError::Broken(format!("attribute `{key}` of <{name}>: {err}")))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

/// Reads a document whose root element is `root`, handing each element directly below the
/// root to `each` as soon as it closes; returns the root's attributes. `each` may stop the
/// reading with its own error.
pub fn for_each<E: From<XmlError>>(
    body: &[u8],
    root: &str,
    mut each: impl FnMut(Element) -> Result<(), E>,
) -> Result<Vec<(String, String)>, E> {
    let text = std::str::from_utf8(body).map_err(|e| XmlError::Broken(format!("not UTF-8 text ({e})")))?;
    let mut reader = Reader::from_str(text);
    let mut root_attrs: Option<Vec<(String, String)>> = None;
    let mut closed = false;
    // The open elements below the root; the first is the item being built.
    let mut open: Vec<Element> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Broken(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            Event::Start(e) | Event::Empty(e) if closed => {
                let name = e.local_name().as_ref().to_string();
                return Err(XmlError::Broken(format!("<{name}> after the end of the <{root}> document")).into());
            }
            Event::Start(e) => {
                let el = start(&e)?;
                if root_attrs.is_none() {
                    root_attrs = Some(is_root(el, root)?);
                } else if open.len() >= MAX_DEPTH {
                    return Err(XmlError::Unexpected(format!(
                        "a <{root}> document nesting elements more than {MAX_DEPTH} deep, which no Crowd answer does"
                    ))
                    .into());
                } else {
                    open.push(el);
                }
            }
            Event::Empty(e) => {
                let el = start(&e)?;
                if root_attrs.is_none() {
                    root_attrs = Some(is_root(el, root)?);
                    closed = true;
                } else {
                    close(el, &mut open, &mut each)?;
                }
            }
            Event::End(_) => match open.pop() {
                Some(el) => close(el, &mut open, &mut each)?,
                None => closed = true,
            },
            Event::Text(t) => {
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .ok_or_else(|| XmlError::Broken(format!("unknown entity &{};", r.xml10_content())))?
                        .to_string(),
                    Err(e) => return Err(XmlError::Broken(format!("bad character reference: {e}")).into()),
                };
                if let Some(top) = open.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    match root_attrs {
        None => Err(XmlError::Broken(format!("empty answer, expected a <{root}> document")).into()),
        Some(_) if !closed => {
            Err(XmlError::Broken(format!("the <{root}> document ends before it is closed (cut off?)")).into())
        }
        Some(attrs) => Ok(attrs),
    }
}

/// Reads a whole (small) document whose root element is `root` as one tree.
pub fn read_one(body: &[u8], root: &str) -> Result<Element, XmlError> {
    let mut children = Vec::new();
    let attrs = for_each::<XmlError>(body, root, |el| {
        children.push(el);
        Ok(())
    })?;
    Ok(Element {
        name: root.to_string(),
        attrs,
        children,
        text: String::new(),
    })
}

fn is_root(el: Element, root: &str) -> Result<Vec<(String, String)>, XmlError> {
    if el.name == root {
        Ok(el.attrs)
    } else {
        Err(XmlError::Unexpected(format!(
            "a <{}> document where a <{root}> document was expected",
            el.name
        )))
    }
}

fn close<E: From<XmlError>>(
    el: Element,
    open: &mut [Element],
    each: &mut impl FnMut(Element) -> Result<(), E>,
) -> Result<(), E> {
    match open.last_mut() {
        Some(parent) => {
            parent.children.push(el);
            Ok(())
        }
        None => each(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Attrs = Vec<(String, String)>;

    fn items(body: &str, root: &str) -> Result<(Attrs, Vec<Element>), XmlError> {
        let mut out = Vec::new();
        let attrs = for_each::<XmlError>(body.as_bytes(), root, |e| {
            out.push(e);
            Ok(())
        })?;
        Ok((attrs, out))
    }

    #[test]
    fn items_come_with_attributes_children_and_resolved_text() {
        let body = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<users expand="user">
  <user name="a&amp;b"><email>a&#64;x.org</email><display-name><![CDATA[A <B>]]></display-name><active>true</active></user>
  <user name="c"/>
</users>"#;
        let (attrs, users) = items(body, "users").unwrap();
        assert_eq!(attrs, vec![("expand".to_string(), "user".to_string())]);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].attr("name"), Some("a&b"));
        assert_eq!(users[0].text_of("email"), Some("a@x.org"));
        assert_eq!(users[0].text_of("display-name"), Some("A <B>"));
        assert_eq!(users[1].attr("name"), Some("c"));
        assert!(items("<users/>", "users").unwrap().1.is_empty());
    }

    #[test]
    fn cut_off_broken_and_other_documents_are_refused() {
        let cut = r#"<users><user name="a"><active>true</active></user><user name="b"><act"#;
        assert!(matches!(items(cut, "users"), Err(XmlError::Broken(_))));
        let unclosed = r#"<users><user name="a"/>"#;
        assert!(matches!(items(unclosed, "users"), Err(XmlError::Broken(m)) if m.contains("cut off")));
        assert!(matches!(items("", "users"), Err(XmlError::Broken(m)) if m.contains("empty")));
        assert!(matches!(
            items("<users><user></users>", "users"),
            Err(XmlError::Broken(_))
        ));
        assert!(matches!(
            items("<html><body>Login</body></html>", "users"),
            Err(XmlError::Unexpected(m)) if m.contains("<html>")
        ));
        assert!(matches!(items("<users/><users/>", "users"), Err(XmlError::Broken(_))));
    }

    #[test]
    fn a_document_nested_too_deep_is_refused_before_its_tree_grows() {
        let depth = 100_000;
        let body = format!("<users>{}{}</users>", "<a>".repeat(depth), "</a>".repeat(depth));
        assert!(
            matches!(items(&body, "users"), Err(XmlError::Unexpected(m)) if m.contains("more than 64 deep")),
            "refused as unexpected"
        );
        // As deep as allowed still reads.
        let ok = format!("<users>{}{}</users>", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert_eq!(items(&ok, "users").unwrap().1.len(), 1);
    }
}
