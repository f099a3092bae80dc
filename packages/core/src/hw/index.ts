export { AssocCache, type CacheConfig, type Replacement } from './cache.js';
export { TableGenerations, type GenerationListener, type TableRecord } from './generations.js';
export {
  Iommu,
  IommuFindingError,
  type AccessResult,
  type Finding,
  type FindingKind,
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
