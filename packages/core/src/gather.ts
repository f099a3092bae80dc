/**
 * struct iommu_iotlb_gather: what an unmap accumulates for the driver's `iotlb_sync`.
 * `queued` means a flush-queue will flush everything later, so io-pgtable skips
 * `tlb_add_page`. `add` extends the range as iommu_iotlb_gather_add_page does.
 */
export class IotlbGather {
  queued: boolean;
  /** Lowest IOVA added (signed-64 number form), or +Infinity when empty. */
  start = Infinity;
  /** One past the highest IOVA added, or -Infinity when empty. */
  end = -Infinity;
  /** Size of the entries gathered (the kernel tracks one pgsize per gather). */
  pgsize = 0;
  /** Number of entries added. */
  count = 0;

  constructor(opts: { queued?: boolean } = {}) {
    this.queued = opts.queued ?? false;
  }

  add(iova: number, size: number): void {
    if (iova < this.start) this.start = iova;
    if (iova + size > this.end) this.end = iova + size;
    this.pgsize = size;
    this.count++;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  reset(): void {
    this.start = Infinity;
    this.end = -Infinity;
    this.pgsize = 0;
    this.count = 0;
  }
}
