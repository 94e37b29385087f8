// Layers point one way: no import circle in lib/. The graph is every
// `import ... from`, `import '...'` and `export ... from` statement
// (`import type` included: a type-only circle is still two modules that
// cannot be understood apart) between files of lib/**/*.ts.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const LIB = path.join(__dirname, '..', '..', 'lib');

type Graph = Map<string, string[]>;

// Statements only: strings and comments that merely mention `from '...'`
// are not imports, so comments are stripped first.
const STATEMENT = /(?:^|[;\n}])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*${},\s]+?\s+from\s+)?['"]([^'"\n]+)['"]/g;

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function listTs(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return listTs(p);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

function resolveImport(from: string, spec: string, root: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec.replace(/\.js$/, ''));
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    if (candidate.startsWith(root + path.sep) && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Files of `root` (relative names) and the files each imports. */
function importGraph(root: string): Graph {
  const graph: Graph = new Map();
  for (const file of listTs(root).sort()) {
    const deps = new Set<string>();
    for (const m of stripComments(fs.readFileSync(file, 'utf8')).matchAll(STATEMENT)) {
      const to = resolveImport(file, m[1]!, root);
      if (to !== undefined) deps.add(path.relative(root, to));
    }
    graph.set(path.relative(root, file), [...deps].sort());
  }
  return graph;
}

/** Every import circle, one shortest path per strongly connected set (Tarjan). */
function cycles(graph: Graph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return components.map((c) => shortestCircle(graph, new Set(c)));
}

/** A shortest circle through the first file (sorted) of a strongly connected set. */
function shortestCircle(graph: Graph, members: Set<string>): string[] {
  const start = [...members].sort()[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const route = [v];
        while (route[0] !== start) route.unshift(prev.get(route[0]!)!);
        return [...route, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

test('lib/ has no import circle (import type included)', (t) => {
  const graph = importGraph(LIB);
  t.true(graph.size > 30, `found only ${graph.size} files under ${LIB}`);
  const found = cycles(graph).map((c) => c.join(' -> '));
  t.deepEqual(found, [], `import circles in lib/:\n  ${found.join('\n  ')}`);
});

test('streams build on ports: nothing in lib/port imports lib/stream', (t) => {
  const graph = importGraph(LIB);
  const reverse = [...graph].flatMap(([from, deps]) =>
    from.startsWith(`port${path.sep}`) ? deps.filter((to) => to.startsWith(`stream${path.sep}`)).map((to) => `${from} -> ${to}`) : []);
  // port/port.ts is the public Port: the socket set (port/port-base.ts)
  // plus its stream face, so it alone stands above lib/stream.
  t.deepEqual(reverse.filter((e) => !e.startsWith(`port${path.sep}port.ts `)), []);
});

test('the checker finds and names a planted circle, type-only edges and index files included', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'afxdp-graph-'));
  try {
    fs.mkdirSync(path.join(root, 'b'));
    fs.writeFileSync(path.join(root, 'a.ts'), "// import { x } from './c';\nimport { y } from './b';\nexport const a = y;\n");
    fs.writeFileSync(path.join(root, 'b', 'index.ts'), "export {\n  z as y,\n} from './z';\n");
    fs.writeFileSync(path.join(root, 'b', 'z.ts'), "import type { A } from '../a';\nexport const z = 1;\nexport type Z = A;\n");
    fs.writeFileSync(path.join(root, 'c.ts'), "import './a';\nimport { readFileSync } from 'node:fs';\n");
    const graph = importGraph(root);
    t.deepEqual(graph.get('a.ts'), [path.join('b', 'index.ts')]);
    t.deepEqual(graph.get('c.ts'), ['a.ts']);
    t.deepEqual(cycles(graph), [['a.ts', path.join('b', 'index.ts'), path.join('b', 'z.ts'), 'a.ts']]);
    fs.writeFileSync(path.join(root, 'b', 'z.ts'), 'export const z = 1;\n');
    t.deepEqual(cycles(importGraph(root)), []);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
