//! Stage 2, validate: `RawRule` → `Rule`. Reports every problem it finds, each at the value's
//! position, instead of stopping at the first.

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::ir::{ArrayName, Case, Cmp, Cond, FieldPath, JsonStep, Op, Pred, StrOp};
use crate::load::raw::{RawCondition, RawCorrelation, RawOutput, RawRule, S, TestEvent};
use crate::load::yaml::span_of;
use crate::model::*;
use crate::source::{FileId, Span};
use crate::taxonomy::{FieldType, LogSource};
use std::collections::HashMap;

struct Ctx<'a> {
    file: FileId,
    logsources: &'a [LogSource],
    params: Vec<Parameter>,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn span<T>(&self, v: &S<T>) -> Span {
        span_of(v, self.file)
    }

    fn err<T>(&mut self, v: &S<T>, code: Code, msg: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::error(code, msg).at(self.span(v)).help(help);
        self.diags.push(d);
    }
}

pub fn validate<E: TestEvent>(
    raw: &RawRule<E>,
    file: FileId,
    logsources: &[LogSource],
) -> Result<Rule, Vec<Diagnostic>> {
    let mut cx = Ctx {
        file,
        logsources,
        params: Vec::new(),
        diags: Vec::new(),
    };
    let rule = rule(&mut cx, raw);
    match rule {
        Some(r) if cx.diags.is_empty() => Ok(r),
        _ => Err(cx.diags),
    }
}

