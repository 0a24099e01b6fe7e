#!/usr/bin/env node
// Prints, one per line and sorted, every KQL keyword of the pinned Kusto.Language that is a plain
// name (letters, digits, `_`) and yet cannot stand as a bare column name where rulepack's
// queries put output columns (extend, summarize by, project). rulepack refuses these names as
// output columns (src/validate/reserved.rs); tests/kql_reserved.rs compares the two lists.
//
//   node tools/kql/reserved-columns.js [--allowed] [--modules DIR]
//
// --allowed prints the other plain-name keywords instead: those a column may be named.
'use strict';
const path = require('path');

const args = process.argv.slice(2);
const allowed = args.includes('--allowed');
const at = args.indexOf('--modules');
const modules = at >= 0 ? args[at + 1] : process.env.RULEPACK_KQL_MODULES ||
  path.join(__dirname, '..', '..', '.tools', 'kql', 'node_modules');
const dir = path.resolve(modules, '@kusto/language-service-next');
for (const f of ['bridge.min.js', 'Kusto.Language.Bridge.min.js']) require(path.join(dir, f));
const K = global.Kusto.Language;
const S = K.Symbols;

const table = new S.TableSymbol.$ctor4('AuditLogs', [
  new S.ColumnSymbol('TimeGenerated', S.ScalarTypes.GetSymbol('datetime')),
  new S.ColumnSymbol('Id', S.ScalarTypes.GetSymbol('string')),
]);
const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor('sentinel', [table]));

const words = new Set();
const kinds = K.Syntax.SyntaxKind;
for (const name of Object.keys(kinds).filter((k) => k.endsWith('Keyword'))) {
  let text;
  try {
    text = K.Syntax.SyntaxFacts.GetText(kinds[name]);
  } catch (e) {
    continue;
  }
  if (text && /^[A-Za-z][A-Za-z0-9_]*$/.test(text)) words.add(text);
}

const refused = (w) => {
  const q = `AuditLogs | extend ${w} = tostring(Id) | summarize arg_max(TimeGenerated, *) by ${w}` +
    ` | extend ${w} = strcat(${w}, "x") | project TimeGenerated, ${w}`;
  const d = K.KustoCode.ParseAndAnalyze(q, globals).GetDiagnostics();
  for (let i = 0; i < d.Count; i++) if (d.getItem(i).Severity === 'Error') return true;
  return false;
};
const names = [...words].sort().filter((w) => refused(w) !== allowed);
process.stdout.write(names.join('\n') + '\n');
