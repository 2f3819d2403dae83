/**
 * The VIF layer: the os-vif model, its versioned-object codec, the Neutron port
 * translation and the names derived from a port id. Pure data and functions, no I/O.
 */
export * from './model';
export {
  OVO_NAMESPACE,
  OVO_KEYS,
  OSVIF_VERSIONS,
  VIFFormatError,
  canonicalIPAddress,
  canonicalIPNetwork,
  decodeVIF,
  parseVIF,
  encodeVIF,
  decodeNetwork,
  encodeNetwork,
  decodePortProfile,
  decodePodState,
  encodePodState,
  decodeKuryrVifAnnotation,
  decodeKuryrPortVifs,
  encodeKuryrPortVifs,
} from './ovo';
export type { OvoPrimitive, OvoClassName, VIFFormatErrorCode } from './ovo';
export {
  NeutronTranslationError,
  neutronPortToVIF,
  neutronNetworkToOsvif,
  neutronSubnetToOsvif,
  makeSubnetMapping,
  makeVifNetwork,
  portVifType,
} from './neutron';
export type {
  NeutronPort,
  NeutronVifDetails,
  NeutronNetwork,
  NeutronSubnet,
  SubnetMapping,
  TranslationConfig,
  NeutronTranslationErrorCode,
} from './neutron';
export {
  NIC_NAME_LEN,
  VHOSTUSER_PREFIX,
  VETH_PREFIX,
  HYBRID_BRIDGE_PREFIX,
  deviceName,
  vhostUserPortName,
  vethHostName,
  hybridBridgeName,
  vhostUserSocketPath,
  vhostUserConfigFileName,
} from './names';
