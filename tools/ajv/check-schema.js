#!/usr/bin/env node
// Validates YAML rule files against the rule JSON Schema (`rulepack schema`) with ajv in strict
// mode, reading the YAML with `yaml`, the parser the YAML language server uses (YAML 1.2), so a
// file is judged as an editor judges it.
//
//   node tools/ajv/check-schema.js [--modules DIR] SCHEMA FILE...
//
// DIR holds node_modules/{ajv,yaml} (default: <repo>/.tools/ajv/node_modules, installed by
// scripts/setup-validators). Prints one JSON line per file:
//   {"file": F, "valid": true|false, "errors": [{"keyword", "instancePath", "params", "message"}]}
// Exit: 0 every file valid, 1 some file invalid, 2 usage, load or schema compile problem
// (strict mode refuses unknown keywords and formats, so a schema ajv cannot compile is exit 2).
'use strict';
const fs = require('fs');
const path = require('path');

function usage(msg) {
  if (msg) console.error(`check-schema: ${msg}`);
  console.error('usage: node check-schema.js [--modules DIR] SCHEMA FILE...');
  process.exit(2);
}

const args = process.argv.slice(2);
let modules = path.join(__dirname, '..', '..', '.tools', 'ajv', 'node_modules');
if (args[0] === '--modules') {
  if (args.length < 2) usage('--modules needs a directory');
  modules = args[1];
  args.splice(0, 2);
}
if (args.length < 1) usage('no schema given');
const [schemaPath, ...files] = args;

let Ajv, YAML;
try {
  Ajv = require(path.join(path.resolve(modules), 'ajv')).default;
  YAML = require(path.join(path.resolve(modules), 'yaml'));
} catch (e) {
  console.error(`check-schema: cannot load ajv/yaml from ${modules}: ${e.message}`);
  console.error('run scripts/setup-validators');
  process.exit(2);
}

let validate;
try {
  const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
  // strict: true turns every strict check into an error: unknown keywords and formats, ignored
  // keywords, types missing where a keyword needs one, union types, required keys never defined.
  const ajv = new Ajv({ strict: true, allErrors: true });
  validate = ajv.compile(schema);
} catch (e) {
  console.error(`check-schema: ${schemaPath}: ajv (strict) refuses the schema: ${e.message}`);
  process.exit(2);
}

let failed = false;
for (const file of files) {
  let doc;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`check-schema: ${file}: not readable YAML: ${e.message}`);
    process.exit(2);
  }
  const valid = validate(doc);
  if (!valid) failed = true;
  const errors = (validate.errors || []).map((e) => ({
    keyword: e.keyword,
    instancePath: e.instancePath,
    params: e.params,
    message: e.message,
  }));
  console.log(JSON.stringify({ file, valid, errors }));
}
process.exit(failed ? 1 : 0);
