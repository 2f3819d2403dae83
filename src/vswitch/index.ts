/** The Open_vSwitch database: typed rows, port operations, ownership and the ovs-vswitchd acknowledgement (public surface). */
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
  type InterfaceType,
  type PortSpec,
} from './ports';
export { OWNER_KEYS, OWNER_VALUE, attachmentOf, osVifExternalIds, ownerExternalIds, sameAttachment, type Attachment } from './ownership';
export {
  VSWITCH_CACHE,
  VswitchRows,
  checkCache,
  decodeBridge,
  decodeInterface,
  decodeOpenVSwitch,
  decodePort,
  type BridgeRow,
  type InterfaceRow,
  type OpenVSwitchRow,
  type PortRow,
} from './rows';
export {
  VswitchdAck,
  VswitchdError,
  transactAcked,
  nextCfgOps,
  nextCfgFromResult,
  insertedInterfaceUuids,
  interfaceFailures,
  type InterfaceFailure,
} from './ack';
