export {
  CountError,
  allBlockSizes,
  forEachWindow,
  leafLevelOf,
  mayFreeTables,
  tablesNeeded,
  type CountMapOp,
  type CountOp,
  type CountPolicy,
  type CountUnmapOp,
  type MergeStrategy,
  type CountSplitPolicy,
  type TableCount,
} from './count.js';
export { tablesNeededOnTree } from './tree-count.js';
export { SignallingSection, withBackingGuard, type SectionViolation, type SignallingSectionOptions } from './section.js';
export {
  withReservation,
  type FreePolicy,
  type Reservation,
  type ReservationAllocator,
  type ReservationAllocatorCounters,
  type ReservationAllocatorOptions,
  type ReservationCounters,
  type ReservationState,
} from './reservation.js';
export { createAdmission, type Admission, type AdmissionCounters, type AdmissionOptions, type AdmissionTicket } from './admission.js';
export { VmaMap, type VmaProt, type Vma } from './vma.js';
export { BindError, Vm, createVm, type BindFailure, type BindMapOp, type BindOp, type BindUnmapOp, type RunResult, type VmOptions } from './vm.js';
export { PrepareFailure, VmBindQueue, type CountStrategy, type Job, type JobState, type QueueCounters, type QueueOptions } from './queue.js';
export { reservationConformanceAdapter, type ConformanceJobLike } from './adapter.js';
