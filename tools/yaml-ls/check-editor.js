#!/usr/bin/env node
// Shows what an editor underlines in YAML rule files with the rule JSON Schema: runs the YAML
// language server's own validation (the engine of the VS Code YAML extension) on each file.
//
//   node tools/yaml-ls/check-editor.js [--modules DIR] SCHEMA FILE...
//
// DIR holds node_modules/yaml-language-server (default: <repo>/.tools/yaml-ls/node_modules,
// installed by scripts/setup-validators). Prints one JSON line per file:
//   {"file": F, "diagnostics": [{"line", "column" (1-based), "text" (what is underlined), "message"}]}
// Messages are the server's untranslated keys (e.g. DisallowedExtraPropWarning): no locale
// bundle is loaded outside an editor. Exit: 0, or 2 on a usage or load problem.
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) console.error(`check-editor: ${msg}`);
  console.error('usage: node check-editor.js [--modules DIR] SCHEMA FILE...');
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = path.join(__dirname, '..', '..', '.tools', 'yaml-ls', 'node_modules');
if (args[0] === '--modules') {
  if (args.length < 2) usage('--modules needs a directory');
  modules = args[1];
  args.splice(0, 2);
}
if (args.length < 1) usage('no schema given');
const [schemaPath, ...files] = args;

let getLanguageService, TextDocument;
try {
  ({ getLanguageService } = require(path.join(path.resolve(modules), 'yaml-language-server')));
  ({ TextDocument } = require(path.join(path.resolve(modules), 'vscode-languageserver-textdocument')));
} catch (e) {
  console.error(`check-editor: cannot load the YAML language server from ${modules}: ${e.message}`);
  console.error('run scripts/setup-validators');
  process.exit(2);
}

const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const schemaUri = 'file:///rule.schema.json';
const service = getLanguageService({
  schemaRequestService: () => Promise.resolve(JSON.stringify(schema)),
  workspaceContext: { resolveRelativePath: (relative) => relative },
});
// As .vscode/settings.json from `rulepack init` maps it: the schema on every rule file.
service.configure({ validate: true, schemas: [{ uri: schemaUri, fileMatch: ['*.yml'], schema }] });

(async () => {
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const doc = TextDocument.create(`file:///rules/${path.basename(file)}`, 'yaml', 1, text);
    const found = await service.doValidation(doc, false);
    const diagnostics = found.map((d) => ({
      line: d.range.start.line + 1,
      column: d.range.start.character + 1,
      text: doc.getText(d.range),
      message: d.message,
    }));
    console.log(JSON.stringify({ file, diagnostics }));
  }
})().catch((e) => {
  console.error(`check-editor: ${e.stack || e}`);
  process.exit(2);
});