fn rule<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Option<Rule> {
    let id = check(
        cx,
        &raw.id,
        Code::InvalidId,
        is_uuid,
        "`id` must be a UUID such as 6f1e2a4b-8c3d-4e5f-9a0b-1c2d3e4f5a6b",
        "generate one with `uuidgen`; never change it once published",
    )
    .map(|s| RuleId(s.to_ascii_lowercase()));
    let name = check(
        cx,
        &raw.name,
        Code::InvalidName,
        is_slug,
        "`name` must be 3-60 characters of a-z, 0-9 and _, starting with a letter",
        "it becomes the file name of every artifact, e.g. `guest_invited`",
    )
    .map(RuleName);
    let title = nonempty(cx, &raw.title, 120);
    let description = nonempty(cx, &raw.description, 5000);
    if raw.description.value.trim().len() < 16 {
        cx.err(
            &raw.description,
            Code::BadMetadata,
            "`description` is too short",
            "say what the rule detects and why its severity fits, in at least 16 characters",
        );
    }
    let status = pick(
        cx,
        &raw.status,
        &[
            ("experimental", Status::Experimental),
            ("test", Status::Test),
            ("stable", Status::Stable),
            ("deprecated", Status::Deprecated),
        ],
        "status",
    );
    let severity = pick(
        cx,
        &raw.severity,
        &[
            ("informational", Severity::Informational),
            ("low", Severity::Low),
            ("medium", Severity::Medium),
            ("high", Severity::High),
        ],
        "severity",
    );
    let author = nonempty(cx, &raw.author, 200);
    let date = check(
        cx,
        &raw.date,
        Code::BadMetadata,
        is_date,
        "`date` must be a date YYYY-MM-DD",
        "write the creation date, e.g. 2026-11-28",
    );
    let modified = raw.modified.as_ref().and_then(|m| {
        check(
            cx,
            m,
            Code::BadMetadata,
            is_date,
            "`modified` must be a date YYYY-MM-DD",
            "write the date of the last logic change",
        )
    });
    if let (Some(d), Some(m), Some(rm)) = (&date, &modified, &raw.modified)
        && m <= d
    {
        cx.err(
            rm,
            Code::BadMetadata,
            "`modified` must be later than `date`",
            "remove `modified` or set it to the date of the change",
        );
    }
    let version = check(
        cx,
        &raw.version,
        Code::BadMetadata,
        is_semver,
        "`version` must be a semantic version a.b.c",
        "e.g. 1.0.0; bump it whenever the logic changes",
    );
    let references = raw.references.iter().map(|r| r.value.clone()).collect();
    for r in &raw.references {
        if !(r.value.starts_with("https://") || r.value.starts_with("http://")) {
            cx.err(
                r,
                Code::BadMetadata,
                "a reference must be a URL",
                "write the full https:// address",
            );
        }
    }
    let tactics = raw
        .attack
        .tactics
        .iter()
        .filter_map(|t| tactic(cx, t))
        .collect::<Vec<_>>();
    let techniques = raw
        .attack
        .techniques
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadAttackId,
                is_technique,
                "ATT&CK technique ids look like T1136 or T1136.003",
                "use the id from attack.mitre.org, upper-case T",
            )
            .map(Technique)
        })
        .collect::<Vec<_>>();
    if raw.attack.tactics.is_empty() {
        cx.diags.push(
            Diagnostic::error(Code::BadAttackId, "`attack.tactics` is empty")
                .at(cx.span(&raw.id))
                .help("name at least one tactic, e.g. persistence"),
        );
    }
    let trr = raw
        .trr
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadTrrId,
                is_trr,
                "TRR procedure ids look like TRR0021.AZR.A",
                "TRR number, platform code and procedure letter, upper case",
            )
        })
        .collect();
    let atrm = raw
        .atrm
        .iter()
        .filter_map(|t| {
            check(
                cx,
                t,
                Code::BadAtrmId,
                is_atrm,
                "Azure Threat Research Matrix ids look like AZT502.3",
                "use the id from microsoft.github.io/Azure-Threat-Research-Matrix",
            )
        })
        .collect();
    let falsepositives = raw.falsepositives.iter().map(|f| f.value.clone()).collect();
    let sigma_over_matches = raw
        .sigma_over_matches
        .iter()
        .filter(|n| {
            let known = raw
                .tests
                .iter()
                .any(|t| t.value.name.value == n.value && t.value.expect.value == "no_match");
            if !known {
                cx.err(
                    n,
                    Code::BadTest,
                    "`sigma_over_matches` names no no_match test of this rule",
                    "write the exact name of a test whose expect is no_match",
                );
            }
            known
        })
        .map(|n| n.value.clone())
        .collect();

    let ls_index = cx
        .logsources
        .iter()
        .position(|l| l.name == raw.logsource.value);
    if ls_index.is_none() {
        let names: Vec<&str> = cx.logsources.iter().map(|l| l.name.as_str()).collect();
        let help = match did_you_mean(&raw.logsource.value, names.iter().copied()) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("known log sources: {}", names.join(", ")),
        };
        cx.err(
            &raw.logsource,
            Code::UnknownField,
            format!("unknown log source `{}`", raw.logsource.value),
            help,
        );
    }
    let ls = ls_index.map(|i| &cx.logsources[i]);
    cx.params = parameters(cx, raw);

    let outputs = ls.map(|ls| outputs(cx, ls, raw)).unwrap_or_default();
    let logic = match (&raw.condition, &raw.correlation) {
        (Some(c), None) => {
            let condition = ls.and_then(|ls| cond(cx, ls, c, &[]));
            let aggregation = match (&raw.aggregation, ls) {
                (Some(a), Some(ls)) => aggregation(cx, ls, a, &outputs),
                _ => None,
            };
            condition.map(|condition| Logic::Events {
                condition,
                aggregation,
            })
        }
        (None, Some(k)) => ls
            .and_then(|ls| correlation(cx, ls, raw, k))
            .map(Logic::Correlation),
        (Some(_), Some(k)) => {
            cx.err(
                k,
                Code::BadCorrelation,
                "a rule has `condition` or `correlation`, not both",
                "move the correlation into a rule of its own that names this one",
            );
            None
        }
        (None, None) => {
            cx.err(
                &raw.id,
                Code::MissingField,
                "the rule has neither `condition` nor `correlation`",
                "add `condition:` (what one record must satisfy) or `correlation:` (see docs/rule-format.md)",
            );
            None
        }
    };
    let logic_span = match (&raw.condition, &raw.correlation) {
        (Some(c), _) => cx.span(c),
        (None, Some(k)) => cx.span(k),
        (None, None) => cx.span(&raw.id),
    };
    let schedule = schedule(cx, raw);
    let entities = entities(cx, raw, &outputs);
    let tests = tests(cx, raw);

    Some(Rule {
        id: id?,
        name: name?,
        title: title?,
        description: description?,
        status: status?,
        severity: severity?,
        author: author?,
        date: date?,
        modified,
        version: version?,
        references,
        tactics,
        techniques,
        trr,
        atrm,
        falsepositives,
        sigma_over_matches,
        parameters: cx.params.clone(),
        logsource: raw.logsource.value.clone(),
        logic: logic?,
        spans: RuleSpans {
            id: cx.span(&raw.id),
            name: cx.span(&raw.name),
            version: cx.span(&raw.version),
            condition: logic_span,
        },
        schedule: schedule?,
        outputs,
        entities,
        tests,
        file: cx.file,
    })
}

fn check(
    cx: &mut Ctx,
    v: &S<String>,
    code: Code,
    ok: fn(&str) -> bool,
    msg: &str,
    help: &str,
) -> Option<String> {
    if ok(&v.value) {
        Some(v.value.clone())
    } else {
        cx.err(v, code, msg, help);
        None
    }
}

fn nonempty(cx: &mut Ctx, v: &S<String>, max: usize) -> Option<String> {
    let t = v.value.trim();
    if t.is_empty() {
        cx.err(
            v,
            Code::BadMetadata,
            "this value must not be empty",
            "write some text",
        );
        None
    } else if t.chars().count() > max {
        cx.err(
            v,
            Code::BadMetadata,
            format!("this value is longer than {max} characters"),
            "shorten it",
        );
        None
    } else {
        Some(t.to_string())
    }
}

fn pick<T: Copy>(cx: &mut Ctx, v: &S<String>, options: &[(&str, T)], what: &str) -> Option<T> {
    if let Some((_, t)) = options.iter().find(|(n, _)| *n == v.value) {
        return Some(*t);
    }
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let help = match did_you_mean(&v.value, names.iter().copied()) {
        Some(n) => format!("did you mean `{n}`?"),
        None => format!("one of: {}", names.join(", ")),
    };
    cx.err(
        v,
        Code::BadMetadata,
        format!("unknown {what} `{}`", v.value),
        help,
    );
    None
}

