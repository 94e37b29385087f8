// The ESM entry of afxdp. It re-exports the CommonJS build (dist/) instead of
// being a second build, so `import` and `require` get the same module
// instance: one native addon, one set of classes (`instanceof` works across
// both), one registry of attached XDP programs.
export * from '../dist/index.js';
export { default } from '../dist/index.js';
