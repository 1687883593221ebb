//! Lexer and parser: expression text → [`Node`] tree, with 1-based line/column errors.

use std::fmt;

use regex::Regex;

use crate::functions::{self, Func, Spec};
use crate::regex_util;

/// A syntax error, an unknown function, a wrong number of arguments or an invalid literal
/// regex, at a 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Calls may nest this deep; deeper input is refused (it would only exhaust the stack).
pub const MAX_DEPTH: usize = 64;

/// A node of the parsed expression.
#[derive(Debug)]
pub(crate) enum Node {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    /// An attribute, and its slot: the number the mapping gave its name ([`NO_SLOT`] until then).
    Attr(String, usize),
    Call(Box<Call>),
}

/// The slot of an attribute no mapping numbered (an expression parsed on its own).
pub(crate) const NO_SLOT: usize = usize::MAX;

/// A function call, with what could be prepared at parse time.
#[derive(Debug)]
pub(crate) struct Call {
    pub spec: &'static Spec,
    pub args: Vec<Node>,
    /// The pattern argument compiled once, when it is a string literal.
    pub regex: Option<Regex>,
    /// Entra's 7-argument `Replace`: which form, decided from the arguments given.
    pub replace7: Option<Replace7>,
}

/// The forms of Entra's 7-argument `Replace(source, oldValue, regexPattern, regexGroupName,
/// replacementValue, replacementAttributeName, template)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace7 {
    /// oldValue and replacementValue: literal replacement in source.
    Literal,
    /// oldValue and template: oldValue in template replaced by source.
    Template,
    /// regexPattern and replacementValue: regex replacement in source (groups usable).
    Regex,
    /// regexPattern, regexGroupName and replacementValue: each match's group replaced.
    RegexGroup,
    /// regexPattern, regexGroupName and replacementAttributeName: source if it has a value,
    /// else the group's match in replacementAttributeName.
    Fallback,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'s> {
    LParen,
    RParen,
    Comma,
    Attr(String),
    Str(String),
    Num(f64),
    Name(&'s str),
    Bad(char),
    End,
}

#[derive(Debug, Clone)]
struct Token<'s> {
    tok: Tok<'s>,
    line: u32,
    column: u32,
}

fn describe(t: &Tok<'_>) -> String {
    match t {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Attr(a) => format!("the attribute [{a}]"),
        Tok::Str(s) => format!("the string {}", crate::value::quote(s)),
        Tok::Num(n) => format!("the number {}", crate::value::format_number(*n)),
        Tok::Name(n) => format!("the name {n}"),
        Tok::Bad(c) => format!("the character {c:?}"),
        Tok::End => "end of input".into(),
    }
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line: u32,
    column: u32,
}

impl<'s> Lexer<'s> {
    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, line: u32, column: u32, message: String) -> ParseError {
        ParseError { line, column, message }
    }

    fn next(&mut self) -> Result<Token<'s>, ParseError> {
        while self.peek_char().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let (line, column) = (self.line, self.column);
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::End,
                line,
                column,
            });
        };
        let tok = match c {
            '(' => {
                self.bump();
                Tok::LParen
            }
            ')' => {
                self.bump();
                Tok::RParen
            }
            ',' => {
                self.bump();
                Tok::Comma
            }
            '[' => {
                self.bump();
                let start = self.pos;
                loop {
                    match self.peek_char() {
                        Some(']') => break,
                        Some('\n') | None => {
                            let found = if self.peek_char().is_some() {
                                "a line break"
                            } else {
                                "end of input"
                            };
                            return Err(self.error(
                                self.line,
                                self.column,
                                format!(
                                    "expected ']' to close the attribute name opened at line {line}, column {column}, found {found}"
                                ),
                            ));
                        }
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                let name = self.src[start..self.pos].trim().to_string();
                self.bump();
                if name.is_empty() {
                    return Err(self.error(line, column, "expected an attribute name between '[' and ']'".into()));
                }
                Tok::Attr(name)
            }
            '"' => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(self.error(
                                self.line,
                                self.column,
                                format!(
                                    "expected '\"' to close the string opened at line {line}, column {column}, found end of input"
                                ),
                            ));
                        }
                        Some('"') => break,
                        Some('\\') => match self.peek_char() {
                            Some(e @ ('"' | '\\')) => {
                                self.bump();
                                s.push(e);
                            }
                            // Any other backslash stays as written, so regexes read naturally.
                            _ => s.push('\\'),
                        },
                        Some(ch) => s.push(ch),
                    }
                }
                Tok::Str(s)
            }
            c if c.is_ascii_digit()
                || (c == '-' && self.src[self.pos + 1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                let start = self.pos;
                self.bump();
                while self.peek_char().is_some_and(|d| d.is_ascii_digit()) {
                    self.bump();
                }
                if self.peek_char() == Some('.') && self.src[self.pos + 1..].starts_with(|d: char| d.is_ascii_digit()) {
                    self.bump();
                    while self.peek_char().is_some_and(|d| d.is_ascii_digit()) {
                        self.bump();
                    }
                }
                let text = &self.src[start..self.pos];
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Tok::Num(n),
                    _ => return Err(self.error(line, column, format!("the number {text} is out of range"))),
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.peek_char().is_some_and(|d| d.is_alphanumeric() || d == '_') {
                    self.bump();
                }
                Tok::Name(&self.src[start..self.pos])
            }
            other => {
                self.bump();
                Tok::Bad(other)
            }
        };
        Ok(Token { tok, line, column })
    }
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    peeked: Option<Token<'s>>,
}

