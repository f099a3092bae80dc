// Command-line options for the packages' benchmark scripts (dev-only, never published):
// `--help` prints the usage and exits 0; an unknown option or a bad number prints one line
// and exits 2, before anything is measured.
import { parseArgs } from 'node:util';

/**
 * @param {string} usage   first line(s) of the help text: what the bench measures and prints
 * @param {Record<string, { default: number, help: string }>} numbers  numeric options (non-negative integers)
 * @returns {Record<string, number>}
 */
export function benchArgs(usage, numbers = {}) {
  const options = { help: { type: 'boolean', short: 'h' } };
  for (const name of Object.keys(numbers)) options[name] = { type: 'string' };
  const script = process.argv[1]?.split(/[\\/]/).slice(-2).join('/') ?? 'bench';
  const help = () =>
    [
      usage.trim(),
      '',
      `Usage: node ${script}${Object.keys(numbers).map((n) => ` [--${n} N]`).join('')}`,
      ...Object.entries(numbers).map(([n, o]) => `  --${n.padEnd(10)} ${o.help} (default ${o.default})`),
      '  -h, --help   this text',
    ].join('\n');
  let values;
  try {
    ({ values } = parseArgs({ options, strict: true, allowPositionals: false }));
  } catch (e) {
    process.stderr.write(`${script}: ${e.message}\n${help()}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${help()}\n`);
    process.exit(0);
  }
  const out = {};
  for (const [name, o] of Object.entries(numbers)) {
    const raw = values[name];
    const n = raw === undefined ? o.default : Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) {
      process.stderr.write(`${script}: --${name} must be a non-negative integer, got ${JSON.stringify(raw)}\n`);
      process.exit(2);
    }
    out[name] = n;
  }
  return out;
}
