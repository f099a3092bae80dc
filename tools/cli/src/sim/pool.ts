/**
 * Run matrix tasks on a worker-thread pool (tinypool) sized to the machine, or inline
 * with one job. Each task is independent and deterministic, so the results do not
 * depend on the number of workers or the order they finish in; only ns/op varies.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import Tinypool from 'tinypool';
import { runTask, type Task, type TaskResult } from './tasks.js';

/** The default `--jobs`: one worker per core the OS gives this process. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/**
 * The file a worker loads: the bundle this code is in (dist/bin.js, dist/index.js or
 * dist/index.cjs), each of which exports `runSimTask` and runs nothing in a worker.
 */
function selfFile(): string {
  if (typeof __filename === 'string') return __filename;
  return fileURLToPath(import.meta.url);
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
  const pool = new Tinypool({ filename: selfFile(), name: 'runSimTask', minThreads: 0, maxThreads: Math.min(jobs, tasks.length), idleTimeout: 1000 });
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
