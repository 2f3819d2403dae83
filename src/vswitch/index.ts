/** Typed port operations on the Open_vSwitch schema (public surface). */
export { Vswitch, PortConflictError, type VswitchOptions, type WriteAckOptions, type AddPortResult, type WriteTimings, type OwnedPort } from './vswitch';
export {
  DatapathMismatchError,
  addBridgeOps,
  addPortOps,
  delPortOps,
  ensureBridgeOps,
  insertPortOps,
  interfaceRow,
  updateInterfaceOps,
  VSWITCH_CACHE_COLUMNS,
  type InterfaceType,
  type PortSpec,
} from './ports';
export { OWNER_KEYS, OWNER_VALUE, attachmentOf, osVifExternalIds, ownerExternalIds, sameAttachment, type Attachment } from './ownership';
