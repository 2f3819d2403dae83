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
  canonicalMac,
  type VHostUserMode,
} from './validate';
export { jsonLogger, silentLogger, type Logger, type LogLevel } from './log';
