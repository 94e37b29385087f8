// Types of the ESM entry: the CommonJS build's, re-exported (see index.mjs).
export * from '../dist/index.js';
import afxdp from '../dist/index.js';
export default afxdp;
