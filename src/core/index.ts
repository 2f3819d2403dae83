/** The bottom layer: validation of names and paths, logging. Pure, no I/O. */
export {
  ValidationError,
  isValidationError,
  validateContainerId,
  validateIfName,
  validateVifName,
  validateMac,
  validateMode,
  validatePodUid,
  validateAbsolutePath,
  validateUnixSocketPath,
  type VHostUserMode,
} from './validate';
export { canonicalMac, canonicalIp, canonicalCidr, formatIp, parseIp, parseCidr, type IpAddress, type IpNetwork } from './net';
export { jsonLogger, silentLogger, type Logger, type LogLevel } from './log';