fn tactic(cx: &mut Ctx, v: &S<String>) -> Option<Tactic> {
    let key = v.value.to_ascii_lowercase().replace([' ', '_'], "-");
    if let Some(t) = TACTICS
        .iter()
        .find(|t| t.id.eq_ignore_ascii_case(&key) || t.slug == key)
    {
        return Some(*t);
    }
    let help = match did_you_mean(&key, TACTICS.iter().map(|t| t.slug)) {
        Some(n) => format!("did you mean `{n}`?"),
        None => "use an ATT&CK tactic name (persistence) or id (TA0003)".into(),
    };
    cx.err(
        v,
        Code::BadAttackId,
        format!("unknown ATT&CK tactic `{}`", v.value),
        help,
    );
    None
}

// ---- condition ----------------------------------------------------------------------------

const NODE_KEYS: &str = "all, any, not, some (+ where), field (+ one operator)";
const OPERATORS: &[&str] = &[
    "equals",
    "one_of",
    "in_parameter",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// `bound`: arrays bound by enclosing `some`, innermost last.
fn cond(cx: &mut Ctx, ls: &LogSource, node: &S<RawCondition>, bound: &[String]) -> Option<Cond> {
    let n = &node.value;
    let kinds = [
        n.all.is_some(),
        n.any.is_some(),
        n.not.is_some(),
        n.some.is_some(),
        n.field.is_some(),
    ];
    let count = kinds.iter().filter(|k| **k).count();
    if count == 0 {
        let d = Diagnostic::error(Code::EmptyCondition, "empty condition")
            .at(cx.span(node))
            .help(format!("a condition node needs one of: {NODE_KEYS}"));
        cx.diags.push(d);
        return None;
    }
    if count > 1 {
        let d = Diagnostic::error(
            Code::BadPredicate,
            "a condition node must hold exactly one of all / any / not / some / field",
        )
        .at(cx.span(node))
        .help("split it: put the parts in a list under `all:` (or `any:`)");
        cx.diags.push(d);
        return None;
    }
    if n.where_.is_some() && n.some.is_none() {
        let w = n.where_.as_deref()?;
        cx.err(
            w,
            Code::BadPredicate,
            "`where` belongs to `some`",
            "write `some: <array>` next to `where:`",
        );
        return None;
    }
    let has_op = op_keys(n).next().is_some() || n.json.is_some() || n.case_sensitive.is_some();
    if n.field.is_none() && has_op {
        let d = Diagnostic::error(Code::BadPredicate, "an operator needs a `field`")
            .at(cx.span(node))
            .help("add `field: <neutral field>` to this predicate");
        cx.diags.push(d);
        return None;
    }
    if let Some(list) = n.all.as_ref().or(n.any.as_ref()) {
        if list.value.is_empty() {
            cx.err(
                list,
                Code::EmptyCondition,
                "empty list of conditions",
                "add at least one condition, or remove the node",
            );
            return None;
        }
        let mut out = Vec::new();
        for c in &list.value {
            out.extend(cond(cx, ls, c, bound));
        }
        if out.len() != list.value.len() {
            return None;
        }
        return Some(if n.all.is_some() {
            Cond::All(out)
        } else {
            Cond::Any(out)
        });
    }
    if let Some(inner) = &n.not {
        return cond(cx, ls, inner, bound).map(|c| Cond::Not(Box::new(c)));
    }
    if let Some(array) = &n.some {
        let Some(def) = ls.arrays.get(&array.value) else {
            let help = match did_you_mean(&array.value, ls.arrays.keys().map(String::as_str)) {
                Some(a) => format!("did you mean `{a}`?"),
                None => format!(
                    "`some` takes an array: {}",
                    ls.arrays.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            let msg = if ls.fields.contains_key(&array.value) {
                format!(
                    "`{}` is a field, not an array: `some` quantifies over arrays",
                    array.value
                )
            } else {
                format!("unknown array `{}`", array.value)
            };
            cx.err(array, Code::NotAnArray, msg, help);
            return None;
        };
        if bound.contains(&array.value) {
            cx.err(
                array,
                Code::BadPredicate,
                format!("already inside `some: {}`", array.value),
                "predicates here already refer to that element; remove the inner `some`",
            );
            return None;
        }
        if let Some(p) = &def.parent
            && !bound.is_empty()
            && !bound.contains(p)
        {
            cx.err(
                array,
                Code::NotAnArray,
                format!(
                    "`{}` lives inside `{p}`, which is not the enclosing element",
                    array.value
                ),
                format!("quantify over `{p}` first, or move this outside"),
            );
            return None;
        }
        let Some(w) = n.where_.as_deref() else {
            cx.err(
                array,
                Code::MissingField,
                "`some` needs a `where` condition",
                "add `where:` with the predicates the same element must satisfy",
            );
            return None;
        };
        let mut inner = bound.to_vec();
        inner.push(array.value.clone());
        return cond(cx, ls, w, &inner).map(|c| Cond::Some {
            array: ArrayName(array.value.clone()),
            cond: Box::new(c),
        });
    }
    let field = n.field.as_ref()?;
    predicate(cx, ls, node, field, bound).map(Cond::Pred)
}

fn op_keys(n: &RawCondition) -> impl Iterator<Item = &'static str> + '_ {
    let present = [
        n.equals.is_some(),
        n.one_of.is_some(),
        n.in_parameter.is_some(),
        n.contains.is_some(),
        n.starts_with.is_some(),
        n.ends_with.is_some(),
        n.regex.is_some(),
        n.exists.is_some(),
        n.gt.is_some(),
        n.gte.is_some(),
        n.lt.is_some(),
        n.lte.is_some(),
    ];
    OPERATORS
        .iter()
        .zip(present)
        .filter(|(_, p)| *p)
        .map(|(k, _)| *k)
}

fn predicate(
    cx: &mut Ctx,
    ls: &LogSource,
    node: &S<RawCondition>,
    field: &S<String>,
    bound: &[String],
) -> Option<Pred> {
    let n = &node.value;
    let Some(def) = ls.fields.get(&field.value) else {
        let help = match did_you_mean(&field.value, ls.fields.keys().map(String::as_str)) {
            Some(f) => format!("did you mean `{f}`?"),
            None => format!(
                "see templates/logsources/{}.yml for the fields of this log source",
                ls.name
            ),
        };
        cx.err(
            field,
            Code::UnknownField,
            format!(
                "unknown field `{}` in log source `{}`",
                field.value, ls.name
            ),
            help,
        );
        return None;
    };
    if let (Some(array), Some(inner)) = (&def.array, bound.last())
        && !ls.array_chain(inner).contains(array)
        && !ls.array_chain(array).contains(inner)
    {
        cx.err(
            field,
            Code::NotAnArray,
            format!(
                "`{}` is a field of `{array}`, not of the `{inner}` element this `some` binds",
                field.value
            ),
            format!("move it out of `some: {inner}`"),
        );
        return None;
    }
    let ops: Vec<&str> = op_keys(n).collect();
    if ops.len() != 1 {
        let d = if ops.is_empty() {
            Diagnostic::error(
                Code::BadPredicate,
                format!("predicate on `{}` has no operator", field.value),
            )
            .help(format!("add one of: {}", OPERATORS.join(", ")))
        } else {
            Diagnostic::error(
                Code::BadPredicate,
                format!("predicate has several operators: {}", ops.join(", ")),
            )
            .help("one operator per predicate: combine several with `all:` or `any:`")
        };
        cx.diags.push(d.at(cx.span(field)));
        return None;
    }
    let json = match &n.json {
        None => Vec::new(),
        Some(path) => {
            if def.kind != FieldType::JsonText {
                cx.err(
                    path,
                    Code::BadJsonPath,
                    format!("`{}` does not hold JSON text", field.value),
                    "`json:` applies to fields of type json_text (modified.old, modified.new)",
                );
                return None;
            }
            json_path(cx, path)?
        }
    };
    let case = match &n.case_sensitive {
        Some(c) if c.value => Case::Sensitive,
        _ => Case::Insensitive,
    };
    let string_like =
        !json.is_empty() || matches!(def.kind, FieldType::String | FieldType::JsonText);
    let str_op = |cx: &mut Ctx, op: StrOp, v: &S<String>| -> Option<Op> {
        if !string_like {
            cx.err(
                v,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "use gt/gte/lt/lte for numbers and times",
            );
            return None;
        }
        Some(Op::Str {
            op,
            values: vec![v.value.clone()],
            case,
            param: None,
        })
    };
    let number = |cx: &mut Ctx, cmp: Cmp, v: &S<f64>| -> Option<Op> {
        if json.is_empty() && def.kind != FieldType::Number {
            cx.err(
                v,
                Code::BadPredicate,
                format!("`{}` is not a number field", field.value),
                "numeric comparisons apply to number fields and JSON values",
            );
            return None;
        }
        if !v.value.is_finite() {
            cx.err(
                v,
                Code::BadThreshold,
                "the number must be finite",
                "write a plain number",
            );
            return None;
        }
        Some(Op::Number {
            cmp,
            value: v.value,
        })
    };
    let op = if let Some(v) = &n.equals {
        str_op(cx, StrOp::Equals, v)
    } else if let Some(list) = &n.one_of {
        if list.value.is_empty() {
            cx.err(
                list,
                Code::EmptyCondition,
                "`one_of` has no values",
                "list at least one value",
            );
            return None;
        }
        if !string_like {
            cx.err(
                list,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "use gt/gte/lt/lte for numbers",
            );
            return None;
        }
        Some(Op::Str {
            op: StrOp::Equals,
            values: list.value.iter().map(|v| v.value.clone()).collect(),
            case,
            param: None,
        })
    } else if let Some(name) = &n.in_parameter {
        let Some(p) = cx.params.iter().find(|p| p.name == name.value) else {
            let names: Vec<&str> = cx.params.iter().map(|p| p.name.as_str()).collect();
            let help = match did_you_mean(&name.value, names.iter().copied()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => "declare it under `parameters:` with a description and values".into(),
            };
            cx.err(
                name,
                Code::BadPredicate,
                format!("unknown parameter `{}`", name.value),
                help,
            );
            return None;
        };
        if !string_like {
            cx.err(
                name,
                Code::BadPredicate,
                format!("`{}` is not a string field", field.value),
                "parameters hold strings",
            );
            return None;
        }
        Some(Op::Str {
            op: StrOp::Equals,
            values: p.values.clone(),
            case,
            param: Some(p.name.clone()),
        })
    } else if let Some(v) = &n.contains {
        str_op(cx, StrOp::Contains, v)
    } else if let Some(v) = &n.starts_with {
        str_op(cx, StrOp::StartsWith, v)
    } else if let Some(v) = &n.ends_with {
        str_op(cx, StrOp::EndsWith, v)
    } else if let Some(v) = &n.regex {
        match regex::Regex::new(&v.value) {
            Ok(_) => Some(Op::Regex {
                pattern: v.value.clone(),
                case,
            }),
            Err(e) => {
                let msg = e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                cx.err(v, Code::InvalidRegex, format!("invalid regular expression: {msg}"), "write a regex in the RE2/PCRE common subset; escape literal `(`, `[`, `.` with `\\`");
                None
            }
        }
    } else if let Some(v) = &n.exists {
        Some(Op::Exists(v.value))
    } else if let Some(v) = &n.gt {
        number(cx, Cmp::Gt, v)
    } else if let Some(v) = &n.gte {
        number(cx, Cmp::Gte, v)
    } else if let Some(v) = &n.lt {
        number(cx, Cmp::Lt, v)
    } else if let Some(v) = &n.lte {
        number(cx, Cmp::Lte, v)
    } else {
        None
    }?;
    if let (Some(c), Op::Exists(_) | Op::Number { .. }) = (&n.case_sensitive, &op) {
        cx.err(
            c,
            Code::BadPredicate,
            "`case_sensitive` applies to string operators only",
            "remove it",
        );
        return None;
    }
    Some(Pred {
        field: FieldPath(field.value.clone()),
        json,
        op,
        span: cx.span(field),
    })
}

fn json_path(cx: &mut Ctx, path: &S<Vec<S<serde_json::Value>>>) -> Option<Vec<JsonStep>> {
    if path.value.is_empty() {
        cx.err(
            path,
            Code::BadJsonPath,
            "empty JSON path",
            "list keys and indices, e.g. [0, B2BManagementPolicy]",
        );
        return None;
    }
    let mut steps = Vec::new();
    for step in &path.value {
        match &step.value {
            serde_json::Value::String(k) if is_json_key(k) => steps.push(JsonStep::Key(k.clone())),
            serde_json::Value::Number(i) if i.as_u64().is_some_and(|i| i < 10_000) => {
                steps.push(JsonStep::Index(i.as_u64()? as u32))
            }
            _ => {
                cx.err(step, Code::BadJsonPath, "a JSON path step is a key (letters, digits, _ - $ @) or an array index (0, 1, …)", "JSON text inside a decoded string is decoded again automatically");
                return None;
            }
        }
    }
    Some(steps)
}

fn parameters<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Vec<Parameter> {
    let mut out = Vec::new();
    for (name, p) in &raw.parameters {
        if !is_slug(name) {
            cx.err(
                p,
                Code::BadMetadata,
                format!("parameter name `{name}` is not a plain name"),
                "use 3-60 characters of a-z, 0-9 and _, starting with a letter",
            );
            continue;
        }
        if p.value.values.value.is_empty() {
            cx.err(
                &p.value.values,
                Code::EmptyCondition,
                "a parameter needs at least one value",
                "list the default values",
            );
            continue;
        }
        out.push(Parameter {
            name: name.clone(),
            description: p.value.description.value.clone(),
            values: p
                .value
                .values
                .value
                .iter()
                .map(|v| v.value.clone())
                .collect(),
        });
    }
    out
}

fn is_json_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-$@".contains(&b))
}

// ---- outputs, aggregation, schedule, entities, tests --------------------------------------

fn outputs<E: TestEvent>(cx: &mut Ctx, ls: &LogSource, raw: &RawRule<E>) -> Vec<Output> {
    let mut out = Vec::new();
    for (column, o) in &raw.output {
        if !is_column(column) {
            cx.err(
                o,
                Code::BadOutput,
                format!("output column `{column}` is not a plain name"),
                "use letters, digits and _, starting with a letter (at most 40)",
            );
            continue;
        }
        if raw.correlation.is_some() && SEQUENCE_COLUMNS.contains(&column.as_str()) {
            cx.err(
                o,
                Code::BadOutput,
                format!("`{column}` is a column rulepack adds to correlations"),
                "rename the column",
            );
            continue;
        }
        out.extend(output(cx, ls, column, o));
    }
    out
}

/// One value taken from a record: a top-level field, or a field of the top-level array element
/// that satisfies `where`.
fn output(cx: &mut Ctx, ls: &LogSource, column: &str, o: &S<RawOutput>) -> Option<Output> {
    let Some(def) = ls.fields.get(&o.value.field.value) else {
        let help = match did_you_mean(&o.value.field.value, ls.fields.keys().map(String::as_str)) {
            Some(f) => format!("did you mean `{f}`?"),
            None => "use a field of the log source".into(),
        };
        cx.err(
            &o.value.field,
            Code::UnknownField,
            format!("unknown field `{}`", o.value.field.value),
            help,
        );
        return None;
    };
    let filter = match (&o.value.where_, &def.array) {
        (None, _) => None,
        (Some(w), Some(array)) => {
            if ls.arrays.get(array).is_some_and(|a| a.parent.is_some()) {
                cx.err(
                    w,
                    Code::BadOutput,
                    "`where` on an output works for top-level arrays only",
                    "output a field of the enclosing array instead",
                );
                return None;
            }
            Some(cond(cx, ls, w, std::slice::from_ref(array))?)
        }
        (Some(w), None) => {
            cx.err(
                w,
                Code::BadOutput,
                format!(
                    "`{}` is not in an array: `where` has nothing to choose from",
                    o.value.field.value
                ),
                "remove `where`",
            );
            return None;
        }
    };
    if def
        .array
        .as_ref()
        .is_some_and(|a| ls.arrays.get(a).is_some_and(|d| d.parent.is_some()))
    {
        cx.err(
            &o.value.field,
            Code::BadOutput,
            format!(
                "`{}` sits in a nested array and cannot be an output column",
                o.value.field.value
            ),
            "output a field of the enclosing element",
        );
        return None;
    }
    Some(Output {
        column: Column(column.to_string()),
        field: FieldPath(o.value.field.value.clone()),
        filter,
    })
}

fn correlation<E: TestEvent>(
    cx: &mut Ctx,
    ls: &LogSource,
    raw: &RawRule<E>,
    k: &S<RawCorrelation>,
) -> Option<Correlation> {
    let r = &k.value;
    if let Some(a) = &raw.aggregation {
        cx.err(
            a,
            Code::BadCorrelation,
            "a correlation takes no `aggregation`",
            "count in the rules it names, or remove `aggregation`",
        );
    }
    let kind = pick(
        cx,
        &r.kind,
        &[
            ("sequence", CorrelationKind::Sequence),
            ("absence", CorrelationKind::Absence),
        ],
        "correlation type",
    );
    let stage = |cx: &mut Ctx, v: &S<String>| {
        if is_slug(&v.value) {
            Some(StageRef {
                rule: RuleName(v.value.clone()),
                span: cx.span(v),
            })
        } else {
            cx.err(
                v,
                Code::BadCorrelation,
                format!("`{}` is not a rule name", v.value),
                "name a rule of this pack by its `name`",
            );
            None
        }
    };
    let first: Vec<StageRef> = r.first.value.iter().filter_map(|v| stage(cx, v)).collect();
    let then = stage(cx, &r.then);
    match (kind, r.first.value.len()) {
        (_, 0) => cx.err(
            &r.first,
            Code::BadCorrelation,
            "`first` names no rule",
            "list the rules whose matches open the window",
        ),
        (Some(CorrelationKind::Absence), n) if n > 1 => cx.err(
            &r.first,
            Code::BadCorrelation,
            "an absence has exactly one `first` rule",
            "write one correlation per rule whose follow-up you expect",
        ),
        _ => {}
    }
    let key = output(cx, ls, "rp_key", &r.by);
    let within = duration(cx, &r.within);
    Some(Correlation {
        kind: kind?,
        first,
        then: then?,
        key: key?,
        within: within?,
    })
}

fn aggregation(
    cx: &mut Ctx,
    ls: &LogSource,
    a: &S<crate::load::raw::RawAggregation>,
    outputs: &[Output],
) -> Option<Aggregation> {
    let r = &a.value;
    let function = pick(
        cx,
        &r.function,
        &[
            ("count", AggFunction::Count),
            ("distinct_count", AggFunction::DistinctCount),
        ],
        "aggregation function",
    )?;
    let field = match (&r.field, function) {
        (Some(f), AggFunction::DistinctCount) => match ls.fields.get(&f.value) {
            Some(d) if d.array.is_none() => Some(FieldPath(f.value.clone())),
            Some(_) => {
                cx.err(
                    f,
                    Code::BadThreshold,
                    "distinct_count needs a field outside arrays",
                    "count a top-level field",
                );
                return None;
            }
            None => {
                cx.err(
                    f,
                    Code::UnknownField,
                    format!("unknown field `{}`", f.value),
                    "use a field of the log source",
                );
                return None;
            }
        },
        (None, AggFunction::DistinctCount) => {
            cx.err(
                &r.function,
                Code::MissingField,
                "distinct_count needs `field`",
                "add `field: <neutral field>`",
            );
            return None;
        }
        (Some(f), AggFunction::Count) => {
            cx.err(
                f,
                Code::BadThreshold,
                "`count` counts events and takes no `field`",
                "remove `field`, or use distinct_count",
            );
            return None;
        }
        (None, AggFunction::Count) => None,
    };
    let mut group_by = Vec::new();
    for g in &r.group_by {
        match outputs.iter().find(|o| o.column.0 == g.value) {
            Some(o)
                if o.filter.is_none()
                    && ls.fields.get(&o.field.0).is_some_and(|d| d.array.is_none()) =>
            {
                group_by.push(o.column.clone())
            }
            Some(_) => cx.err(
                g,
                Code::BadOutput,
                format!("cannot group by `{}`: it comes from an array", g.value),
                "group by a top-level field such as initiator.upn",
            ),
            None => cx.err(
                g,
                Code::BadOutput,
                format!("`{}` is not an output column", g.value),
                "group_by names columns declared under `output`",
            ),
        }
    }
    let window = duration(cx, &r.window)?;
    if r.threshold.value == 0 {
        cx.err(
            &r.threshold,
            Code::BadThreshold,
            "threshold must be at least 1",
            "the alert fires when the aggregate reaches the threshold",
        );
        return None;
    }
    Some(Aggregation {
        function,
        field,
        group_by,
        window,
        threshold: r.threshold.value,
    })
}

fn duration(cx: &mut Ctx, v: &S<String>) -> Option<Duration> {
    match Duration::parse(&v.value) {
        Some(d) => Some(d),
        None => {
            cx.err(
                v,
                Code::BadDuration,
                format!("`{}` is not a duration", v.value),
                "write a whole number and m, h or d: 5m, 1h, 14d",
            );
            None
        }
    }
}

fn schedule<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Option<Schedule> {
    let s = &raw.schedule;
    let frequency = duration(cx, &s.frequency);
    let lookback = duration(cx, &s.lookback);
    let (frequency, lookback) = (frequency?, lookback?);
    let (min, max) = (5, 14 * 1440);
    for (v, d) in [(&s.frequency, &frequency), (&s.lookback, &lookback)] {
        if d.minutes < min || d.minutes > max {
            cx.err(
                v,
                Code::BadDuration,
                format!("`{}` is outside 5m … 14d", d.text),
                "Sentinel accepts schedules from 5 minutes to 14 days",
            );
            return None;
        }
    }
    if lookback.minutes < frequency.minutes {
        cx.err(
            &s.lookback,
            Code::BadDuration,
            "lookback is shorter than the frequency: events between runs would be missed",
            "make lookback at least the frequency",
        );
        return None;
    }
    if let Some(a) = &raw.aggregation
        && let Some(w) = Duration::parse(&a.value.window.value)
        && w.minutes > lookback.minutes
    {
        cx.err(
            &a.value.window,
            Code::BadDuration,
            "the aggregation window is longer than the lookback",
            "raise schedule.lookback to at least the window",
        );
        return None;
    }
    if let Some(k) = &raw.correlation
        && let Some(w) = Duration::parse(&k.value.within.value)
        && w.minutes + frequency.minutes > lookback.minutes
    {
        cx.err(
            &s.lookback,
            Code::BadDuration,
            format!(
                "lookback {} is shorter than `within` ({}) plus the frequency ({})",
                lookback.text, w.text, frequency.text
            ),
            "each run must see a whole window before its newest records; raise schedule.lookback",
        );
        return None;
    }
    Some(Schedule {
        frequency,
        lookback,
    })
}

fn entities<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>, outputs: &[Output]) -> Vec<Entity> {
    let mut out = Vec::new();
    for e in &raw.entities {
        let Some((_, kind, idents)) = EntityKind::ALL
            .iter()
            .find(|(n, _, _)| *n == e.value.kind.value)
        else {
            let names = EntityKind::ALL.iter().map(|(n, _, _)| *n);
            let help = match did_you_mean(&e.value.kind.value, names.clone()) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("one of: {}", names.collect::<Vec<_>>().join(", ")),
            };
            cx.err(
                &e.value.kind,
                Code::BadEntity,
                format!("unknown entity type `{}`", e.value.kind.value),
                help,
            );
            continue;
        };
        let mut identifiers = Vec::new();
        for (ident, column) in &e.value.identifiers {
            if !idents.contains(&ident.as_str()) {
                cx.err(
                    column,
                    Code::BadEntity,
                    format!("`{ident}` is not an identifier of {}", e.value.kind.value),
                    format!("one of: {}", idents.join(", ")),
                );
                continue;
            }
            if !outputs.iter().any(|o| o.column.0 == column.value) {
                cx.err(
                    column,
                    Code::BadEntity,
                    format!("`{}` is not an output column", column.value),
                    "entities map columns declared under `output`",
                );
                continue;
            }
            identifiers.push((ident.clone(), Column(column.value.clone())));
        }
        if e.value.identifiers.is_empty() {
            cx.err(
                &e.value.kind,
                Code::BadEntity,
                "entity has no identifier",
                format!("map at least one of: {}", idents.join(", ")),
            );
            continue;
        }
        // A bad identifier was reported above; keep the entity out rather than half-mapped.
        if identifiers.len() == e.value.identifiers.len() {
            out.push(Entity {
                kind: *kind,
                identifiers,
            });
        }
    }
    out
}

