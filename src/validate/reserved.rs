//! Output column names a target reserves. An output column becomes a bare column name in every
//! query (KQL `extend X = …`, `summarize … by X`, `project X`; SPL `eval X=…`), so a name the
//! query language or the table already uses is refused at the name (R060) rather than quoted in
//! one backend: the same rule then reads the same in every SIEM, and Sentinel entity mappings
//! and Splunk notable fields name the column exactly as the rule does.

use crate::model::SEQUENCE_COLUMNS;

/// The KQL keywords of Kusto.Language 12.4.1 that Kusto.Language refuses as a bare column name
/// in those places. `node tools/kql/reserved-columns.js` prints them from the pinned parser, and
/// tests/kql_reserved.rs checks this list against it.
pub const KQL_KEYWORDS: &[&str] = &[
    "accumulate",
    "and",
    "anomalychart",
    "areachart",
    "as",
    "asc",
    "bagexpansion",
    "barchart",
    "between",
    "boolean",
    "by",
    "byte",
    "cachingpolicy",
    "callout",
    "cancel",
    "card",
    "char",
    "columnchart",
    "contains",
    "contains_cs",
    "containscs",
    "cycles",
    "dataexport",
    "datascope",
    "datatable",
    "date",
    "datetime",
    "decimal",
    "decodeblocks",
    "desc",
    "double",
    "dynamic",
    "earliest",
    "encodingpolicy",
    "endswith",
    "endswith_cs",
    "expandoutput",
    "extent_tags_retention",
    "external_data",
    "externaldata",
    "find",
    "first",
    "flags",
    "float",
    "force_remote",
    "harddelete",
    "hardretention",
    "has",
    "has_all",
    "has_any",
    "has_cs",
    "hasprefix",
    "hasprefix_cs",
    "hassuffix",
    "hassuffix_cs",
    "hotcache",
    "in",
    "int",
    "int16",
    "int32",
    "int64",
    "int8",
    "invoke",
    "isfuzzy",
    "journal",
    "kind",
    "ladderchart",
    "last",
    "latest",
    "like",
    "likecs",
    "linechart",
    "long",
    "materialize",
    "mdm",
    "missing",
    "nooptimization",
    "notcontains",
    "notcontainscs",
    "notlike",
    "notlikecs",
    "of",
    "or",
    "others",
    "pathformat",
    "piechart",
    "pivotchart",
    "print",
    "project",
    "queries",
    "query_results",
    "real",
    "relaxed",
    "restricted_view_access",
    "row_level_security",
    "rowstore",
    "rowstore_references",
    "rowstore_sealinfo",
    "rowstorepolicy",
    "rowstores",
    "sample",
    "scatterchart",
    "seal",
    "seals",
    "search",
    "set",
    "shards",
    "simple",
    "softdelete",
    "softretention",
    "sql",
    "stackedareachart",
    "startswith",
    "startswith_cs",
    "statistics",
    "storedqueryresultcontainers",
    "string",
    "tablepurge",
    "time",
    "timechart",
    "timeline",
    "timepivot",
    "timespan",
    "title",
    "to",
    "toscalar",
    "totable",
    "treemap",
    "uint",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
    "ulong",
    "union",
    "uniqueid",
    "unrestrictedviewers",
    "verbose",
    "viewers",
    "views",
    "where",
    "with_itemindex",
    "with_match_id",
    "with_source",
    "with_step_name",
    "withsource",
    "writeaheadlog",
];

/// The columns of Sentinel's `AuditLogs` table (`AuditLogs | getschema`): an output named so
/// would replace the table's own column that later steps of the query still read (`Id` groups
/// the per-element steps, `TimeGenerated` bounds the windows).
pub const TABLE_COLUMNS: &[&str] = &[
    "TenantId",
    "SourceSystem",
    "TimeGenerated",
    "ResourceId",
    "OperationName",
    "OperationVersion",
    "Category",
    "ResultType",
    "ResultSignature",
    "ResultDescription",
    "DurationMs",
    "CorrelationId",
    "Resource",
    "ResourceGroup",
    "ResourceProvider",
    "Identity",
    "Level",
    "Location",
    "AdditionalDetails",
    "Id",
    "InitiatedBy",
    "LoggedByService",
    "Result",
    "ResultReason",
    "TargetResources",
    "AADTenantId",
    "ActivityDisplayName",
    "ActivityDateTime",
    "AADOperationType",
    "Type",
];

/// The columns an aggregation adds beside the group-by columns (templates' summarize / stats).
pub const AGGREGATION_COLUMNS: &[&str] = &["StartTime", "EndTime", "EventCount", "DistinctCount"];

/// Why `column` cannot be an output column of a rule (with a correlation or an aggregation, as
/// given), and what to do instead; `None` when it can.
pub(super) fn problem(
    column: &str,
    correlation: bool,
    aggregation: bool,
) -> Option<(String, &'static str)> {
    if KQL_KEYWORDS.contains(&column) {
        Some((
            format!("`{column}` is a KQL keyword and cannot be a bare column name"),
            "rename the column, e.g. capitalised (`Search` for `search`)",
        ))
    } else if TABLE_COLUMNS.contains(&column) {
        Some((
            format!(
                "`{column}` is a column of Sentinel's AuditLogs table, which the query still reads"
            ),
            "rename the column, e.g. with a prefix naming what it holds",
        ))
    } else if correlation && SEQUENCE_COLUMNS.contains(&column) {
        Some((
            format!("`{column}` is a column rulepack adds to correlations"),
            "rename the column",
        ))
    } else if aggregation && AGGREGATION_COLUMNS.contains(&column) {
        Some((
            format!("`{column}` is a column rulepack adds to aggregations"),
            "rename the column",
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn reserved_per_kind_of_rule() {
        assert!(problem("search", false, false).is_some());
        assert!(problem("Search", false, false).is_none());
        assert!(problem("TimeGenerated", true, false).is_some());
        assert!(problem("FirstTime", true, false).is_some());
        assert!(problem("FirstTime", false, false).is_none());
        assert!(problem("EventCount", false, true).is_some());
        assert!(problem("Initiator", true, true).is_none());
    }
}
