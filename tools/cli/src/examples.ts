/**
 * The Examples section of `--help` for commands whose own description has none (the
 * other commands write theirs in their description). Every name in any command's
 * examples (commands, workloads, stacks, options) must exist: test/runner.test.ts checks
 * each one against the registries.
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  'worst-case': [
    'io-pgtable worst-case --range 0x1ff000+0x2000',
    'io-pgtable worst-case --granule 16K --ias 40 --oas 40 --format ARM_64_LPAE_S2 --range 0+1G@32M',
    'io-pgtable worst-case --merge union --range 0x100000+64K --range 0x110000+64K',
    'io-pgtable worst-case --exact-page-sizes --range 0x1ff000+0x202000=0x809ff000',
    'io-pgtable worst-case --bitmap 0x40201000 --range unmap:0x200000+4K --split split',
  ],
  'import-ftrace': [
    'io-pgtable import-ftrace iommu.txt -o iommu.trace.jsonl',
    'trace-cmd report | io-pgtable import-ftrace --bitmap 0x40201000 > iommu.trace.jsonl',
    'io-pgtable import-ftrace --format ARM_64_LPAE_S2 --ias 40 --oas 40 iommu.txt -o s2.trace.jsonl',
    'io-pgtable replay iommu.trace.jsonl',
    'io-pgtable simulate --workload trace-replay --trace iommu.trace.jsonl',
  ],
});