fn tests<E: TestEvent>(cx: &mut Ctx, raw: &RawRule<E>) -> Vec<TestCase> {
    let mut out = Vec::new();
    let mut names: HashMap<&str, ()> = HashMap::new();
    for t in &raw.tests {
        let r = &t.value;
        if names.insert(r.name.value.as_str(), ()).is_some() {
            cx.err(
                &r.name,
                Code::BadTest,
                format!("two tests are named `{}`", r.name.value),
                "give each test its own name",
            );
        }
        let expect_match = match r.expect.value.as_str() {
            "match" => true,
            "no_match" => false,
            _ => {
                cx.err(
                    &r.expect,
                    Code::BadTest,
                    format!("unknown expectation `{}`", r.expect.value),
                    "write `match` or `no_match`",
                );
                continue;
            }
        };
        let events: Vec<&E> = match (&r.event, &r.events) {
            (Some(e), None) => vec![&e.value],
            (None, Some(es)) if !es.value.is_empty() => es.value.iter().map(|e| &e.value).collect(),
            _ => {
                cx.err(
                    &r.name,
                    Code::BadTest,
                    "a test needs exactly one of `event` or a non-empty `events`",
                    "give the Graph record under `event:` (or several under `events:`)",
                );
                continue;
            }
        };
        if events.iter().any(|e| !e.is_object()) {
            cx.err(
                &r.name,
                Code::BadTest,
                "a test event must be a mapping (a Graph directoryAudit record)",
                "write the record as a YAML mapping or JSON object",
            );
            continue;
        }
        // Tests read without their events are checked, not kept.
        let Some(events) = events.iter().map(|e| e.record()).collect() else {
            continue;
        };
        out.push(TestCase {
            name: r.name.value.clone(),
            expect_match,
            note: r.note.as_ref().map(|n| n.value.clone()),
            events,
            span: cx.span(&r.name),
        });
    }
    out
}

