//! The neutral log source: its fields, their types, and the arrays they live in. Declared once in
//! `templates/logsources/<name>.yml`; each backend maps these names in its own folder.

use crate::diag::{Code, Diagnostic};
use crate::load::yaml;
use crate::source::SourceMap;
use crate::templates::Templates;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Datetime,
    /// A string that holds JSON text (oldValue/newValue): can be decoded with `json:`.
    JsonText,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayDef {
    pub description: String,
    /// Path of the array in a Graph directoryAudit record (relative to the parent element).
    pub graph: String,
    #[serde(default)]
    pub parent: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub description: String,
    /// Dotted path in a Graph directoryAudit record (relative to the array element if any).
    pub graph: String,
    #[serde(default)]
    pub array: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    pub name: String,
    pub title: String,
    pub arrays: IndexMap<String, ArrayDef>,
    pub fields: IndexMap<String, FieldDef>,
    /// The field that says what happened (see `activity_field` in the log source file).
    pub activity_field: String,
    /// The shape of one Graph record: a mapping is an object, a one-element list an array of
    /// that element, a string a scalar type (`string`, `number`, `boolean`, `any`).
    pub record: serde_json::Value,
}

impl LogSource {
    /// Loads `rel` (e.g. `logsources/entra_audit.yml`) from the templates.
    pub fn load(
        rel: &str,
        templates: &Templates,
        sources: &mut SourceMap,
    ) -> Result<LogSource, Diagnostic> {
        let file = templates.read(rel, sources)?;
        let ls: LogSource = yaml::parse(sources, file)?;
        ls.check().map_err(|m| {
            Diagnostic::error(Code::Taxonomy, m)
                .in_file(sources.get(file).path.clone())
                .help(
                    "every array's parent and every field's array must be declared under `arrays`",
                )
        })?;
        Ok(ls)
    }

    fn check(&self) -> Result<(), String> {
        for (name, a) in &self.arrays {
            if let Some(p) = &a.parent
                && !self.arrays.contains_key(p)
            {
                return Err(format!("array `{name}` names unknown parent `{p}`"));
            }
        }
        for (name, f) in &self.fields {
            if let Some(a) = &f.array
                && !self.arrays.contains_key(a)
            {
                return Err(format!("field `{name}` names unknown array `{a}`"));
            }
            if self.field_shape(name).is_none() {
                return Err(format!("field `{name}`: its graph path is not in `record`"));
            }
        }
        if !self.fields.contains_key(&self.activity_field) {
            return Err(format!(
                "`activity_field` names unknown field `{}`",
                self.activity_field
            ));
        }
        Ok(())
    }

    /// Where a field sits in `record`: its arrays' graph paths, then its own, each step an
    /// object key, an array stepping into its element.
    pub fn graph_path(&self, field: &str) -> Option<Vec<String>> {
        let f = self.fields.get(field)?;
        let mut path = Vec::new();
        if let Some(a) = &f.array {
            for arr in self.array_chain(a) {
                path.extend(self.arrays.get(&arr)?.graph.split('.').map(String::from));
            }
        }
        path.extend(f.graph.split('.').map(String::from));
        Some(path)
    }

    /// The declared type of a field in `record` (arrays stepped through).
    fn field_shape(&self, field: &str) -> Option<&serde_json::Value> {
        let mut at = &self.record;
        for key in self.graph_path(field)? {
            if let serde_json::Value::Array(a) = at {
                at = a.first()?;
            }
            at = at.get(&key)?;
        }
        Some(at)
    }

    /// Arrays from the outermost down to `array`.
    pub fn array_chain(&self, array: &str) -> Vec<String> {
        let mut chain = vec![array.to_string()];
        let mut cur = array;
        while let Some(p) = self.arrays.get(cur).and_then(|a| a.parent.as_deref()) {
            chain.push(p.to_string());
            cur = p;
        }
        chain.reverse();
        chain
    }
}
