import type { Command } from '../command.js';
import { buildCCommand } from './build-c.js';
import { compareCommand } from './compare.js';
import { importFtraceCommand } from './import-ftrace.js';
import { replayCommand } from './replay.js';
import { reportCommand } from './report.js';
import { benchCommand, simulateCommand } from './sim-commands.js';
import { worstCaseCommand } from './worst-case.js';

/** Every command, in the order `--help` lists them. */
export const commands: Command[] = [compareCommand, replayCommand, simulateCommand, benchCommand, reportCommand, worstCaseCommand, importFtraceCommand, buildCCommand];
