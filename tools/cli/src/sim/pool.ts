/**
 * Run matrix tasks on a worker-thread pool (tinypool) sized to the machine, or inline
 * with one job. Each task is independent and deterministic, so the results do not
 * depend on the number of workers or the order they finish in; only ns/op varies.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Tinypool from 'tinypool';
import { runTask, type Task, type TaskResult } from './tasks.js';

/** The default `--jobs`: one worker per core the OS gives this process. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/**
 * The file a worker loads: the package entry beside this code (dist/index.js or
 * dist/index.cjs, which export `runSimTask` and run nothing on import). With code splitting
 * this code sits in a shared chunk in the same directory, whose exports are renamed, so the
 * entry is named explicitly; unbundled, this module itself is the worker.
 */
function workerFile(): string {
  const cjs = typeof __filename === 'string';
  const here = cjs ? __filename : fileURLToPath(import.meta.url);
  const entry = join(dirname(here), cjs ? 'index.cjs' : 'index.js');
  return existsSync(entry) ? entry : here;
}

/** The worker entry point (exported by every bundle). */
export async function runSimTask(task: Task): Promise<TaskResult> {
  return runTask(task);
}

/** Run every task with `jobs` workers; `onDone` is called in completion order; results come back in task order. */
export async function runTasks(tasks: Task[], jobs: number, onDone: (r: TaskResult) => void): Promise<TaskResult[]> {
  const out: TaskResult[] = [];
  if (jobs <= 1 || tasks.length <= 1) {
    for (const t of tasks) {
      const r = await runTask(t);
      onDone(r);
      out.push(r);
    }
    return out;
  }
  const pool = new Tinypool({ filename: workerFile(), name: 'runSimTask', minThreads: 0, maxThreads: Math.min(jobs, tasks.length), idleTimeout: 1000 });
  try {
    const results = await Promise.all(
      tasks.map(async (t) => {
        const r = (await pool.run(t)) as TaskResult;
        onDone(r);
        return r;
      }),
    );
    return results.sort((a, b) => a.index - b.index);
  } finally {
    await pool.destroy();
  }
}