// ---- shapes ---------------------------------------------------------------------------------

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && s != "00000000-0000-0000-0000-000000000000"
}

fn is_slug(s: &str) -> bool {
    (3..=60).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_column(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.starts_with("rp_")
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    matches!((num(0..4), num(5..7), num(8..10)), (Some(y), Some(m), Some(d)) if y >= 2000 && (1..=12).contains(&m) && (1..=31).contains(&d))
}

fn is_semver(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 5 || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
        && b[0] == b'T'
        && b[1..5].iter().all(u8::is_ascii_digit)
}

fn is_trr(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0].len() == 7
        && parts[0].starts_with("TRR")
        && parts[0][3..].bytes().all(|b| b.is_ascii_digit())
        && (2..=4).contains(&parts[1].len())
        && parts[1].bytes().all(|b| b.is_ascii_uppercase())
        && parts[2].len() == 1
        && parts[2].bytes().all(|b| b.is_ascii_uppercase())
}

fn is_atrm(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("AZT") else {
        return false;
    };
    let (num, sub) = rest.split_once('.').unwrap_or((rest, "0"));
    (3..=4).contains(&num.len())
        && num.bytes().all(|b| b.is_ascii_digit())
        && !sub.is_empty()
        && sub.bytes().all(|b| b.is_ascii_digit())
}

