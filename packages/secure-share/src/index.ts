export {
  HLOS_VMID,
  MAX_VMID,
  ScmError,
  ScmPerm,
  createScmMock,
  maskVmids,
  vmidMask,
  type PageState,
  type PhysRange,
  type ScmCallRecord,
  type ScmDestination,
  type ScmFailReason,
  type ScmFaultOptions,
  type ScmMock,
  type ScmMockOptions,
} from './scm-mock.js';
export {
  AccessViolationError,
  attachAccessControl,
  installGuard,
  type AccessControl,
  type AccessViolation,
  type AccessControlHandle,
  type GuardHost,
} from './guard.js';
export {
  withSecureShare,
  type SecureShareAllocator,
  type SecureShareOptions,
  type SecureShareStats,
  type ShareMode,
} from './secure-share.js';
export {
  secureShareConformanceAdapter,
  type ConformanceEnvLike,
  type SecureShareAdapterOptions,
  type SecureShareConformanceAdapter,
  type SharePermName,
} from './adapter.js';
