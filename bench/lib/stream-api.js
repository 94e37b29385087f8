'use strict';
// Whether this build of afxdp has the stream API the stream forwarder needs.
const fs = require('node:fs');
const path = require('node:path');

function check() {
  const root = path.join(__dirname, '..', '..');
  if (!fs.existsSync(path.join(root, 'dist', 'stream'))) throw new Error('dist/stream is missing');
  if (!fs.existsSync(path.join(__dirname, '..', 'fwd-stream.js'))) throw new Error('bench/fwd-stream.js is missing');
}

module.exports = { check };
