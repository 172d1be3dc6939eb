//! Experiment identity: what makes two runs "the same experiment".
//!
//! An id is blake3 over a canonical encoding of the resolved spec (every default filled in), the
//! ids of the experiment's inputs by role, and [`NUMERICS_VERSION`]. The encoding is JSON with
//! object keys sorted at every level and no whitespace; floats are written in their shortest
//! round-trip decimal form, which maps each f64 to exactly one string and back. Names, comments,
//! key order and whether a default was written out do not reach the encoding, so they cannot
//! change an id; every value that affects results does. Settings that say where files lie (a
//! model directory's path) are stored but left out: a model is identified by its content.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Bumped by hand whenever a change to the code alters what an unchanged spec of every kind
/// produces, so old results are never mistaken for new ones.
pub const NUMERICS_VERSION: u32 = 1;

/// The numerics version of one stage kind: its [`StageKind::NUMERICS_VERSION`], whose
/// documentation says why each kind's version moved; [`NUMERICS_VERSION`] for a recipe. A change
/// that alters only some kinds' results bumps those kinds, so unrelated cached stages (a
/// 30-minute base model) stay valid.
///
/// [`StageKind::NUMERICS_VERSION`]: crate::stages::StageKind::NUMERICS_VERSION
pub fn numerics_version(kind: &str) -> u32 {
    crate::stages::STAGE_KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or(NUMERICS_VERSION, |(_, version, _)| *version)
}

/// The settings of `kind` that say where, not what ([`StageKind::LOCATION_FIELDS`]).
///
/// [`StageKind::LOCATION_FIELDS`]: crate::stages::StageKind::LOCATION_FIELDS
fn location_fields(kind: &str) -> &'static [&'static str] {
    crate::stages::STAGE_KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or(&[], |(_, _, fields)| fields)
}

/// A full experiment id: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExperimentId(String);

impl ExperimentId {
    /// Accepts a full 64-hex-digit id.
    pub fn parse(text: &str) -> Option<ExperimentId> {
        let ok = text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| ExperimentId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-digit prefix shown in tables.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ExperimentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of an experiment with resolved spec `spec` built from `inputs` (role → input id).
pub fn experiment_id(spec: &Value, inputs: &BTreeMap<String, ExperimentId>) -> ExperimentId {
    let inputs: serde_json::Map<String, Value> = inputs
        .iter()
        .map(|(role, id)| (role.clone(), Value::String(id.0.clone())))
        .collect();
    let mut envelope = serde_json::Map::new();
    envelope.insert("inputs".into(), Value::Object(inputs));
    let kind = spec
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    envelope.insert("numerics_version".into(), numerics_version(kind).into());
    let mut spec = spec.clone();
    if let Value::Object(settings) = &mut spec {
        for field in location_fields(kind) {
            settings.remove(*field);
        }
    }
    envelope.insert("spec".into(), spec);
    let encoded = canonical_json(&Value::Object(envelope));
    ExperimentId(blake3::hash(encoded.as_bytes()).to_hex().to_string())
}

/// JSON with keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Numbers: integers print exactly; f64 prints the shortest string that parses back to
        // the same bits (ryu), so the encoding is exact.
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    /// Every kind a spec may name has its numerics version from the registry; the versions are
    /// pinned, as the ids built on them are.
    #[test]
    fn every_kind_has_its_numerics_version_from_the_registry() {
        let versions: Vec<(&str, u32)> = crate::spec::KINDS
            .iter()
            .map(|kind| (*kind, numerics_version(kind)))
            .collect();
        assert_eq!(
            versions,
            [
                ("world", 2),
                ("pretrain", 2),
                ("sft", 2),
                ("grpo", 4),
                ("coldstart", 1),
                ("reject", 4),
                ("eval", 4),
                ("hf", 1),
                ("recipe", NUMERICS_VERSION),
            ]
        );
        assert_eq!(
            crate::stages::STAGE_KINDS.len() + 1,
            crate::spec::KINDS.len()
        );
    }

    fn id_of(text: &str) -> ExperimentId {
        let spec = Spec::parse(text, "t", &[]).unwrap();
        experiment_id(&spec.resolved_json(), &BTreeMap::new())
    }

    #[test]
    fn key_order_comments_names_and_explicit_defaults_keep_the_id() {
        let base = id_of("kind = \"world\"\nseed = 3");
        assert_eq!(base, id_of("seed = 3 # the seed\nkind = \"world\""));
        assert_eq!(base, id_of("kind = \"world\"\nname = \"other\"\nseed = 3"));
        let default_tagged = crate::world::WorldConfig::default().shares.tagged;
        assert_eq!(
            base,
            id_of(&format!(
                "kind = \"world\"\nseed = 3\n[shares]\ntagged = {default_tagged:?}"
            ))
        );
    }

    #[test]
    fn any_value_change_changes_the_id() {
        let base = id_of("kind = \"world\"\nseed = 3");
        assert_ne!(base, id_of("kind = \"world\"\nseed = 4"));
        assert_ne!(
            base,
            id_of("kind = \"world\"\nseed = 3\n[shares]\ntagged = 0.123")
        );
    }

    #[test]
    fn inputs_and_floats_are_part_of_identity() {
        let spec = serde_json::json!({"kind": "x", "lr": 0.1});
        let none = experiment_id(&spec, &BTreeMap::new());
        let parent = ExperimentId("a".repeat(64));
        let with = experiment_id(&spec, &BTreeMap::from([("base".to_string(), parent)]));
        assert_ne!(none, with);
        let near = serde_json::json!({"kind": "x", "lr": 0.1 + f64::EPSILON});
        assert_ne!(none, experiment_id(&near, &BTreeMap::new()));
    }

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let v = serde_json::json!({"b": {"z": 1, "a": [2.5, {"y": true, "x": null}]}, "a": "s"});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"s","b":{"a":[2.5,{"x":null,"y":true}],"z":1}}"#
        );
    }

    #[test]
    fn parse_accepts_only_full_lowercase_hex() {
        assert!(ExperimentId::parse(&"0f".repeat(32)).is_some());
        assert!(ExperimentId::parse("0f").is_none());
        assert!(ExperimentId::parse(&"0F".repeat(32)).is_none());
    }
}
