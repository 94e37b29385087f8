#!/usr/bin/env node
// Writes the option table of docs/options.md (between its options-table
// markers) from lib/config/options.ts, through the built dist/. Run after
// `npm run build:ts`; test/unit/options.test.ts fails when the file is stale.
//
//   node scripts/options-table.js [--check]
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const file = path.join(root, 'docs/options.md');
const BEGIN = '<!-- options-table:begin -->';
const END = '<!-- options-table:end -->';

/** `text` with the part between the markers replaced by `table`. */
function withTable(text, table) {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${file}: the ${BEGIN} / ${END} markers are missing`);
  return `${text.slice(0, begin + BEGIN.length)}\n${table}\n${text.slice(end)}`;
}

module.exports = { withTable, BEGIN, END };

if (require.main === module) {
  const { optionsMarkdownTable } = require(path.join(root, 'dist/config/options.js'));
  const current = fs.readFileSync(file, 'utf8');
  const next = withTable(current, optionsMarkdownTable());
  if (process.argv.includes('--check')) {
    if (next !== current) {
      console.error('docs/options.md is out of date: run node scripts/options-table.js');
      process.exit(1);
    }
  } else if (next !== current) {
    fs.writeFileSync(file, next);
    console.log('docs/options.md updated');
  }
}
