/**
 * The hostile-input catalogue: every invalid input the project promises to reject, with
 * the outcome it must get. One file per owner, one line each here.
 */
import type { Case } from './types.js';
import { CASES as api } from './api.js';
import { CASES as trace } from './trace.js';
import { CASES as cliReplay } from './cli-replay.js';
import { CASES as secure } from './secure.js';
import { CASES as replay } from './replay.js';
import { CASES as cliMain } from './cli-main.js';
import { CASES as cliInput } from './cli-input.js';
import { CASES as coreEngine } from './core-engine.js';
import { CASES as contract } from './contract.js';
import { CASES as cAllocator } from './c-allocator.js';
import { CASES as cliHostile } from './cli-hostile.js';

export const ALL_CASES: readonly Case[] = [...api, ...trace, ...cliReplay, ...secure, ...replay, ...cliMain, ...cliInput, ...coreEngine, ...contract, ...cAllocator, ...cliHostile];

export * from './types.js';
export { makeFixture, snapshot } from './fixture.js';
