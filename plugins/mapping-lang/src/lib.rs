//! `roster-mapping`: Roster's mapping language, on plain records.
//!
//! The `mapping` transform component compiles this crate to WebAssembly; the host's benchmark
//! and tests compile the very same code natively. It has no bindings and no I/O: a
//! [`Mapping`] is a pure function of its JSON text and the records it is applied to.
//!
//! * [`Expr`]: expressions modelled on Microsoft Entra's attribute-mapping functions, e.g.
//!   `ToLower(StripDomain([userPrincipalName]))`.
//! * [`Mapping`]: user field expressions, user scoping rules (Entra's scoping filters) and
//!   group rules (include/exclude, regex rewrites, manual fan-out, case), parsed and validated
//!   once by [`Mapping::parse`], applied by [`Mapping::map_user`] and [`Mapping::map_group`].
//!
//! # Grammar (EBNF)
//!
//! ```text
//! expression = ws , term , ws ;
//! term       = call | attribute | string | number | "true" | "false" | "null" ;
//! call       = name , ws , "(" , [ argument , { "," , argument } ] , ")" ;
//! argument   = ws , [ expression ] , ws ;   (* empty only in Entra's 7-argument Replace *)
//! attribute  = "[" , attr-char , { attr-char } , "]" ;   (* surrounding spaces trimmed *)
//! attr-char  = ? any character except "]" and line break ? ;
//! string     = '"' , { str-char | '\"' | '\\' } , '"' ;
//! str-char   = ? any character except '"' and "\" ? | "\" ? followed by any other character ? ;
//! number     = [ "-" ] , digit , { digit } , [ "." , digit , { digit } ] ;
//! name       = letter , { letter | digit | "_" } ;   (* function names: case-insensitive *)
//! ws         = { ? whitespace, including line breaks ? } ;
//! ```
//!
//! `true`, `false` and `null` are case-insensitive. A backslash in a string escapes only `"` and
//! `\`; before any other character it stays as written, so `"\d+"` and `"\\d+"` are the same
//! regex. Nothing else exists: no operators, no variables, no comments.
//!
//! Parse errors ([`ParseError`]) carry a 1-based line and column (in characters) and say what
//! was expected: `line 1, column 17: expected ')' after the arguments of Replace, found end of
//! input`. Unknown functions, wrong argument counts and invalid literal regexes are parse
//! errors too. Evaluation errors ([`EvalError`]) name the function.
//!
//! The functions are listed in [`FUNCTIONS`] and in the crate's README. There is no clock and no
//! randomness (no `Now`, `Guid`, `RandomString`): transforms are pure.

mod eval;
mod functions;
mod mapping;
mod parse;
mod regex_util;
mod value;

pub use eval::{EvalError, Expr};
pub use functions::{FUNCTIONS, FunctionInfo};
pub use mapping::{
    Changes, GroupOutcome, GroupRecord, Mapping, MappingError, Outcome, Record, RecordView, UserRecord, Verdict,
};
pub use parse::{MAX_DEPTH, ParseError};
pub use value::{Attributes, Value, format_number, lookup_pairs};
