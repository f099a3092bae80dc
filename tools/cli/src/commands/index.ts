import type { Command } from '../command.js';
import { importFtraceCommand } from './import-ftrace.js';
import { replayCommand } from './replay.js';
import { worstCaseCommand } from './worst-case.js';
import { buildCCommand } from './build-c.js';
import { benchCommand, compareCommand, reportCommand, simulateCommand } from './sim-commands.js';

/** Every command, in the order `--help` lists them. */
export const commands: Command[] = [compareCommand, replayCommand, simulateCommand, benchCommand, reportCommand, worstCaseCommand, importFtraceCommand, buildCCommand];
