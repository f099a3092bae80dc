// Where the reference vectors are on disk: tests read the files themselves.
import { fileURLToPath } from 'node:url';

/** This package's directory: FORMAT.md, manifest.json and public/. */
export const VECTORS_ROOT = fileURLToPath(new URL('.', import.meta.url)).replace(/[\\/]$/, '');

/** The directory of the public vectors: NAME.trace.jsonl and NAME.expected.jsonl pairs. */
export const PUBLIC_VECTORS = fileURLToPath(new URL('./public', import.meta.url));
