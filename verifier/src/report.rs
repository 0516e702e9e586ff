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

    /// A checklist for people: one line per check, values shown for failures.
    pub fn human(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            if c.pass {
                s.push_str(&format!("✓ {}: {}\n", c.name, c.found));
            } else {
                s.push_str(&format!(
                    "✗ {}\n    expected {}\n    found    {}\n",
                    c.name, c.expected, c.found
                ));
            }
        }
        s
    }
}