impl<'s> Parser<'s> {
    fn peek(&mut self) -> Result<&Token<'s>, ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Token<'s>, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    /// One expression; `ctx` names the call and argument it is part of, for messages.
    fn expr(&mut self, depth: usize, ctx: Option<(&Spec, usize)>) -> Result<Node, ParseError> {
        let t = self.next()?;
        let expected = || match ctx {
            Some((spec, i)) => format!("expected an expression as argument {} of {}", i + 1, spec.name),
            None => "expected an expression".to_string(),
        };
        let err = |t: &Token<'_>, message: String| ParseError {
            line: t.line,
            column: t.column,
            message,
        };
        match &t.tok {
            Tok::Str(s) => Ok(Node::Str(s.clone())),
            Tok::Num(n) => Ok(Node::Num(*n)),
            Tok::Attr(a) => Ok(Node::Attr(a.clone(), NO_SLOT)),
            Tok::Name(n) if n.eq_ignore_ascii_case("null") => Ok(Node::Null),
            Tok::Name(n) if n.eq_ignore_ascii_case("true") => Ok(Node::Bool(true)),
            Tok::Name(n) if n.eq_ignore_ascii_case("false") => Ok(Node::Bool(false)),
            Tok::Name(n) => {
                let name = *n;
                match functions::lookup(name) {
                    Some(spec) => {
                        if depth >= MAX_DEPTH {
                            return Err(err(
                                &t,
                                format!("expressions may nest at most {MAX_DEPTH} function calls deep"),
                            ));
                        }
                        let open = self.next()?;
                        if open.tok != Tok::LParen {
                            return Err(err(
                                &open,
                                format!(
                                    "expected '(' after the function name {}, found {}",
                                    spec.name,
                                    describe(&open.tok)
                                ),
                            ));
                        }
                        self.call(spec, &t, depth)
                    }
                    None if self.peek()?.tok == Tok::LParen => {
                        if let Some(why) = functions::not_offered(name) {
                            return Err(err(
                                &t,
                                format!("{name} is an Entra function Roster does not offer: {why}"),
                            ));
                        }
                        let hint = match functions::suggest(name) {
                            Some(s) => format!("; did you mean {s}?"),
                            None => "; see the README for the list of functions".into(),
                        };
                        Err(err(&t, format!("unknown function {name}{hint}")))
                    }
                    None => Err(err(
                        &t,
                        format!(
                            "{}, found the name {name} (strings need double quotes, attributes square brackets, functions parentheses)",
                            expected()
                        ),
                    )),
                }
            }
            other => Err(err(&t, format!("{}, found {}", expected(), describe(other)))),
        }
    }

    /// The arguments after `Name(`, then the checks of count and literal regexes.
    fn call(&mut self, spec: &'static Spec, name_tok: &Token<'s>, depth: usize) -> Result<Node, ParseError> {
        let mut args = Vec::new();
        let mut positions = Vec::new();
        let mut empty: Option<(u32, u32)> = None;
        if self.peek()?.tok == Tok::RParen {
            self.next()?;
        } else {
            loop {
                let p = self.peek()?;
                let pos = (p.line, p.column);
                positions.push(pos);
                if matches!(p.tok, Tok::Comma | Tok::RParen) {
                    empty.get_or_insert(pos);
                    args.push(Node::Null);
                } else {
                    args.push(self.expr(depth + 1, Some((spec, args.len())))?);
                }
                let sep = self.next()?;
                match sep.tok {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    ref other => {
                        let message = if args.len() >= spec.max_args {
                            format!(
                                "expected ')' after the arguments of {}, found {}",
                                spec.name,
                                describe(other)
                            )
                        } else {
                            format!(
                                "expected ',' or ')' after argument {} of {}, found {}",
                                args.len(),
                                spec.name,
                                describe(other)
                            )
                        };
                        return Err(ParseError {
                            line: sep.line,
                            column: sep.column,
                            message,
                        });
                    }
                }
            }
        }
        let at = |message: String| ParseError {
            line: name_tok.line,
            column: name_tok.column,
            message,
        };
        let replace7 = spec.func == Func::Replace && args.len() == 7;
        if let Some((line, column)) = empty
            && !replace7
        {
            return Err(ParseError {
                line,
                column,
                message: format!(
                    "expected an expression as an argument of {}, found an empty argument (only Entra's 7-argument Replace leaves arguments empty; write null)",
                    spec.name
                ),
            });
        }
        if let Some(message) = functions::check_arity(spec, args.len()) {
            return Err(at(message));
        }
        let mut call = Call {
            spec,
            args,
            regex: None,
            replace7: None,
        };
        if replace7 {
            call.replace7 = Some(replace7_form(&call.args).map_err(at)?);
        }
        if let Some(i) = functions::pattern_index(&call)
            && let Node::Str(pattern) = &call.args[i]
        {
            let (line, column) = positions[i];
            let re = regex_util::compile(pattern).map_err(|e| ParseError {
                line,
                column,
                message: format!("{}: {e}", spec.name),
            })?;
            if call.replace7.is_some()
                && let Node::Str(group) = &call.args[3]
                && !re.capture_names().any(|n| n == Some(group.as_str()))
                && group.parse::<usize>().map_or(true, |g| g >= re.captures_len())
            {
                let (line, column) = positions[3];
                return Err(ParseError {
                    line,
                    column,
                    message: format!(
                        "Replace: regexGroupName {} is not a group of the pattern",
                        crate::value::quote(group)
                    ),
                });
            }
            call.regex = Some(re);
        }
        Ok(Node::Call(Box::new(call)))
    }
}

