//! Experiment specs: TOML in, a fully resolved, validated spec out.
//!
//! A spec file has a top-level `kind` naming the stage, an optional `name` (a label for people; it
//! is not part of the experiment's identity), and the stage's own keys. Parsing fills every
//! default, rejects unknown keys and wrong types with the key path, and validates values, all
//! before anything is written anywhere.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::world::WorldConfig;

/// Why a spec was refused: where (file and key path) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    pub source_name: String,
    /// Dotted key path, empty when the problem is with the file as a whole.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source_name, self.reason)
        } else {
            write!(f, "{}: `{}`: {}", self.source_name, self.key, self.reason)
        }
    }
}

/// The stage an experiment runs, with its resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    World(WorldConfig),
}

/// Every kind the lab knows, for error messages.
pub const KINDS: &[&str] = &["world"];

impl Stage {
    pub fn kind(&self) -> &'static str {
        match self {
            Stage::World(_) => "world",
        }
    }

    /// The resolved settings as JSON (every default filled in).
    pub fn settings_json(&self) -> serde_json::Value {
        match self {
            Stage::World(config) => to_json(config),
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("specs serialise to JSON")
}

/// A parsed and validated experiment spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub stage: Stage,
}

impl Spec {
    pub fn kind(&self) -> &'static str {
        self.stage.kind()
    }

    /// The resolved spec as stored in the database: `kind` plus every setting.
    /// The name is kept apart: it labels the experiment but does not identify it.
    pub fn resolved_json(&self) -> serde_json::Value {
        let mut settings = self.stage.settings_json();
        if let serde_json::Value::Object(map) = &mut settings {
            map.insert("kind".into(), self.kind().into());
        }
        settings
    }

    /// Reads a spec file, applies `key.path=value` overrides, resolves and validates it.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            source_name: source_name.clone(),
            key: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        Spec::parse(&text, &source_name, overrides)
    }

    /// Parses spec text; `source_name` is used in errors.
    pub fn parse(text: &str, source_name: &str, overrides: &[String]) -> Result<Spec, SpecError> {
        let err = |key: &str, reason: String| SpecError {
            source_name: source_name.to_string(),
            key: key.to_string(),
            reason,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err("", format!("not valid TOML: {}", e.message())))?;
        for assignment in overrides {
            apply_override(&mut table, assignment).map_err(|reason| err("", reason))?;
        }
        Spec::from_table(table, source_name)
    }

    /// Rebuilds a spec from its stored resolved JSON (used by `lab rerun`).
    pub fn from_resolved_json(
        json: &serde_json::Value,
        name: &str,
        source_name: &str,
    ) -> Result<Spec, SpecError> {
        let err = |reason: String| SpecError {
            source_name: source_name.to_string(),
            key: String::new(),
            reason,
        };
        let text = serde_json::to_string(json).map_err(|e| err(e.to_string()))?;
        let value: toml::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let mut table = match value {
            toml::Value::Table(t) => t,
            _ => return Err(err("stored spec is not an object".into())),
        };
        table.insert("name".into(), toml::Value::String(name.to_string()));
        Spec::from_table(table, source_name)
    }

    fn from_table(mut table: toml::Table, source_name: &str) -> Result<Spec, SpecError> {
        let err = |key: &str, reason: String| SpecError {
            source_name: source_name.to_string(),
            key: key.to_string(),
            reason,
        };
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => {
                return Err(err(
                    "kind",
                    format!("expected a string, found {}", other.type_str()),
                ))
            }
            None => {
                return Err(err(
                    "kind",
                    format!("missing; one of: {}", KINDS.join(", ")),
                ))
            }
        };
        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(err(
                    "name",
                    format!("expected a string, found {}", other.type_str()),
                ))
            }
            None => kind.clone(),
        };
        let stage = match kind.as_str() {
            "world" => {
                let config: WorldConfig = deserialize_settings(table, source_name)?;
                if let Err(problems) = config.validate() {
                    let first = &problems[0];
                    let mut reason = first.reason.clone();
                    if problems.len() > 1 {
                        let rest: Vec<String> = problems[1..]
                            .iter()
                            .map(|p| format!("`{}`: {}", p.field, p.reason))
                            .collect();
                        reason.push_str(&format!(" (also {})", rest.join("; ")));
                    }
                    return Err(err(&first.field, reason));
                }
                Stage::World(config)
            }
            other => {
                return Err(err(
                    "kind",
                    format!("unknown kind `{other}`; one of: {}", KINDS.join(", ")),
                ))
            }
        };
        Ok(Spec { name, stage })
    }
}

