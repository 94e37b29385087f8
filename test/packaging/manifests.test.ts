// What cannot run here (no Docker engine, no cluster, no GitHub runner) is
// checked statically: the Kubernetes examples, the Dockerfile and the
// workflows parse and carry the fields they must. What can run here does:
// the pods' commands against the real CLI, `napi prepublish --dry-run` on
// the release layout, and (as root) the kind pod's command with the pod's
// capabilities against a map `afxdp dp-serve` pinned where the Device
// Plugin pins it, fed by the kind job's own injector from the "node" side.
import anyTest, { ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { privileged } from '../helpers/privileged';
import { createLab } from '../helpers/lab';
import { frameSeq, macBytes, testFrame } from '../helpers/frames';
import { PacketSocket } from '../../lib/peer/packet-socket';

const test = anyTest;
const privilegedTest = privileged().serial;
const repo = path.resolve(__dirname, '../..');
const k8s = path.join(repo, 'examples/k8s');
const read = (f: string) => fs.readFileSync(path.join(repo, f), 'utf8');

function yamlDocs(file: string): any[] {
  const docs = YAML.parseAllDocuments(read(file));
  for (const d of docs) if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
  return docs.map((d) => d.toJS());
}
const yamlDoc = (file: string) => yamlDocs(file)[0];

const NADS = { uds: 'examples/k8s/nad-uds.yaml', pinned: 'examples/k8s/nad-pinned.yaml' };
const PODS = {
  generic: 'examples/k8s/pod-spec.yaml',
  macswap: 'examples/k8s/pod-macswap.yaml',
  macswapPinned: 'examples/k8s/pod-macswap-pinned.yaml',
  kind: 'examples/k8s/kind/macswap-pod.yaml',
};
const MACSWAP = {
  [PODS.macswap]: 'afxdp fwd --vdev net_af_xdp0,use_cni=1,iface=$DEV --forward-mode macswap',
  [PODS.macswapPinned]: 'afxdp fwd --vdev net_af_xdp0,use_pinned_map=1,iface=$DEV --forward-mode macswap',
  [PODS.kind]: 'afxdp fwd --vdev net_af_xdp0,use_pinned_map=1,iface=$DEV --forward-mode macswap',
};

test('every YAML file under examples/k8s and .github/workflows parses', (t) => {
  const files = [
    ...fs.readdirSync(k8s).map((f) => `examples/k8s/${f}`),
    ...fs.readdirSync(path.join(k8s, 'kind')).map((f) => `examples/k8s/kind/${f}`),
    ...fs.readdirSync(path.join(repo, '.github/workflows')).map((f) => `.github/workflows/${f}`),
  ].filter((f) => /\.ya?ml$/.test(f));
  t.true(files.length >= 8, files.join(' '));
  for (const f of files) t.notThrows(() => yamlDocs(f), f);
});

test('NetworkAttachmentDefinitions: afxdp CNI for afxdp/myPool; the pinned-map one has dpSyncer', (t) => {
  for (const [mode, file] of Object.entries(NADS)) {
    const nad = yamlDoc(file);
    t.is(nad.apiVersion, 'k8s.cni.cncf.io/v1', file);
    t.is(nad.kind, 'NetworkAttachmentDefinition', file);
    t.is(nad.metadata.name, 'afxdp-network', file);
    t.is(nad.metadata.annotations['k8s.v1.cni.cncf.io/resourceName'], 'afxdp/myPool', file);
    const config = JSON.parse(nad.spec.config);
    t.is(config.type, 'afxdp', file);
    t.is(config.mode, 'primary', file);
    t.truthy(config.cniVersion, file);
    t.is(config.ipam?.type, 'host-local', file);
    t.is(config.dpSyncer === true, mode === 'pinned', `${file}: dpSyncer must be true exactly for pinned maps`);
  }
});

test('pods: network annotation, NET_RAW + IPC_LOCK only, afxdp/myPool, hugepages (except on kind)', (t) => {
  for (const [kind, file] of Object.entries(PODS)) {
    const pod = yamlDoc(file);
    t.is(pod.kind, 'Pod', file);
    t.is(pod.metadata.annotations['k8s.v1.cni.cncf.io/networks'], 'afxdp-network', file);
    t.is(pod.spec.containers.length, 1, file);
    const [c] = pod.spec.containers;
    t.deepEqual([...c.securityContext.capabilities.add].sort(), ['IPC_LOCK', 'NET_RAW'], file);
    t.falsy(c.securityContext.privileged, `${file} must not be privileged`);
    t.is(c.resources.requests['afxdp/myPool'], '1', file);
    t.is(c.resources.limits['afxdp/myPool'], '1', file);
    t.true(/^afxdp-app:/.test(c.image), file);
    const huge = Object.keys(c.resources.limits).filter((k) => k.startsWith('hugepages-'));
    if (kind === 'kind') {
      t.deepEqual(huge, [], `${file}: kind nodes have no hugepages`);
      t.is(c.imagePullPolicy, 'Never', `${file}: the image is loaded with kind load`);
      continue;
    }
    // afxdp maps 2 MiB hugepages (MAP_HUGE_2MB).
    t.deepEqual(huge, ['hugepages-2Mi'], file);
    t.is(c.resources.requests['hugepages-2Mi'], c.resources.limits['hugepages-2Mi'], `${file}: hugepages requests == limits`);
    t.truthy(c.resources.limits.memory, `${file}: hugepages need a memory or cpu limit`);
    const mount = c.volumeMounts.find((m: any) => m.mountPath === '/dev/hugepages');
    t.truthy(mount, file);
    const volume = pod.spec.volumes.find((v: any) => v.name === mount.name);
    t.is(volume?.emptyDir?.medium, 'HugePages', file);
  }
});

test('macswap pods run `afxdp fwd ... --forward-mode macswap` on the device from AFXDP_DEVICES_MYPOOL', (t) => {
  for (const [file, line] of Object.entries(MACSWAP)) {
    const [c] = yamlDoc(file).spec.containers;
    t.deepEqual(c.command, ['/bin/sh', '-c'], file);
    const script: string = c.args[0];
    t.true(script.includes(line), `${file}: ${script}`);
    t.regex(script, /DEV="\$\{AFXDP_DEVICES_MYPOOL%% \*\}"/, file);
    t.regex(script, /^exec afxdp fwd/m, `${file}: exec, so SIGTERM reaches afxdp`);
  }
});

test('the pods\' commands are accepted by the afxdp CLI (they fail only at opening the missing device)', (t) => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-bin-'));
  try {
    fs.symlinkSync(path.join(repo, 'bin/afxdp.js'), path.join(bin, 'afxdp'));
    for (const file of Object.keys(MACSWAP)) {
      const [c] = yamlDoc(file).spec.containers;
      const r = spawnSync(c.command[0], [...c.command.slice(1), ...c.args], {
        env: { PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, AFXDP_DEVICES_MYPOOL: 'afxdp-none0 afxdp-none1' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      t.is(r.status, 1, `${file}: exit ${r.status}, expected 1 (port cannot be opened), not 2 (usage)\n${r.stdout}${r.stderr}`);
      t.true(r.stderr.includes('afxdp-none0'), `${file}: ${r.stderr}`);
      t.false(r.stderr.includes('afxdp-none1'), `${file}: only the first device is used`);
    }
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
});

function stages(dockerfile: string): { from: string; name?: string; body: string }[] {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const out: { from: string; name?: string; body: string }[] = [];
  for (const line of lines) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (m) out.push({ from: m[1]!, name: m[2], body: '' });
    else if (out.length > 0 && !/^\s*#/.test(line)) out[out.length - 1]!.body += `${line}\n`;
  }
  return out;
}

test('Dockerfile: Node slim stages; the build stage installs from the packed tarballs; the final stage is the base image plus /app', (t) => {
  const s = stages(read('Dockerfile'));
  t.true(s.length >= 2);
  for (const st of s) t.regex(st.from, /^node:\$\{NODE_VERSION\}-bookworm-slim$|^node:[\w.]+-slim$/, st.from);
  const build = s.find((st) => st.name === 'build');
  const final = s.at(-1)!; // s.length >= 2 asserted above
  t.truthy(build);
  t.is(final.name, undefined);
  t.regex(build!.body, /COPY pack\/ \/tmp\/pack\//);
  t.regex(build!.body, /npm install --omit=dev/);
  t.regex(build!.body, /overrides\.afxdp-\$\{target\}=file:/);
  t.regex(build!.body, /ldd/);
  t.regex(final.body, /COPY --from=build \/app \/app/);
  t.notRegex(final.body, /apt-get|apk |gcc|clang|make |cargo|rustup|python|npm install/);
  t.deepEqual(final.body.split('\n').map((l) => l.split(/\s/)[0] ?? '').filter((w) => /^[A-Z]+$/.test(w)).filter((w) => w === 'RUN'), [],
    'the final stage runs nothing: it is the base image plus /app');
  t.regex(final.body, /PATH=\/app\/node_modules\/\.bin/);
  // The context is only the tarballs.
  t.deepEqual(read('.dockerignore').split('\n').filter((l) => l && !l.startsWith('#')), ['*', '!pack/*.tgz']);
});

/** The Debian packages `scripts/setup-debian.sh` installs (its PACKAGES array). */
function setupDebianPackages(): string[] {
  const list = /^PACKAGES=\(\n([\s\S]*?)\n\)$/m.exec(read('scripts/setup-debian.sh'))?.[1];
  if (list === undefined) throw new Error('no PACKAGES=( ... ) in scripts/setup-debian.sh');
  return list.split(/\s+/).filter(Boolean).sort();
}

test('scripts/setup-debian.sh: one command for a from-source build: the build tools and the privileged tests\' tools', (t) => {
  const script = path.join(repo, 'scripts/setup-debian.sh');
  t.true((fs.statSync(script).mode & 0o111) !== 0, 'setup-debian.sh is executable');
  t.is(spawnSync('bash', ['-n', script]).status, 0, 'bash -n setup-debian.sh');
  t.regex(read('scripts/setup-debian.sh'), /apt-get install -y -qq --no-install-recommends "\$\{PACKAGES\[@\]\}"/);
  const pkgs = setupDebianPackages();
  for (const p of ['clang', 'llvm', 'pkg-config', 'make', 'gcc', 'libc6-dev', 'autoconf', 'automake', 'autopoint', 'libtool',
    'm4', 'gettext', 'flex', 'bison', 'gawk', 'iproute2', 'util-linux', 'libcap2-bin']) t.true(pkgs.includes(p), p);
});

function stepRuns(job: any): string[] {
  return (job.steps as any[]).map((s) => s.run ?? '').filter(Boolean);
}

test('ci.yml: build and test on push, the same Debian packages as .ci/run, privileged tests as root, packed tarballs kept', (t) => {
  const wf = yamlDoc('.github/workflows/ci.yml');
  t.true('push' in wf.on);
  const job = wf.jobs.test;
  t.regex(job['runs-on'], /^ubuntu-/);
  const runs = stepRuns(job);
  // The same Debian packages as .ci/run: both run scripts/setup-debian.sh, and neither has a list of its own.
  const apt = runs.find((r) => /^(sudo )?scripts\/setup-debian\.sh\b/m.test(r));
  t.truthy(apt);
  t.false(runs.some((r) => r.includes('apt-get install')), 'no apt list besides scripts/setup-debian.sh');
  const ciRun = read('.ci/run');
  t.regex(ciRun, /^scripts\/setup-debian\.sh\b/m, '.ci/run runs scripts/setup-debian.sh');
  t.notRegex(ciRun, /apt-get install/, '.ci/run has no apt list of its own');
  t.true(runs.some((r) => /^npm install\b/.test(r)));
  t.true(runs.some((r) => /sudo -E .*cargo test -p afxdp-core/.test(r)));
  const npmTest = runs.find((r) => /npm test/.test(r));
  t.regex(npmTest ?? '', /sudo -E env "PATH=\$PATH" AFXDP_REQUIRE_PRIVILEGED=1 npm test/);
  t.true(runs.some((r) => r.includes('npm run pack:local')));
  const upload = job.steps.find((s: any) => String(s.uses).startsWith('actions/upload-artifact'));
  t.is(upload?.with?.path, 'pack/*.tgz');
  t.true(runs.indexOf(runs.find((r) => r.includes('pack:local'))!) < runs.indexOf(npmTest!), 'pack as the runner user, before root writes into the tree');
});

test('ci.yml kind-e2e: DP built with make image, afxdp image from the tarballs, examples/k8s/kind/e2e.sh', (t) => {
  const job = yamlDoc('.github/workflows/ci.yml').jobs['kind-e2e'];
  t.is(job.needs, 'test');
  t.regex(job.env.DP_REPO, /redhat-et\/afxdp-plugins-for-kubernetes/);
  const runs = stepRuns(job).join('\n');
  t.regex(runs, /make -C "\$RUNNER_TEMP\/afxdp-dp" image CTR_CMD=docker/, 'docker, not podman: kind loads from docker');
  t.regex(runs, /docker build -t afxdp-app:e2e \./);
  t.regex(runs, /examples\/k8s\/kind\/e2e\.sh "\$RUNNER_TEMP\/afxdp-dp" afxdp-app:e2e/);
  t.true(job.steps.some((s: any) => String(s.uses).startsWith('helm/kind-action')));
  t.true(job.steps.some((s: any) => String(s.uses).startsWith('actions/download-artifact') && s.with.path === 'pack'));

  const e2e = read('examples/k8s/kind/e2e.sh');
  t.true((fs.statSync(path.join(repo, 'examples/k8s/kind/e2e.sh')).mode & 0o111) !== 0, 'e2e.sh is executable');
  t.is(spawnSync('bash', ['-n', path.join(repo, 'examples/k8s/kind/e2e.sh')]).status, 0, 'bash -n e2e.sh');
  for (const step of [
    /kind create cluster --name "\$CLUSTER" --config "\$DP_DIR\/hack\/kind-config.yaml"/,
    /kubectl apply -f "\$MULTUS_MANIFEST"/,
    /kind load docker-image afxdp-device-plugin:latest/,
    /deployments\/daemonset-kind\.yaml/,
    /kubectl apply -f "\$K8S\/nad-pinned\.yaml"/,
    /\$HERE\/macswap-pod\.yaml/,
    /kind load docker-image "\$IMAGE"/,
    /kubectl wait --for=condition=Ready "pod\/\$POD"/,
    /--network "container:\$NODE"/,
    /python3 \/inject\.py --iface "\$PEER" --dst "\$POD_MAC" --count "\$COUNT"/,
  ]) t.regex(e2e, step);
  t.true(e2e.startsWith('#!/usr/bin/env bash\n'));
  t.regex(e2e, /^set -euo pipefail$/m);
});

test('release.yml: four Linux targets on native runners, autotools everywhere, napi prepublish', (t) => {
  const wf = yamlDoc('.github/workflows/release.yml');
  t.deepEqual(wf.on.push.tags, ['v*']);
  const matrix: any[] = wf.jobs.build.strategy.matrix.include;
  t.deepEqual(matrix.map((m) => m.target).sort(), [
    'aarch64-unknown-linux-gnu', 'aarch64-unknown-linux-musl', 'x86_64-unknown-linux-gnu', 'x86_64-unknown-linux-musl']);
  const napiTargets = JSON.parse(read('package.json')).napi.targets;
  t.deepEqual([...napiTargets].sort(), matrix.map((m) => m.target).sort());
  for (const m of matrix) {
    t.is(m.runner, m.target.startsWith('aarch64') ? 'ubuntu-24.04-arm' : 'ubuntu-24.04', m.target);
    t.is(m.image, m.target.endsWith('musl') ? 'node:20-alpine' : 'node:20-bookworm', m.target);
    t.true(fs.existsSync(path.join(repo, 'npm', m.platform, 'package.json')), m.platform);
  }
  const build = read('.github/scripts/build-prebuilt.sh');
  t.is(spawnSync('sh', ['-n', path.join(repo, '.github/scripts/build-prebuilt.sh')]).status, 0);
  // libbpf-sys (vendored): autotools in both package managers' lists.
  const [apk, apt] = [/apk add[^\n]*\n[^\n]*/.exec(build)![0], /apt-get install[\s\S]*?\n\s*curl/.exec(build)![0]];
  for (const tool of ['autoconf', 'automake', 'libtool', 'm4', 'flex', 'bison', 'gawk', 'clang', 'llvm']) {
    t.true(apk.includes(tool), `apk: ${tool}`);
    t.true(apt.includes(tool), `apt: ${tool}`);
  }
  t.true(apt.includes('autopoint') && apk.includes('gettext-dev'), 'autopoint');
  for (const musl of ['argp-standalone', 'musl-fts-dev', 'musl-obstack-dev']) t.true(apk.includes(musl), musl);
  t.regex(build, /target-feature=-crt-static/);
  t.regex(build, /napi build --platform --release --target "\$TARGET"/);
  const buildRuns = stepRuns(wf.jobs.build).join('\n');
  t.regex(buildRuns, /sh \.github\/scripts\/build-prebuilt\.sh/);
  t.regex(buildRuns, /check-image|ldd/);

  const publish = wf.jobs.publish;
  t.is(publish.needs, 'build');
  const runs = stepRuns(publish).join('\n');
  t.regex(runs, /napi artifacts --output-dir artifacts --npm-dir npm/);
  t.regex(runs, /napi prepublish -t npm --no-gh-release/);
  t.regex(runs, /npm pkg delete scripts\.prepare\s+npm publish --ignore-scripts/);
});

test('workflows pin every action to a major version (dtolnay/rust-toolchain: to its toolchain branch)', (t) => {
  for (const f of fs.readdirSync(path.join(repo, '.github/workflows'))) {
    const wf = yamlDoc(`.github/workflows/${f}`);
    for (const [name, job] of Object.entries<any>(wf.jobs)) {
      for (const step of job.steps) {
        if (step.uses) t.regex(step.uses, /^[\w.-]+\/[\w.-]+@v\d+$|^dtolnay\/rust-toolchain@stable$/, `${f} ${name}: ${step.uses}`);
      }
    }
  }
});

test('napi prepublish --dry-run accepts the release layout (every platform package with its addon)', (t) => {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-prepublish-'));
  try {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'index.js', 'index.d.ts', 'esm', 'dist', 'bin', 'npm']) {
      fs.cpSync(path.join(repo, f), path.join(stage, f), { recursive: true, filter: (src) => !src.endsWith('.node') });
    }
    // Stand-ins for the CI artifacts that `napi artifacts` moves there.
    for (const p of fs.readdirSync(path.join(stage, 'npm'))) fs.writeFileSync(path.join(stage, 'npm', p, `afxdp.${p}.node`), 'stand-in');
    const napi = path.join(repo, 'node_modules/.bin/napi');
    const ok = spawnSync(napi, ['prepublish', '-t', 'npm', '--no-gh-release', '--dry-run'], { cwd: stage, encoding: 'utf8', timeout: 60_000 });
    t.is(ok.status, 0, ok.stdout + ok.stderr);
    // And it does check: without one addon it refuses.
    fs.rmSync(path.join(stage, 'npm/linux-arm64-musl/afxdp.linux-arm64-musl.node'));
    const missing = spawnSync(napi, ['prepublish', '-t', 'npm', '--no-gh-release', '--dry-run'], { cwd: stage, encoding: 'utf8', timeout: 60_000 });
    t.regex(missing.stdout + missing.stderr, /afxdp-linux-arm64-musl is incomplete|missing afxdp\.linux-arm64-musl\.node/);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
});

async function injectWithPacketSocket(t: ExecutionContext, peerIf: string, peerNs: string, dst: string, src: string, count: number): Promise<number> {
  const peer = new PacketSocket(peerIf, { netns: peerNs });
  try {
    const seen = new Set<number>();
    let sent = 0;
    const deadline = Date.now() + 30_000;
    while (seen.size < count && Date.now() < deadline) {
      if (sent < count && sent - seen.size < 64) sent += peer.send([testFrame(dst, src, sent)]);
      for (const f of peer.receive(64, 1)) {
        const seq = frameSeq(f);
        if (seq !== undefined && f.subarray(0, 6).equals(macBytes(src))) seen.add(seq);
      }
    }
    t.log('python3 not found: the kind injector was replaced by an AF_PACKET peer');
    return seen.size;
  } finally {
    peer.close();
  }
}

privilegedTest('kind pod, emulated: its command, with the pod\'s capabilities, forwards every injected frame from a map pinned where the DP pins it', async (t) => {
  const pod = yamlDoc(PODS.kind).spec.containers[0];
  t.deepEqual(pod.command, ['/bin/sh', '-c']);
  const lab = createLab();
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-kind-'));
  const createdMountpoint = !fs.existsSync('/tmp/afxdp_dp');
  const count = 2000;
  const python = spawnSync('sh', ['-c', 'command -v python3']).status === 0;
  fs.symlinkSync(path.join(repo, 'bin/afxdp.js'), path.join(bin, 'afxdp'));
  fs.mkdirSync('/tmp/afxdp_dp', { recursive: true });
  // Container runtimes' default capabilities plus the pod's additions.
  const caps = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service',
    'sys_chroot', 'mknod', 'audit_write', 'setfcap', ...pod.securityContext.capabilities.add.map((c: string) => c.toLowerCase())];
  const env = {
    ...process.env,
    REPO: repo, BIN: bin, NODE_DIR: path.dirname(process.execPath), PORT_IF: lab.portIf, PORT_NS: lab.portNs,
    PEER_IF: lab.peerIf, PEER_NS: lab.peerNs, PORT_MAC: lab.portMac, COUNT: String(count), CAPS: caps.map((c) => `+${c}`).join(','),
    POD_ARGS: pod.args[0], LOGS: bin, PYTHON: python ? '1' : '',
  };
  // A private mount namespace: the DP's bpffs under /tmp/afxdp_dp/<dev>/ and the pod's view of it.
  const script = `
set -eu
mount -t tmpfs afxdp-kind /tmp/afxdp_dp
node "$REPO/bin/afxdp.js" dp-serve --iface "$PORT_IF" --netns "$PORT_NS" --no-uds --pin-dir /tmp/afxdp_dp --sessions 0 >"$LOGS/dp.log" 2>&1 &
dp=$!
i=0; while [ ! -e "/tmp/afxdp_dp/$PORT_IF/xsks_map" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
echo "pinned: $(ls "/tmp/afxdp_dp/$PORT_IF/")"
ip netns exec "$PORT_NS" env -i PATH="$BIN:$NODE_DIR:/usr/bin:/bin" HOME=/root AFXDP_DEVICES_MYPOOL="$PORT_IF" \\
  setpriv --bounding-set -all,$CAPS --inh-caps -all /bin/sh -c "$POD_ARGS" >"$LOGS/fwd.log" 2>&1 &
fwd=$!
i=0; until grep -q 'forward-mode macswap' "$LOGS/fwd.log" || [ $i -ge 300 ]; do sleep 0.05; i=$((i+1)); done
if [ -n "$PYTHON" ]; then
  ip netns exec "$PEER_NS" python3 "$REPO/examples/k8s/kind/inject.py" --iface "$PEER_IF" --dst "$PORT_MAC" --count "$COUNT" || true
else
  echo READY-FOR-PEER; sleep 10
fi
kill -TERM $fwd; wait $fwd || echo "fwd exit $?"
kill -TERM $dp; wait $dp || true
cat "$LOGS/fwd.log"
`;
  try {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    let returned: number | undefined;
    if (!python) {
      for (let i = 0; i < 600 && !out.includes('READY-FOR-PEER'); i++) await new Promise((r) => setTimeout(r, 50));
      returned = await injectWithPacketSocket(t, lab.peerIf, lab.peerNs, lab.portMac, lab.peerMac, count);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const code = await done;
    clearTimeout(timer);
    t.is(code, 0, out);
    t.regex(out, /pinned: xsks_map/, out);
    t.regex(out, /afxdp fwd: forward-mode macswap, poll-mode adaptive; port 0 \S+ \([0-9a-f:]+, pinned,/, out);
    t.notRegex(out, /fwd exit/, out);
    if (python) {
      const result = JSON.parse(out.split('\n').find((l) => l.startsWith('{"iface"')) ?? '{}');
      returned = result.returned;
      t.is(result.sent, count, out);
    }
    t.is(returned, count, out);
  } finally {
    lab.destroy();
    fs.rmSync(bin, { recursive: true, force: true });
    // Only the empty mountpoint we made; anything else there belongs to someone else.
    if (createdMountpoint) try { fs.rmdirSync('/tmp/afxdp_dp'); } catch { /* not empty: leave it */ }
  }
});
