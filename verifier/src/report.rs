//! A verification report: a list of checks, each with what was expected and what was found.

use serde::Serialize;

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it passed.
    pub pass: bool,
    /// The expected value.
    pub expected: String,
    /// The value found.
    pub found: String,
}

impl Check {
    /// A check that passed, showing what was found.
    pub fn pass(name: impl Into<String>, found: impl Into<String>) -> Self {
        let found = found.into();
        Check {
            name: name.into(),
            pass: true,
            expected: found.clone(),
            found,
        }
    }

    /// A check that failed: what was expected, and what was found instead.
    pub fn fail(
        name: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Check {
            name: name.into(),
            pass: false,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// A check that passes when `expected == found`.
    pub fn equal(name: impl Into<String>, expected: &str, found: &str) -> Self {
        Check {
            name: name.into(),
            pass: expected == found,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

/// All checks of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.pass)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.pass)
    }

    /// A checklist for people: one line per check, values shown for failures. Names and
    /// values are [`printable`]: a string from the input cannot move the cursor, erase a line
    /// or change the colours.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let (name, expected, found) = (
                printable(&c.name),
                printable(&c.expected),
                printable(&c.found),
            );
            if c.pass {
                s.push_str(&format!("✓ {name}: {found}\n"));
            } else {
                s.push_str(&format!(
                    "✗ {name}\n    expected {expected}\n    found    {found}\n"
                ));
            }
        }
        s
    }
}

/// `s` with every character that a terminal would act on instead of showing written as a
/// `\u{..}` escape: C0 and C1 controls (ESC, CR, backspace, newline…), DEL, and the Unicode
/// bidirectional controls (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), which can make
/// text read in another order than it is stored. A backslash is doubled, so an escape in the
/// output always means an escaped character.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}');
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || bidi {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}
