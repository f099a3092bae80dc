import type { Paddr } from '@io-pgtable/allocator-api';
import { deviceSnapshot, type PageTable } from '../page-table.js';

/**
 * Every table reachable from `pt`'s PGD (address -> non-zero entries), read as the IOMMU
 * reads them: device accesses are the VM's, so a table the host may not read (secure-share
 * donate mode) is read too. `pt.tables()` is the host's read of the same, access-checked.
 * Checkers use this to prove a donated tree unchanged.
 */
export function deviceTables(pt: PageTable<unknown>): Map<Paddr, Map<number, bigint>> {
  return deviceSnapshot(pt);
}