/// Deserialises a stage's settings, reporting the key path of the first problem.
fn deserialize_settings<T: DeserializeOwned>(
    table: toml::Table,
    source_name: &str,
) -> Result<T, SpecError> {
    let value = toml::Value::Table(table);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        SpecError {
            source_name: source_name.to_string(),
            key: if key == "." { String::new() } else { key },
            reason: e.into_inner().to_string(),
        }
    })
}

/// Applies `a.b.c=value`. The value is read as a TOML value (`3`, `0.5`, `true`, `"x"`, `[1, 2]`);
/// anything that does not parse as one is taken as a bare string.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("override `{assignment}` is not of the form key.path=value"))?;
    let path = path.trim();
    if path.is_empty() || path.split('.').any(|p| p.is_empty()) {
        return Err(format!("override `{assignment}` has an empty key"));
    }
    let value = parse_override_value(raw.trim());
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().expect("non-empty path");
    let mut current = table;
    for key in keys {
        let entry = current
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("override `{path}`: `{key}` is not a table")),
        };
    }
    current.insert(last.to_string(), value);
    Ok(())
}

fn parse_override_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("the key just written"),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(text, "test.toml", &[])
    }

    #[test]
    fn defaults_fill_in_and_name_defaults_to_kind() {
        let spec = parse("kind = \"world\"").unwrap();
        assert_eq!(spec.name, "world");
        assert_eq!(spec.stage, Stage::World(WorldConfig::default()));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("kind = \"world\"\nseeed = 3").unwrap_err();
        assert!(e.reason.contains("seeed"), "{e}");
        let e = parse("kind = \"world\"\n[shares]\ntaged = 0.1").unwrap_err();
        assert_eq!(e.key, "shares.taged");
        assert!(e.reason.contains("taged"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let e = parse("kind = \"world\"\n[shares]\ntagged = \"lots\"").unwrap_err();
        assert_eq!(e.key, "shares.tagged");
        assert!(
            e.to_string().starts_with("test.toml: `shares.tagged`"),
            "{e}"
        );
    }

    #[test]
    fn impossible_value_is_named() {
        let e = parse("kind = \"world\"\n[shares]\ntagged = 1.5").unwrap_err();
        assert_eq!(e.key, "shares.tagged");
    }

    #[test]
    fn unknown_or_missing_kind() {
        assert_eq!(parse("kind = \"wrold\"").unwrap_err().key, "kind");
        assert_eq!(parse("seed = 1").unwrap_err().key, "kind");
    }

    #[test]
    fn overrides_apply_by_path_and_type() {
        let spec = Spec::parse(
            "kind = \"world\"",
            "t",
            &["seed=42".into(), "shares.tagged=0.25".into()],
        )
        .unwrap();
        let Stage::World(config) = spec.stage;
        assert_eq!(config.seed, 42);
        assert_eq!(config.shares.tagged, 0.25);
        let e = Spec::parse("kind = \"world\"", "t", &["seed=abc".into()]).unwrap_err();
        assert_eq!(e.key, "seed");
        assert!(Spec::parse("kind = \"world\"", "t", &["seed".into()]).is_err());
    }

    #[test]
    fn resolved_json_round_trips() {
        let spec = Spec::parse("kind = \"world\"\nname = \"w\"\nseed = 9", "t", &[]).unwrap();
        let json = spec.resolved_json();
        assert_eq!(json["kind"], "world");
        assert!(json.get("name").is_none());
        let back = Spec::from_resolved_json(&json, "w", "stored").unwrap();
        assert_eq!(back, spec);
    }
}