/// Which form of the 7-argument Replace the given (non-null) arguments select.
fn replace7_form(args: &[Node]) -> Result<Replace7, String> {
    let given = |i: usize| !matches!(args[i], Node::Null);
    let (old, pattern, group, value, attr, template) = (given(1), given(2), given(3), given(4), given(5), given(6));
    let form = match (old, pattern, group, value, attr, template) {
        (true, false, false, true, false, false) => Some(Replace7::Literal),
        (true, false, false, false, false, true) => Some(Replace7::Template),
        (false, true, false, true, false, false) => Some(Replace7::Regex),
        (false, true, true, true, false, false) => Some(Replace7::RegexGroup),
        (false, true, true, false, true, false) => Some(Replace7::Fallback),
        _ => None,
    };
    form.ok_or_else(|| {
        "Replace with 7 arguments (source, oldValue, regexPattern, regexGroupName, replacementValue, \
         replacementAttributeName, template) takes one of these sets: oldValue + replacementValue, \
         oldValue + template, regexPattern + replacementValue, regexPattern + regexGroupName + replacementValue, \
         regexPattern + regexGroupName + replacementAttributeName; leave the others empty"
            .to_string()
    })
}

/// Parses one expression; the whole input must be that expression.
pub(crate) fn parse(src: &str) -> Result<Node, ParseError> {
    let mut p = Parser {
        lexer: Lexer {
            src,
            pos: 0,
            line: 1,
            column: 1,
        },
        peeked: None,
    };
    let node = p.expr(0, None)?;
    let end = p.next()?;
    if end.tok != Tok::End {
        return Err(ParseError {
            line: end.line,
            column: end.column,
            message: format!(
                "expected end of input after the expression, found {}",
                describe(&end.tok)
            ),
        });
    }
    Ok(node)
}
