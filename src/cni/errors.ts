/**
 * CNI errors with the spec's well-known codes (CNI SPEC "Error" section).
 *
 * A plugin reports failure by printing `{cniVersion, code, msg, details}` on stdout and
 * exiting non-zero. Everything the CNI layer throws at a runtime is a {@link CniError};
 * anything else is mapped by {@link toCniError} so no bare string ever reaches a runtime.
 */

/** Well-known CNI error codes (0-99 are reserved by the spec; 100+ are ours). */
export const CniErrorCode = {
  /** The config's cniVersion is not one the plugin supports (or the command needs a newer one). */
  IncompatibleVersion: 1,
  /** A field of the config is not supported by the plugin. */
  UnsupportedField: 2,
  /** The container or its resources are unknown or gone. */
  UnknownContainer: 3,
  /** A CNI_* environment variable is missing or malformed. */
  InvalidEnvironment: 4,
  /** An I/O operation failed (file, socket, delegated plugin). */
  IoFailure: 5,
  /** stdin (or a delegated plugin's output) could not be decoded. */
  DecodeFailure: 6,
  /** The network configuration is invalid. */
  InvalidConfig: 7,
  /** A transient condition: the runtime should retry the operation later. */
  TryAgainLater: 11,
  /** STATUS: the plugin is not ready to accept ADDs. */
  PluginNotAvailable: 50,
  /** STATUS: not ready, and existing attachments may have degraded connectivity. */
  PluginNotAvailableLimitedConnectivity: 51,
  /** vhostplug: an unexpected internal error (a bug); details carry the cause. */
  Internal: 100,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode] | number;

/** The JSON a plugin prints on failure. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** A CNI error: spec code, short message and optional details (the underlying cause). */
export class CniError extends Error {
  /** Spec error code (see {@link CniErrorCode}). */
  readonly code: number;
  /** Short human-readable message (`msg` in the JSON form). */
  readonly msg: string;
  /** Longer explanation or underlying cause (`details` in the JSON form). */
  readonly details: string | undefined;

  constructor(code: CniErrorCodeValue, msg: string, details?: string, options?: { cause?: unknown }) {
    super(details ? `${msg}: ${details}` : msg, options);
    this.name = 'CniError';
    this.code = code;
    this.msg = msg;
    this.details = details || undefined;
  }

  /** The spec's error object, in the requested cniVersion (the runtime's version is echoed). */
  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.msg };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }

  /** Serialised error as printed on stdout. */
  format(cniVersion: string): string {
    return JSON.stringify(this.toJSON(cniVersion));
  }
}

/** True for a {@link CniError} (also across module copies, by shape). */
export function isCniError(err: unknown): err is CniError {
  return (
    err instanceof CniError ||
    (err instanceof Error && err.name === 'CniError' && typeof (err as CniError).code === 'number')
  );
}

/**
 * Maps any thrown value to a CniError: CniErrors pass through, Node system errors
 * (with `syscall`) become I/O failures (5) carrying errno/syscall/path, anything else is
 * an internal error (100) so the runtime still gets a well-formed answer.
 */
export function toCniError(err: unknown): CniError {
  if (isCniError(err)) return err;
  if (err instanceof Error) {
    const sys = err as Error & { code?: unknown; syscall?: unknown; path?: unknown };
    if (typeof sys.syscall === 'string') {
      return new CniError(CniErrorCode.IoFailure, `${sys.syscall} failed`, err.message, { cause: err });
    }
    return new CniError(CniErrorCode.Internal, 'internal error', err.message, { cause: err });
  }
  return new CniError(CniErrorCode.Internal, 'internal error', String(err));
}
