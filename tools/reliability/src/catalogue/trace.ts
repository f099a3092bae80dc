/** Traces (FORMAT.md) that parseTrace and replayTrace must reject, naming the line. */
import type { TraceCase } from './types.js';

export const HDR = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}';
export function tr(id: string, input: string, body: string, line: number, match: RegExp, header = HDR): TraceCase {
  return { id, surface: 'trace', input, text: header + '\n' + body + (body ? '\n' : ''), line, match };
}

export const CASES: readonly TraceCase[] = [
  { id: 'trace-empty', surface: 'trace', input: 'empty file', text: '', line: 1, match: /empty trace/ },
  tr('trace-truncated', 'op line cut mid-object', '{"op":"map","iova":"0x1000"', 2, /not valid JSON/),
  tr('trace-not-object', 'op line is an array', '["map"]', 2, /each line must be a JSON object/),
  tr('trace-format-unknown', "header format 'ARM_V9'", '', 1, /format "ARM_V9" is not one of/, '{"format":"ARM_V9","pgsizeBitmap":"0x1000","ias":48,"oas":48}'),
  tr('trace-quirk-unknown', "header quirk 'ARM_FOO'", '', 1, /unknown quirk "ARM_FOO"/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"quirks":["ARM_FOO"]}'),
  tr('trace-header-missing-key', 'header without pgsizeBitmap', '', 1, /missing required key "pgsizeBitmap"/, '{"format":"ARM_64_LPAE_S1","ias":48,"oas":48}'),
  tr('trace-header-unknown-key', "header key 'granule'", '', 1, /unknown header key "granule"/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"granule":4096}'),
  tr('trace-ias-too-big', 'ias 65', '', 1, /ias: 65 is larger than 64/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":65,"oas":48}'),
  tr('trace-coherent-type', 'coherentWalk "yes"', '', 1, /coherentWalk must be true or false/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"coherentWalk":"yes"}'),
  tr('trace-number-word', 'iova "abc"', '{"op":"iova_to_phys","iova":"abc"}', 2, /iova: "abc" is not an integer/),
  tr('trace-hex-junk', 'iova "0x12g"', '{"op":"iova_to_phys","iova":"0x12g"}', 2, /iova: "0x12g" is not an integer/),
  tr('trace-above-2p64', 'iova "0x10000000000000000"', '{"op":"iova_to_phys","iova":"0x10000000000000000"}', 2, /does not fit in 64 bits/),
  tr('trace-negative', 'iova -1', '{"op":"iova_to_phys","iova":-1}', 2, /iova: -1 is not an unsigned integer/),
  tr('trace-fraction', 'pgcount 1.5', '{"op":"unmap","iova":"0x1000","pgsize":"0x1000","pgcount":1.5}', 2, /pgcount: 1.5 is not an unsigned integer/),
  tr('trace-unsafe-number', 'iova 9007199254740993 as a JSON number', '{"op":"iova_to_phys","iova":9007199254740993}', 2, /numbers above 2\^53 must be strings/),
  tr('trace-op-unknown', "op 'remap'", '{"op":"remap","iova":"0x1000"}', 2, /unknown op "remap"/),
  tr('trace-op-missing', 'line without op', '{"iova":"0x1000"}', 2, /unknown op undefined/),
  tr('trace-op-unknown-key', "map with key 'size'", '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["read"],"size":1}', 2, /unknown map key "size"/),
  tr('trace-missing-key', 'map without paddr', '{"op":"map","iova":"0x1000","pgsize":"0x1000","prot":["read"]}', 2, /missing required key "paddr"/),
  tr('trace-prot-type', 'prot "read" (not an array)', '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":"read"}', 2, /prot must be an array of names/),
  tr('trace-prot-unknown', "prot ['exec']", '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["exec"]}', 2, /unknown prot "exec"/),
  tr('trace-after-free', 'an op after free', '{"op":"free"}\n{"op":"iova_to_phys","iova":"0x0"}', 3, /"free" must be the last op/),
  tr('trace-queued-type', 'unmap queued 1', '{"op":"unmap","iova":"0x1000","pgsize":"0x1000","queued":1}', 2, /queued must be true or false/),
];

