export { AssocCache, type CacheConfig, type Replacement } from './cache.js';
export { TableGenerations, type GenerationListener, type TableRecord } from './generations.js';
export { IommuFindingError, type Finding, type FindingKind } from './findings.js';
export {
  Iommu,
  type AccessResult,
  type FlushBehaviour,
  type IommuCounters,
  type IommuOptions,
} from './iommu.js';
export {
  WalkConfigError,
  checkPermission,
  entrySize,
  inputAddress,
  walk,
  walkConfigFromRegisters,
  type AccessType,
  type Fault,
  type FaultKind,
  type Regime,
  type TableStep,
  type Translation,
  type WalkConfig,
  type WalkOutcome,
} from './walker.js';
export { deviceTables } from './device-tables.js';
