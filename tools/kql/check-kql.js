#!/usr/bin/env node
// Checks KQL files with Kusto.Language (Microsoft's KQL parser + binder) against the
// Sentinel AuditLogs schema (https://learn.microsoft.com/azure/azure-monitor/reference/tables/auditlogs).
// `rulepack verify` carries this file in its binary and runs it from its engines folder.
//
//   node tools/kql/check-kql.js [--modules DIR] [--columns] FILE...
//
// DIR holds node_modules/@kusto/language-service-next (default: $RULEPACK_KQL_MODULES,
// else <repo>/.tools/kql/node_modules, installed by scripts/setup-validators).
// Exit: 0 no errors, 1 some file has an error diagnostic, 2 usage or load problem.
'use strict';
const fs = require('fs');
const path = require('path');

const PKG = '@kusto/language-service-next';

// `AuditLogs | getschema` order (entra-audit-log.md section 2) + the hidden standard columns.
const TABLES = {
  AuditLogs: `TenantId:string SourceSystem:string TimeGenerated:datetime ResourceId:string
    OperationName:string OperationVersion:string Category:string ResultType:string
    ResultSignature:string ResultDescription:string DurationMs:long CorrelationId:string
    Resource:string ResourceGroup:string ResourceProvider:string Identity:string Level:string
    Location:string AdditionalDetails:dynamic Id:string InitiatedBy:dynamic
    LoggedByService:string Result:string ResultReason:string TargetResources:dynamic
    AADTenantId:string ActivityDisplayName:string ActivityDateTime:datetime
    AADOperationType:string Type:string _BilledSize:real _IsBillable:string`,
};

function usage(msg) {
  if (msg) console.error(`check-kql: ${msg}`);
  console.error('usage: node check-kql.js [--modules DIR] [--columns] FILE...');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { modules: null, columns: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--modules') {
      if (i + 1 >= argv.length) usage('--modules needs a directory');
      opts.modules = argv[++i];
    } else if (a === '--columns') opts.columns = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a === '--') opts.files.push(...argv.slice(i + 1)), (i = argv.length);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (opts.files.length === 0) usage('no files given');
  opts.modules = opts.modules || process.env.RULEPACK_KQL_MODULES ||
    path.join(__dirname, '..', '..', '.tools', 'kql', 'node_modules');
  return opts;
}

function loadKusto(modulesDir) {
  const dir = path.resolve(modulesDir, PKG);
  const files = ['bridge.min.js', 'Kusto.Language.Bridge.min.js'].map((f) => path.join(dir, f));
  const missing = files.find((f) => !fs.existsSync(f));
  if (missing) {
    console.error(`check-kql: ${missing} not found; run scripts/setup-validators (or scripts/test)`);
    process.exit(2);
  }
  // The scripts define the globals Bridge, System and Kusto; order matters.
  for (const f of files) require(f);
  return global.Kusto.Language;
}

function makeGlobals(K) {
  const S = K.Symbols;
  const tables = Object.entries(TABLES).map(([name, spec]) => {
    const cols = spec.trim().split(/\s+/).map((pair) => {
      const [col, typeName] = pair.split(':');
      const type = S.ScalarTypes.GetSymbol(typeName);
      if (!type) throw new Error(`unknown Kusto type ${typeName} for ${name}.${col}`);
      return new S.ColumnSymbol(col, type);
    });
    return new S.TableSymbol.$ctor4(name, cols);
  });
  return K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor('sentinel', tables));
}

function position(code, text, offset) {
  const line = { v: 0 }, col = { v: 0 };
  if (code.TryGetLineAndOffset(offset, line, col)) return [line.v, col.v];
  // Offsets at the very end of the text may not map; count by hand.
  const before = text.slice(0, offset).split('\n');
  return [before.length, before[before.length - 1].length + 1];
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const K = loadKusto(opts.modules);
  const globals = makeGlobals(K);
  let errors = 0, unreadable = 0;

  for (const file of opts.files) {
    let text;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      console.error(`check-kql: cannot read ${file}: ${e.message}`);
      unreadable++;
      continue;
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

    const code = K.KustoCode.ParseAndAnalyze(text, globals);
    const diags = code.GetDiagnostics(); // .NET IReadOnlyList, not a JS array
    for (let i = 0; i < diags.Count; i++) {
      const d = diags.getItem(i);
      const sev = d.Severity === 'Error' ? 'error' : d.Severity === 'Warning' ? 'warning' : null;
      if (!sev) continue;
      if (sev === 'error') errors++;
      const [line, col] = position(code, text, d.Start);
      console.log(`${file}:${line}:${col}: ${sev} ${d.Code}: ${d.Message}`);
    }

    if (opts.columns) {
      const rt = code.ResultType;
      let columns = null; // scalar or unbound result: no output schema
      if (rt && global.Bridge.is(rt, K.Symbols.TableSymbol)) {
        columns = [];
        for (let i = 0; i < rt.Columns.Count; i++) {
          const c = rt.Columns.getItem(i);
          columns.push({ name: c.Name, type: c.Type.Name });
        }
      }
      console.log(JSON.stringify({ file, columns }));
    }
  }

  console.log(`kql-check: ${opts.files.length} files, ${errors} errors`);
  process.exit(unreadable ? 2 : errors ? 1 : 0);
}

main();
