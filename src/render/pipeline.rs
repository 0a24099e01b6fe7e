//! What the shipped pySigma processing pipelines need to know, derived from the backends' own
//! field tables, so a Sigma user's conversion names the same columns and paths as rulepack's KQL
//! and SPL (never a hand-kept copy). The Sigma backend's pack templates lay the pipelines out.

use super::backend::{ArrayMap, Backend};
use crate::taxonomy::LogSource;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Pipelines {
    pub kusto: Kusto,
    pub splunk: Splunk,
}

/// Sentinel `AuditLogs`: a Sigma field whose KQL is not a bare column becomes a column computed
/// with `extend`; an array field reads the element of an `mv-expand`ed array.
#[derive(Debug, Serialize)]
pub struct Kusto {
    pub table: String,
    /// Parents before children, so a nested array's source names its parent's variable.
    pub arrays: Vec<KustoArray>,
    pub fields: Vec<KustoField>,
    /// Every computed column of an array field: a rule with any of them is folded back.
    pub array_columns: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct KustoArray {
    pub name: String,
    pub var: String,
    pub source: String,
    /// Computed columns of this array and of the arrays nested in it: any of them in a rule
    /// needs this expansion.
    pub columns: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct KustoField {
    pub sigma: String,
    pub column: String,
    /// None for a bare AuditLogs column (no mapping or `extend` needed).
    pub expr: Option<String>,
}

/// Splunk `azure:monitor:aad`: the raw JSON paths, `{}` for every array on the way.
#[derive(Debug, Serialize)]
pub struct Splunk {
    /// `field=value` pairs of the data macro's default definition (e.g. the sourcetype).
    pub conditions: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
}

/// Builds the view from the Sigma, Sentinel and Splunk backends; an expression shape it cannot
/// turn into a pipeline entry is an error naming the field.
pub fn pipelines(
    sigma: &Backend,
    sentinel: &Backend,
    splunk: &Backend,
    ls: &LogSource,
) -> Result<Pipelines, String> {
    let mut order: Vec<&String> = ls.arrays.keys().collect();
    order.sort_by_key(|a| ancestors(ls, a).len());

    let mut kusto_fields = Vec::new();
    let mut splunk_fields = Vec::new();
    for (neutral, def) in &ls.fields {
        let sigma_name = field_map(sigma, neutral)?.clone();
        let kql = field_map(sentinel, neutral)?;
        let element = match &def.array {
            Some(a) => array_map(sentinel, a)?.var.clone(),
            None => String::new(),
        };
        let bare = kql.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        kusto_fields.push(KustoField {
            column: if bare {
                kql.clone()
            } else {
                format!("rp_{}", neutral.replace('.', "_"))
            },
            expr: (!bare).then(|| kql.replace("{element}", &element)),
            sigma: sigma_name.clone(),
        });
        splunk_fields.push((
            sigma_name,
            splunk_path(splunk, ls, neutral, def.array.as_deref())?,
        ));
    }

    let mut arrays = Vec::new();
    for a in order {
        let m = array_map(sentinel, a)?;
        let source = match ls.arrays[a].parent.as_deref() {
            Some(p) => m.source.replace("{parent}", &array_map(sentinel, p)?.var),
            None => m.source.clone(),
        };
        let columns = ls
            .fields
            .iter()
            .zip(&kusto_fields)
            .filter(|((_, def), _)| {
                def.array
                    .as_deref()
                    .is_some_and(|fa| ancestors(ls, fa).contains(&a.as_str()))
            })
            .map(|(_, k)| k.column.clone())
            .collect();
        arrays.push(KustoArray {
            name: a.clone(),
            var: m.var.clone(),
            source,
            columns,
        });
    }
    let array_columns = ls
        .fields
        .values()
        .zip(&kusto_fields)
        .filter(|(def, _)| def.array.is_some())
        .map(|(_, k)| k.column.clone())
        .collect();
    let table = constant(sentinel, "table")?;
    let conditions = constant(splunk, "macro_definition")?
        .split_whitespace()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("`macro_definition` term `{pair}` is not field=value"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Pipelines {
        kusto: Kusto {
            table,
            arrays,
            fields: kusto_fields,
            array_columns,
        },
        splunk: Splunk {
            conditions,
            fields: splunk_fields,
        },
    })
}

/// The array and its parents, innermost first.
fn ancestors<'l>(ls: &'l LogSource, a: &'l str) -> Vec<&'l str> {
    let mut out = vec![a];
    let mut cur = a;
    while let Some(p) = ls.arrays.get(cur).and_then(|x| x.parent.as_deref()) {
        out.push(p);
        cur = p;
    }
    out
}

fn array_map<'b>(b: &'b Backend, a: &str) -> Result<&'b ArrayMap, String> {
    b.fields
        .arrays
        .get(a)
        .ok_or_else(|| format!("array `{a}` has no `{}` mapping", b.config.name))
}

fn field_map<'b>(b: &'b Backend, neutral: &str) -> Result<&'b String, String> {
    b.fields
        .fields
        .get(neutral)
        .ok_or_else(|| format!("field `{neutral}` has no `{}` mapping", b.config.name))
}

fn constant(b: &Backend, key: &str) -> Result<String, String> {
    b.fields
        .constants
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "`{}` fields.yml has no string constant `{key}`",
                b.config.name
            )
        })
}

/// The raw event path of a field in Splunk: `'properties.x'` for a scalar, the array sources
/// joined with the key of `spath({element}, "key")` for an array field.
fn splunk_path(
    splunk: &Backend,
    ls: &LogSource,
    neutral: &str,
    array: Option<&str>,
) -> Result<String, String> {
    let expr = &splunk.fields.fields[neutral];
    let Some(a) = array else {
        return Ok(expr.trim_matches('\'').to_string());
    };
    let key = expr
        .strip_prefix("spath({element}, \"")
        .and_then(|k| k.strip_suffix("\")"))
        .ok_or_else(|| {
            format!("splunk field `{neutral}` is not `spath({{element}}, \"key\")`: {expr}")
        })?;
    let mut path = Vec::new();
    for level in ancestors(ls, a).into_iter().rev() {
        path.push(array_map(splunk, level)?.source.clone());
    }
    path.push(key.to_string());
    Ok(path.join("."))
}
