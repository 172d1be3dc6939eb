//! Experiment specs: TOML in, a fully resolved, validated spec out.
//!
//! A spec file has a top-level `kind` naming the stage, an optional `name` (a label for people; it
//! is not part of the experiment's identity), and the stage's own keys. Parsing fills every
//! default, rejects unknown keys and wrong types with the key path, and validates values, all
//! before anything is written anywhere.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::stages::{with_stage_kinds, StageContext, StageError, StageKind};

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

macro_rules! define_stage {
    ($($variant:ident: $settings:ty,)*) => {
        /// The stage an experiment runs, with its resolved settings: one variant per kind of
        /// the registry ([`with_stage_kinds!`]), and recipes.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Stage {
            $($variant($settings),)*
            /// Named stages run in dependency order; the recipe's id covers all of them.
            Recipe(Recipe),
        }

        /// Every kind the lab knows, for error messages.
        pub const KINDS: &[&str] = &[$(<$settings as StageKind>::KIND,)* "recipe"];

        impl Stage {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Stage::$variant(_) => <$settings as StageKind>::KIND,)*
                    Stage::Recipe(_) => "recipe",
                }
            }

            /// Whether a stage of this kind computes with a model (and so runs on a device).
            pub fn runs_models(&self) -> bool {
                match self {
                    $(Stage::$variant(_) => <$settings as StageKind>::RUNS_MODELS,)*
                    Stage::Recipe(_) => false,
                }
            }

            /// The inputs a stage of this kind needs, by role.
            pub fn input_roles(&self) -> &'static [&'static str] {
                match self {
                    $(Stage::$variant(_) => <$settings as StageKind>::INPUTS,)*
                    Stage::Recipe(_) => &[],
                }
            }

            /// The resolved settings as JSON (every default filled in). A recipe's stages are
            /// identified through its inputs (one per stage), so its settings are empty.
            pub fn settings_json(&self) -> serde_json::Value {
                match self {
                    $(Stage::$variant(settings) => to_json(settings),)*
                    Stage::Recipe(_) => serde_json::json!({}),
                }
            }

            /// Runs the stage to completion, recording into `ctx`.
            pub fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
                match self {
                    $(Stage::$variant(settings) => settings.run(ctx),)*
                    // A recipe's work is done by its stages, which run before it.
                    Stage::Recipe(_) => Ok(()),
                }
            }

            /// The settings of a stage of registered `kind` from its table, validated; `None`
            /// for a kind the registry does not have.
            fn from_settings(
                kind: &str,
                table: toml::Table,
                source_name: &str,
                key_prefix: &str,
                base_dir: &Path,
                err: &dyn Fn(&str, String) -> SpecError,
            ) -> Option<Result<Stage, SpecError>> {
                $(
                    if kind == <$settings as StageKind>::KIND {
                        return Some(
                            deserialize_settings::<$settings>(table, source_name, key_prefix)
                                .and_then(|mut settings| {
                                    report_problems(StageKind::validate(&settings).err().unwrap_or_default(), err)?;
                                    report_problems(StageKind::resolve(&mut settings, base_dir).err().unwrap_or_default(), err)?;
                                    Ok(Stage::$variant(settings))
                                }),
                        );
                    }
                )*
                None
            }
        }
    };
}
with_stage_kinds!(define_stage);

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputRef {
    /// Another spec file (path resolved against the referring file's folder).
    SpecFile(PathBuf),
    /// A stage of the same recipe: `"@name"`.
    RecipeStage(String),
    /// A stored experiment: `"id:3fa2c1"` (a unique prefix is enough).
    Id(String),
    /// A spec written in place: `{ hf = "models/smollm2" }` is an `hf` stage of that directory.
    Inline(Box<Spec>),
}