/// Cross-rule checks: ids and names are unique across the pack.
pub fn check_unique(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rules.iter().enumerate() {
        if let Some(&j) = ids.get(r.id.0.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateId,
                    format!(
                        "rule id {} is already used by `{}`",
                        r.id.0, rules[j].name.0
                    ),
                )
                .at(r.spans.id)
                .help("every rule needs its own UUID: generate a new one for the newer rule"),
            );
        } else {
            ids.insert(&r.id.0, i);
        }
        if let Some(&j) = names.get(r.name.0.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateName,
                    format!("rule name `{}` is already used", r.name.0),
                )
                .at(r.spans.name)
                .help(format!(
                    "rename one of the two; the other is in the rule with id {}",
                    rules[j].id.0
                )),
            );
        } else {
            names.insert(&r.name.0, i);
        }
    }
    diags
}

/// Every correlation names rules of the pack that match single records of its own log source.
pub fn check_correlations(rules: &[Rule]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for r in rules {
        let Some(c) = r.correlation() else { continue };
        for s in c.stages() {
            let problem = match find(rules, &s.rule) {
                None => {
                    let help =
                        match did_you_mean(&s.rule.0, rules.iter().map(|r| r.name.0.as_str())) {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => "name a rule of this pack by its `name`".into(),
                        };
                    Some((format!("no rule named `{}` in the pack", s.rule.0), help))
                }
                Some(t) if t.name == r.name => Some((
                    "a correlation cannot name itself".into(),
                    "name the rules whose matches it relates".into(),
                )),
                Some(t) if t.correlation().is_some() => Some((
                    format!("`{}` is a correlation itself", s.rule.0),
                    "name single-record rules; correlations do not nest".into(),
                )),
                Some(t) if t.aggregation().is_some() => Some((
                    format!(
                        "`{}` aggregates: its matches are windows, not records",
                        s.rule.0
                    ),
                    "name a rule without `aggregation`".into(),
                )),
                Some(t) if t.logsource != r.logsource => Some((
                    format!(
                        "`{}` reads log source `{}`, this rule `{}`",
                        s.rule.0, t.logsource, r.logsource
                    ),
                    "correlate rules of one log source".into(),
                )),
                Some(_) => None,
            };
            if let Some((msg, help)) = problem {
                diags.push(
                    Diagnostic::error(Code::BadCorrelation, msg)
                        .at(s.span)
                        .help(help),
                );
            }
        }
    }
    diags
}
