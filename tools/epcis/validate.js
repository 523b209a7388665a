#!/usr/bin/env node
// Validates an EPCIS 2.0 JSON / JSON-LD document with epcis2.js (npm), a validator
// this project did not write: GS1's EPCIS 2.0 JSON schema for the document and every
// event in it, the SDK's check that each event has only EPCIS fields or namespaced
// extensions, that every extension's prefix is declared in the document's @context,
// and the SDK's schema of each event on its own.
//
//   node tools/epcis/validate.js FILE      # or: ... < FILE, or: ... -
//
// Prints "valid: N events" and exits 0, or prints the errors on stderr and exits 1;
// exit 2 on bad usage or a file that cannot be read.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(message) {
  process.stderr.write(`validate.js: ${message}\n` +
    `usage: node ${path.basename(process.argv[1])} [FILE | -]\n`);
  process.exit(2);
}

let epcis;
try {
  epcis = require('epcis2.js');
} catch (e) {
  process.stderr.write('validate.js: epcis2.js is not installed; run ' +
    `"npm ci --prefix ${path.relative(process.cwd(), __dirname) || '.'}" (${e.message})\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length > 1 || (args[0] && args[0].startsWith('-') && args[0] !== '-')) {
  usage('give one file, or - (or nothing) for stdin');
}

let text;
try {
  text = fs.readFileSync(!args[0] || args[0] === '-' ? 0 : args[0], 'utf8');
} catch (e) {
  usage(`cannot read ${args[0] || 'stdin'}: ${e.message}`);
}

function invalid(errors) {
  for (const error of errors) process.stderr.write(`invalid: ${error}\n`);
  process.exit(1);
}

let doc;
try {
  doc = JSON.parse(text);
} catch (e) {
  invalid([`not JSON: ${e.message}`]);
}
if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
  invalid(['the document is not a JSON object']);
}

// Extensions must be declared in the @context (epcis2.js leaves this check off by
// default).
epcis.setup({ checkExtensions: true });

const errors = [];
let result;
try {
  result = epcis.validateEpcisDocument(doc, false);
} catch (e) {
  // The SDK throws on some shapes instead of reporting them (a body that is no
  // object, an eventList that is no list): invalid all the same.
  result = { success: false, errors: [e.message] };
}
if (!result.success) errors.push(...result.errors);

// Each event against the SDK's own schema of its type, as a capture would check it.
const body = doc.epcisBody || {};
const events = Array.isArray(body.eventList) ? body.eventList : [];
if (result.success) {
  events.forEach((event, i) => {
    const known = ['ObjectEvent', 'AggregationEvent', 'TransformationEvent', 'TransactionEvent',
      'AssociationEvent'];
    const schema = known.includes(event.type) ? event.type : 'ExtendedEvent';
    const r = epcis.validateAgainstSchema(event, schema);
    if (!r.success) errors.push(...r.errors.map((m) => `eventList[${i}]: ${m}`));
  });
}

if (errors.length > 0) invalid(errors);
process.stdout.write(`valid: ${events.length} events\n`);
