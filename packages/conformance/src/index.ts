export type {
  AllocatorFactory,
  ConformanceEnv,
  ConformanceFormat,
  ConformanceGranule,
  ConformanceGroup,
  ConformanceOptions,
  JobOp,
  PageOwnership,
  ReservationAdapter,
  ReservationHandle,
  ReservationJob,
  SecureShareAdapter,
  SharePerm,
  JobSplitPolicy,
} from './options.js';
export { ALL_FORMATS, ALL_GRANULES } from './options.js';
export { ConformanceFailure, type ConformanceRule } from './failure.js';
export { TABLE_CONFIGS, type TableConfig } from './configs.js';
export type { ConformanceCheck } from './groups/group.js';
export {
  GROUPS,
  conformanceChecks,
  describeAccounting,
  describeAllocatorConformance,
  describeContract,
  describeFaultInjection,
  describeFlushOrdering,
  describeLongLived,
  describeMisuse,
  describeProperty,
  describeReservation,
  describeSecureShare,
  describeTables,
  runConformanceGroup,
} from './suite.js';
export { throwingBacking, type ThrowingBacking } from './throwing-backing.js';
export { thrown } from './thrown.js';
