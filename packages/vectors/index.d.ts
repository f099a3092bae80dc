/** This package's directory: FORMAT.md, manifest.json and public/. */
export declare const VECTORS_ROOT: string;
/** The directory of the public vectors: NAME.trace.jsonl and NAME.expected.jsonl pairs. */
export declare const PUBLIC_VECTORS: string;
