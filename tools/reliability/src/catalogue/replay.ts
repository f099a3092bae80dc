/**
 * Hostile-input cases owned by the "replay" helper: add them to this list (any shape of
 * types.ts; set `category` to the class of issue 14 each one covers). They run in
 * test/catalogue.test.ts and appear in docs/reliability.md (`npm run catalogue -- --write`).
 */
import type { Case } from './types.js';

export const CASES: readonly Case[] = [];
