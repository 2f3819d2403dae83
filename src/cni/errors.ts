/**
 * CNI errors with the spec's well-known codes (CNI SPEC "Error" section).
 *
 * A plugin reports failure by printing `{cniVersion, code, msg, details}` on stdout and
 * exiting non-zero. Everything the CNI layer throws at a runtime is a {@link CniError};
 * anything else is mapped by {@link toCniError} so no bare string ever reaches a runtime.
 */
import { isSystemError, VhostplugError } from '../core/errors';

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

/** The string `code` of each well-known CNI code (others: `ECNI<n>`). */
const CODE_NAMES: Readonly<Record<number, string>> = {
  1: 'ECNIVERSION',
  2: 'ECNIUNSUPPORTEDFIELD',
  3: 'ECNIUNKNOWNCONTAINER',
  4: 'ECNIENV',
  5: 'ECNIIO',
  6: 'ECNIDECODE',
  7: 'ECNICONFIG',
  11: 'ECNITRYAGAIN',
  50: 'ECNIUNAVAILABLE',
  51: 'ECNIDEGRADED',
  100: 'ECNIINTERNAL',
  101: 'ECNICHECK',
  102: 'ECNIPORTCONFLICT',
};

/** The string code of a numeric CNI code: `ECNICONFIG` for 7, `ECNI<n>` for one without a name. */
export function cniCodeName(cniCode: number): string {
  return CODE_NAMES[cniCode] ?? `ECNI${cniCode}`;
}

/**
 * A CNI error: the spec's numeric code (`cniCode`, what the runtime sees as `code` in the
 * JSON), a short message and optional details (the underlying cause). Its own `code` is a
 * string like every vhostplug error's ({@link cniCodeName}).
 */
export class CniError extends VhostplugError {
  /** Spec error code (see {@link CniErrorCode}): the `code` of the JSON form. */
  readonly cniCode: number;
  /** Short human-readable message (`msg` in the JSON form). */
  readonly msg: string;
  /** Longer explanation or underlying cause (`details` in the JSON form). */
  readonly details: string | undefined;

  constructor(cniCode: CniErrorCodeValue, msg: string, details?: string, options?: { cause?: unknown }) {
    super(cniCodeName(cniCode), details ? `${msg}: ${details}` : msg, options);
    this.cniCode = cniCode;
    this.msg = msg;
    this.details = details || undefined;
  }

  /** The spec's error object, in the requested cniVersion (the runtime's version is echoed). */
  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.cniCode, msg: this.msg };
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
    (err instanceof Error && err.name === 'CniError' && typeof (err as Partial<CniError>).cniCode === 'number')
  );
}

/**
 * Maps any thrown value to a CniError by its type: CniErrors pass through, system errors
 * (ours, Node's, the addon's: a string `code` and a `syscall`) become I/O failures (5),
 * anything else is an internal error (100) so the runtime still gets a well-formed answer.
 */
export function toCniError(err: unknown): CniError {
  if (isCniError(err)) return err;
  if (isSystemError(err))
    return new CniError(CniErrorCode.IoFailure, `${err.syscall} failed`, err.message, { cause: err });
  if (err instanceof Error) {
    return new CniError(CniErrorCode.Internal, 'internal error', err.message, { cause: err });
  }
  return new CniError(CniErrorCode.Internal, 'internal error', String(err));
}