impl fmt::Display for InputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputRef::SpecFile(path) => write!(f, "{}", path.display()),
            InputRef::RecipeStage(name) => write!(f, "@{name}"),
            InputRef::Id(id) => write!(f, "id:{id}"),
            InputRef::Inline(spec) => write!(f, "{} `{}`", spec.kind(), spec.name),
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
    /// Where each input comes from, by role. Not part of the resolved settings: inputs enter
    /// the id as the ids they resolve to.
    pub inputs: BTreeMap<String, InputRef>,
    /// The device a stage that runs models computes on ([`crate::device::NAMES`]); `None` is
    /// burn's flex CPU backend. Another device rounds otherwise, so it is part of the id; the
    /// default is left out of the resolved spec, so specs that name none keep their ids.
    pub device: Option<String>,
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
            if let Some(device) = &self.device {
                map.insert("device".into(), device.clone().into());
            }
        }
        settings
    }

    /// Runs every stage of this spec that runs models (a recipe's stages written in it) on
    /// `device`, as `lab run --device` asks; the ids change accordingly.
    pub fn set_device(&mut self, device: &str) -> Result<(), SpecError> {
        let device = crate::device::canonical_name(device).map_err(|reason| SpecError {
            source_name: "--device".into(),
            key: String::new(),
            reason,
        })?;
        self.apply_device(device.as_deref());
        Ok(())
    }

    fn apply_device(&mut self, device: Option<&str>) {
        match &mut self.stage {
            Stage::Recipe(recipe) => {
                for stage in recipe.stages.values_mut() {
                    stage.apply_device(device);
                }
            }
            stage if stage.runs_models() => self.device = device.map(str::to_string),
            _ => {}
        }
    }

    /// Reads a spec file, applies `key.path=value` overrides, resolves and validates it.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Spec, SpecError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            source_name: source_name.clone(),
            key: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Spec::parse_in(&text, &source_name, overrides, base_dir)
    }

    /// Parses spec text; `source_name` is used in errors. Relative input paths are taken from
    /// the working directory.
    pub fn parse(text: &str, source_name: &str, overrides: &[String]) -> Result<Spec, SpecError> {
        Spec::parse_in(text, source_name, overrides, Path::new("."))
    }

    fn parse_in(
        text: &str,
        source_name: &str,
        overrides: &[String],
        base_dir: &Path,
    ) -> Result<Spec, SpecError> {
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
        Spec::from_table(table, source_name, base_dir, "")
    }

    /// Rebuilds a spec from its stored resolved JSON and its inputs' ids (used by `lab rerun`).
    pub fn from_resolved_json(
        json: &serde_json::Value,
        name: &str,
        inputs: &BTreeMap<String, String>,
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
        let kind = table
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        if kind == "recipe" {
            // A recipe's stages are its inputs; rerunning it reruns nothing but the bookkeeping.
            table.insert("stages".into(), toml::Value::Table(toml::Table::new()));
        }
        let inputs: toml::Table = inputs
            .iter()
            .map(|(role, id)| (role.clone(), toml::Value::String(format!("id:{id}"))))
            .collect();
        if !inputs.is_empty() && kind != "recipe" {
            table.insert("inputs".into(), toml::Value::Table(inputs));
        }
        Spec::from_table(table, source_name, Path::new("."), "")
    }

    /// `key_prefix` is the path of this spec inside a recipe (`stages.base.`), for errors.
    fn from_table(
        mut table: toml::Table,
        source_name: &str,
        base_dir: &Path,
        key_prefix: &str,
    ) -> Result<Spec, SpecError> {
        let err = |key: &str, reason: String| SpecError {
            source_name: source_name.to_string(),
            key: format!("{key_prefix}{key}"),
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
        let device = match table.remove("device") {
            None => None,
            Some(toml::Value::String(name)) => {
                crate::device::canonical_name(&name).map_err(|reason| err("device", reason))?
            }
            Some(other) => {
                return Err(err(
                    "device",
                    format!("expected a device name, found {}", other.type_str()),
                ))
            }
        };
        let inputs_table = match table.remove("inputs") {
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                return Err(err(
                    "inputs",
                    format!("expected a table, found {}", other.type_str()),
                ))
            }
            None => toml::Table::new(),
        };
        let mut inputs = BTreeMap::new();
        for (role, value) in inputs_table {
            let key = format!("inputs.{role}");
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Table(t) if t.len() == 1 && t.contains_key("hf") => {
                    let path = match &t["hf"] {
                        toml::Value::String(path) => path.clone(),
                        other => {
                            return Err(err(
                                &format!("{key}.hf"),
                                format!("expected a model directory, found {}", other.type_str()),
                            ))
                        }
                    };
                    let name = Path::new(&path)
                        .file_name()
                        .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
                    let table = toml::Table::from_iter([
                        ("kind".to_string(), toml::Value::String("hf".into())),
                        ("name".to_string(), toml::Value::String(format!("hf/{name}"))),
                        ("path".to_string(), toml::Value::String(path)),
                    ]);
                    let spec = Spec::from_table(
                        table,
                        source_name,
                        base_dir,
                        &format!("{key_prefix}{key}."),
                    )?;
                    inputs.insert(role, InputRef::Inline(Box::new(spec)));
                    continue;
                }
                other => {
                    return Err(err(
                        &key,
                        format!(
                            "expected a spec path, \"@stage\", \"id:PREFIX\" or {{ hf = \"DIR\" }}, found {}",
                            other.type_str()
                        ),
                    ))
                }
            };
            let input = if let Some(stage) = text.strip_prefix('@') {
                InputRef::RecipeStage(stage.to_string())
            } else if let Some(id) = text.strip_prefix("id:") {
                InputRef::Id(id.to_string())
            } else {
                InputRef::SpecFile(base_dir.join(&text))
            };
            inputs.insert(role, input);
        }
        let stage = match kind.as_str() {
            "recipe" => {
                let stages = match table.remove("stages") {
                    Some(toml::Value::Table(t)) => t,
                    _ => {
                        return Err(err(
                            "stages",
                            "a recipe needs a [stages.NAME] table per stage".into(),
                        ))
                    }
                };
                if let Some(key) = table.keys().next() {
                    return Err(err(
                        key,
                        "unknown key in a recipe (expected `stages`)".into(),
                    ));
                }
                let mut specs = BTreeMap::new();
                for (stage_name, value) in stages {
                    let prefix = format!("{key_prefix}stages.{stage_name}.");
                    let mut stage_table = match value {
                        toml::Value::Table(t) => t,
                        // A stage kept in its own file, shared by several recipes; it may be
                        // a recipe itself (the paper's chain runs the base, R1-Zero, R1 and
                        // distillation recipes), which runs as one experiment of its own.
                        toml::Value::String(path) => {
                            let spec = Spec::load(&base_dir.join(&path), &[])
                                .map_err(|e| err(&format!("stages.{stage_name}"), e.to_string()))?;
                            specs.insert(stage_name, spec);
                            continue;
                        }
                        other => {
                            return Err(err(
                                &format!("stages.{stage_name}"),
                                format!(
                                    "expected a table or a spec file path, found {}",
                                    other.type_str()
                                ),
                            ))
                        }
                    };
                    stage_table
                        .entry("name")
                        .or_insert_with(|| toml::Value::String(format!("{name}/{stage_name}")));
                    let spec = Spec::from_table(stage_table, source_name, base_dir, &prefix)?;
                    specs.insert(stage_name, spec);
                }
                Stage::Recipe(Recipe::new(specs).map_err(|(key, reason)| err(&key, reason))?)
            }
            other => {
                match Stage::from_settings(other, table, source_name, key_prefix, base_dir, &err) {
                    Some(stage) => stage?,
                    None => {
                        return Err(err(
                            "kind",
                            format!("unknown kind `{other}`; one of: {}", KINDS.join(", ")),
                        ))
                    }
                }
            }
        };
        let expected = stage.input_roles();
        for role in inputs.keys() {
            if !expected.contains(&role.as_str()) {
                let wanted = if expected.is_empty() {
                    "this kind takes no inputs".to_string()
                } else {
                    format!("expected one of: {}", expected.join(", "))
                };
                return Err(err(
                    &format!("inputs.{role}"),
                    format!("unknown input; {wanted}"),
                ));
            }
        }
        for role in expected {
            if !inputs.contains_key(*role) {
                return Err(err(
                    &format!("inputs.{role}"),
                    format!("missing: a `{kind}` stage needs its `{role}` input (a spec path, \"@stage\" or \"id:PREFIX\")"),
                ));
            }
        }
        for input in inputs.values() {
            if let InputRef::RecipeStage(stage) = input {
                if key_prefix.is_empty() {
                    return Err(err(
                        "inputs",
                        format!(
                            "`@{stage}` refers to a recipe stage, but this spec is not in a recipe"
                        ),
                    ));
                }
            }
        }
        if device.is_some() && !stage.runs_models() {
            return Err(err(
                "device",
                format!("a `{kind}` stage runs no model; only stages that do take a device"),
            ));
        }
        Ok(Spec {
            name,
            stage,
            inputs,
            device,
        })
    }
}

