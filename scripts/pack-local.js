#!/usr/bin/env node
// Pack what a release publishes, from this checkout: the root package
// (`afxdp-<version>.tgz`: loader, dist/, esm/, bin/) and the per-platform
// package (`afxdp-<target>-<version>.tgz`: npm/<target>/ plus the built
// afxdp.<target>.node). Used by the Dockerfile flow, the kind job and
// test/packaging/pack.test.ts.
//
//   node scripts/pack-local.js [--dest pack] [--target linux-x64-gnu]
//
// Needs a finished build (npm install / npm run build); it never builds,
// and runs npm pack with --ignore-scripts so `prepare` cannot rebuild.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function npmPack(cwd, dest, ...extra) {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', ...extra, ...(dest ? ['--pack-destination', dest] : [])], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out);
  return { file: dest && path.join(dest, info.filename), files: info.files.map((f) => f.path) };
}

// Lifecycle scripts npm would list as install scripts of a dependency. The
// checkout needs `prepare` (npm install there builds from source); the
// published package must not carry it: installing afxdp never builds.
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];

/** The root package.json as published (release.yml does the same with npm pkg delete). */
function publishedManifest(pkg) {
  const out = { ...pkg, scripts: { ...pkg.scripts } };
  for (const s of INSTALL_SCRIPTS) delete out.scripts[s];
  return out;
}

/** Pack the root through a staging copy of exactly what npm would pack. */
function packRoot(dest) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-pack-root-'));
  try {
    for (const f of npmPack(root, undefined, '--dry-run').files) {
      fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
      fs.copyFileSync(path.join(root, f), path.join(stage, f));
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(publishedManifest(pkg), null, 2) + '\n');
    return npmPack(stage, dest);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The host's target, e.g. linux-x64-gnu (same test as lib/native.ts). */
function hostTarget() {
  const report = process.report.getReport();
  const musl = !report.header.glibcVersionRuntime;
  return `${process.platform}-${process.arch}-${musl ? 'musl' : 'gnu'}`;
}

function packLocal({ dest = path.join(root, 'pack'), target = hostTarget() } = {}) {
  dest = path.resolve(dest);
  fs.mkdirSync(dest, { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const npmDir = path.join(root, 'npm', target);
  if (!fs.existsSync(path.join(npmDir, 'package.json'))) {
    throw new Error(`no per-platform package npm/${target} (targets: ${fs.readdirSync(path.join(root, 'npm')).join(', ')})`);
  }
  const addonName = `afxdp.${target}.node`;
  // `napi artifacts` puts CI builds into npm/<target>/; a local build is at the root.
  const addon = [path.join(npmDir, addonName), path.join(root, addonName)].find((f) => fs.existsSync(f));
  if (!addon) throw new Error(`${addonName} is not built (run npm install or npm run build:native)`);
  for (const f of ['index.js', 'index.d.ts', 'dist/index.js', 'esm/index.mjs']) {
    if (!fs.existsSync(path.join(root, f))) throw new Error(`${f} is missing (run npm run build)`);
  }

  const rootPack = packRoot(dest);

  // Stage the platform package so the checkout is left as it was.
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-pack-'));
  try {
    const platformPkg = JSON.parse(fs.readFileSync(path.join(npmDir, 'package.json'), 'utf8'));
    platformPkg.version = pkg.version; // what `napi prepublish` does
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(platformPkg, null, 2) + '\n');
    for (const f of fs.readdirSync(npmDir)) {
      if (f !== 'package.json' && f !== addonName) fs.copyFileSync(path.join(npmDir, f), path.join(stage, f));
    }
    fs.copyFileSync(addon, path.join(stage, addonName));
    const platformPack = npmPack(stage, dest);
    return { root: rootPack.file, rootFiles: rootPack.files, platform: platformPack.file, platformFiles: platformPack.files, target, version: pkg.version };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

module.exports = { packLocal, hostTarget, publishedManifest, INSTALL_SCRIPTS };

if (require.main === module) {
  const { parseArgs } = require('node:util');
  const { values } = parseArgs({ options: { dest: { type: 'string' }, target: { type: 'string' } } });
  const r = packLocal({ dest: values.dest, target: values.target });
  console.log(path.relative(process.cwd(), r.root));
  console.log(path.relative(process.cwd(), r.platform));
}
