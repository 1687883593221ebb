//! No input makes the parser, the evaluator or the mapping panic: random text, random
//! well-formed expressions over random records, random group names. A tiny deterministic PRNG
//! keeps failures reproducible.

use std::panic::{AssertUnwindSafe, catch_unwind};

use roster_mapping::{Expr, FUNCTIONS, GroupRecord, Mapping, Record};

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that stress the lexer, case mapping, normalisation and regexes.
const CHARS: &[char] = &[
    'a', 'Z', 'x', 'é', 'ß', 'İ', 'ﬀ', '\u{301}', '日', '🎉', 'Ø', 'ǅ', ' ', '\t', '\n', '@', '\\', '.', '-', '_', '1',
    '0', ',', '$', '(', ')', '[', ']', '"', '*', '+', '?', '{', '}', '|', '^', '%', '\u{0}', '\u{feff}', '한',
];

const WORDS: &[&str] = &[
    "ToLower(",
    "Replace(",
    "RegexReplace(",
    "Mid(",
    "Left(",
    "Join(",
    "Switch(",
    "IIF(",
    "[mail]",
    "[otherMails]",
    "\"",
    "\\\"",
    ",",
    ")",
    "null",
    "true",
    "-",
    "1",
    "99999999999999999999",
    " ",
    "\n",
    "Word(",
    "(?<x>",
    "${x}",
];

fn random_text(rng: &mut Rng) -> String {
    let len = rng.below(40);
    let mut s = String::new();
    for _ in 0..len {
        if rng.below(3) == 0 {
            let w = *rng.pick::<&str>(WORDS);
            s.push_str(w);
        } else {
            s.push(*rng.pick(CHARS));
        }
    }
    s
}

fn random_string_literal(rng: &mut Rng) -> String {
    let mut s = String::from("\"");
    for _ in 0..rng.below(8) {
        match *rng.pick(CHARS) {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

const ATTRS: &[&str] = &[
    "mail",
    "otherMails",
    "empty",
    "n",
    "missing",
    "upn",
    "username",
    "active",
    "email",
];

fn random_expr(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth > 4 { 4 } else { 9 }) {
        0 => format!("[{}]", rng.pick(ATTRS)),
        1 => random_string_literal(rng),
        2 => rng
            .pick(&[
                "0",
                "1",
                "-1",
                "3",
                "2.5",
                "100000000000",
                "-99999999999999999999",
                "1e3",
            ])
            .split('e')
            .next()
            .unwrap()
            .to_string(),
        3 => rng.pick(&["null", "true", "false"]).to_string(),
        _ => {
            let f = rng.pick(FUNCTIONS);
            let mut n = f.min_args + rng.below(3);
            if f.max_args != usize::MAX {
                n = n.min(f.max_args);
            }
            if f.name == "Replace" {
                n = if rng.below(2) == 0 { 3 } else { 7 };
            }
            if f.name == "Switch" && n % 2 == 1 {
                n += 1;
            }
            let args: Vec<String> = (0..n)
                .map(|i| {
                    if f.name == "Replace" && n == 7 && rng.below(2) == 0 && i > 0 {
                        String::new()
                    } else if rng.below(6) == 0 {
                        // A pattern-ish literal, or one only known at evaluation time.
                        let p = rng.pick(&["\"(?<x>a)\"", "\"^(.*)@\"", "\"[\"", "\"\\\\d+\"", "\"x{2,}\"", "\"\""]);
                        if rng.below(2) == 0 {
                            format!("Append({p}, \"\")")
                        } else {
                            p.to_string()
                        }
                    } else {
                        random_expr(rng, depth + 1)
                    }
                })
                .collect();
            format!("{}({})", f.name, args.join(", "))
        }
    }
}

fn random_record(rng: &mut Rng) -> Record {
    let mut attributes = Vec::new();
    for _ in 0..rng.below(12) {
        let name = rng.pick(ATTRS).to_string();
        let value = random_text(rng);
        attributes.push((name, value));
    }
    Record {
        username: random_text(rng),
        email: (rng.below(2) == 0).then(|| random_text(rng)),
        display_name: (rng.below(2) == 0).then(|| random_text(rng)),
        active: rng.below(2) == 0,
        attributes,
    }
}

#[test]
fn random_text_never_panics_the_parser() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let record = random_record(&mut rng);
    for _ in 0..20_000 {
        let src = random_text(&mut rng);
        let r = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(e) = Expr::parse(&src) {
                let _ = e.eval(&record);
            }
        }));
        assert!(r.is_ok(), "panicked on {src:?}");
    }
}

#[test]
fn random_expressions_never_panic_the_evaluator() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut parsed = 0;
    for _ in 0..6_000 {
        let src = random_expr(&mut rng, 0);
        let records: Vec<Record> = (0..3).map(|_| random_record(&mut rng)).collect();
        let r = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(e) = Expr::parse(&src) {
                parsed += 1;
                for rec in &records {
                    let _ = e.eval(rec).map(|v| v.to_string());
                }
            }
        }));
        assert!(r.is_ok(), "panicked on {src:?} with {records:?}");
    }
    assert!(
        parsed > 3_000,
        "the generator should mostly make valid expressions, made {parsed}"
    );
}

#[test]
fn random_records_and_groups_never_panic_a_mapping() {
    let m = Mapping::parse(
        r#"{
          "user": {
            "username": "ToLower(StripDomain(Coalesce([upn], [username])))",
            "email": "First([otherMails])",
            "display_name": "PCase(NormalizeDiacritics(Join(\" \", [mail], [n])))",
            "attributes": {"x": "Split([mail], \"@\")", "y": "Mid([n], 2, 3)"}
          },
          "scope": {"rules": [
            {"all": [{"attribute": "n", "op": "greater-than", "value": "3"}]},
            {"all": [{"attribute": "mail", "op": "regex-match", "value": "^\\w"}]},
            {"all": [{"attribute": "empty", "op": "is-null"}]}
          ]},
          "groups": {"include": ["re:.", "x"], "exclude": ["^z"],
                     "rules": [{"match": "^(.)(.*)$", "to": ["$2", "${1}x"]}, {"name": "a", "to": ["b"]}],
                     "case": "upper"}
        }"#,
    )
    .unwrap();
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let rec = random_record(&mut rng);
        let name = random_text(&mut rng);
        let r = catch_unwind(AssertUnwindSafe(|| {
            let _ = m.map_user(&rec);
            let _ = m.map_group(&GroupRecord {
                name: name.clone(),
                description: None,
                attributes: vec![],
            });
        }));
        assert!(r.is_ok(), "panicked on {rec:?} / group {name:?}");
    }
}

#[test]
fn random_mapping_text_never_panics_the_parser() {
    let mut rng = Rng(7);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"user\"",
        "\"scope\"",
        "\"groups\"",
        "\"rules\"",
        "\"all\"",
        "\"op\"",
        "\"equals\"",
        "\"match\"",
        "\"to\"",
        "\"(\"",
        "null",
        "true",
        "1",
        "\"ToLower([a]\"",
    ];
    for _ in 0..5_000 {
        let text: String = (0..rng.below(30)).map(|_| *rng.pick(&pieces)).collect();
        let r = catch_unwind(|| Mapping::parse(&text).map(|_| ()));
        assert!(r.is_ok(), "panicked on {text:?}");
    }
}