/// Turns a validator's `(field, reason)` list into one error naming the first field.
fn report_problems(
    problems: Vec<(String, String)>,
    err: &dyn Fn(&str, String) -> SpecError,
) -> Result<(), SpecError> {
    if problems.is_empty() {
        return Ok(());
    }
    let (field, first) = &problems[0];
    let mut reason = first.clone();
    if problems.len() > 1 {
        let rest: Vec<String> = problems[1..]
            .iter()
            .map(|(f, r)| format!("`{f}`: {r}"))
            .collect();
        reason.push_str(&format!(" (also {})", rest.join("; ")));
    }
    Err(err(field, reason))
}

/// Every `@stage` names a stage of the recipe, and the stages form no cycle.
fn check_recipe_references(stages: &BTreeMap<String, Spec>) -> Result<(), (String, String)> {
    for (name, spec) in stages {
        for (role, input) in &spec.inputs {
            if let InputRef::RecipeStage(target) = input {
                if !stages.contains_key(target) {
                    return Err((
                        format!("stages.{name}.inputs.{role}"),
                        format!(
                            "no stage `{target}` in this recipe; stages: {}",
                            stages.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    }
    recipe_order(stages).map(|_| ())
}

/// A recipe: named stages, each a spec, run in dependency order; a stage uses another as
/// `@name`. Its id covers all of them (its inputs are its stages).
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub stages: BTreeMap<String, Spec>,
}

impl Recipe {
    /// Every `@stage` must name a stage of the recipe, and the stages must form no cycle;
    /// otherwise the key path of the problem and why.
    fn new(stages: BTreeMap<String, Spec>) -> Result<Recipe, (String, String)> {
        check_recipe_references(&stages)?;
        Ok(Recipe { stages })
    }

    /// The stage names in an order where every stage comes after the stages it uses.
    pub fn order(&self) -> Vec<String> {
        recipe_order(&self.stages).expect("a recipe's references were checked when it was built")
    }
}

/// The stages in an order where every stage comes after the stages it uses, or the cycle.
fn recipe_order(stages: &BTreeMap<String, Spec>) -> Result<Vec<String>, (String, String)> {
    let mut order: Vec<String> = Vec::new();
    let mut remaining: Vec<&String> = stages.keys().collect();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|name| {
            stages[*name].inputs.values().all(|input| match input {
                InputRef::RecipeStage(target) => order.contains(target),
                _ => true,
            })
        });
        match ready {
            Some(i) => order.push(remaining.remove(i).clone()),
            None => {
                return Err((
                    "stages".into(),
                    format!(
                        "the stages refer to each other in a cycle: {}",
                        remaining
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        }
    }
    Ok(order)
}

/// Deserialises a stage's settings, reporting the key path of the first problem.
fn deserialize_settings<T: DeserializeOwned>(
    table: toml::Table,
    source_name: &str,
    key_prefix: &str,
) -> Result<T, SpecError> {
    let value = toml::Value::Table(table);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let key = e.path().to_string();
        SpecError {
            source_name: source_name.to_string(),
            key: if key == "." {
                key_prefix.trim_end_matches('.').to_string()
            } else {
                format!("{key_prefix}{key}")
            },
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

/// A stored resolved spec as `key.path → value` (values as JSON text; an empty table is a
/// value, `{}`), with each input as `input.ROLE → id`: what `lab diff` and the TUI's Diff view
/// compare.
pub fn flat_settings(
    spec: &serde_json::Value,
    inputs: &[(String, String, String)],
) -> BTreeMap<String, String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match value {
            serde_json::Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, item, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", spec, &mut out);
    for (role, parent, _) in inputs {
        out.insert(format!("input.{role}"), parent.clone());
    }
    out
}

/// The keys whose values differ between two flattened specs, in key order, each with its left
/// and right value (`None` where the key is absent).
pub fn differences(
    left: &BTreeMap<String, String>,
    right: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    keys.into_iter()
        .filter(|k| left.get(*k) != right.get(*k))
        .map(|k| (k.clone(), left.get(k).cloned(), right.get(k).cloned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::WorldConfig;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        Spec::parse(text, "test.toml", &[])
    }

    /// A device is part of the id of a stage that runs models; the default (flex) is left out,
    /// so specs that name none keep their ids.
    #[test]
    fn a_device_is_part_of_the_id_of_stages_that_run_models() {
        let eval = "kind = \"eval\"\ninputs = { model = \"id:ab\", world = \"id:cd\" }\n";
        let id = |text: &str| {
            let spec = parse(text).unwrap();
            crate::identity::experiment_id(&spec.resolved_json(), &BTreeMap::new())
        };
        let flex = id(eval);
        assert_eq!(id(&format!("{eval}device = \"flex\"")), flex);
        let tch = id(&format!("{eval}device = \"tch-cpu\""));
        assert_ne!(tch, flex);
        assert_eq!(
            id(&format!("{eval}device = \"libtorch\"")),
            tch,
            "one spelling"
        );
        assert_ne!(id(&format!("{eval}device = \"cuda:0\"")), tch);

        let err = parse(&format!("{eval}device = \"gpu\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`device`") && err.contains("unknown device"),
            "{err}"
        );
        let err = parse("kind = \"world\"\ndevice = \"tch-cpu\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`device`") && err.contains("runs no model"),
            "{err}"
        );

        // `lab run --device` sets it on a recipe's stages that run models, and on no other.
        let mut recipe = parse(
            "kind = \"recipe\"\n[stages.world]\nkind = \"world\"\n\
             [stages.eval]\nkind = \"eval\"\ninputs = { model = \"id:ab\", world = \"@world\" }\n",
        )
        .unwrap();
        recipe.set_device("cuda:1").unwrap();
        let Stage::Recipe(r) = &recipe.stage else {
            panic!("a recipe")
        };
        assert_eq!(r.stages["eval"].device.as_deref(), Some("cuda:1"));
        assert_eq!(r.stages["world"].device, None);
        assert!(recipe.set_device("tpu").is_err());
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
        let Stage::World(config) = spec.stage else {
            panic!("a world spec");
        };
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
        let back = Spec::from_resolved_json(&json, "w", &BTreeMap::new(), "stored").unwrap();
        assert_eq!(back, spec);
    }
}
