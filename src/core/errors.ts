/**
 * The error model (docs/errors.md): every error vhostplug raises is a {@link VhostplugError}
 * with a stable string `code`; its subclasses add fields, never another way to name a
 * failure. System errors have Node's shape (`code`, `errno`, `syscall`, `path`, `dest`),
 * built by {@link systemError} exactly as native/errors.cc builds the addon's. Callers
 * branch on classes or codes, never on message text.
 */
import { constants as osConstants } from 'node:os';
import * as util from 'node:util';

/** The base class of every vhostplug error. */
export class VhostplugError extends Error {
  /** Stable machine-readable code: `EVALIDATION`, `EOVSDBCONSTRAINT`, `EXDEV`, ... */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The fields of a Node-style system error (fs errors, the addon's errors, ours). */
export interface SystemErrorFields {
  /** errno name, e.g. `EXDEV`. */
  code: string;
  /** Negative errno, as Node reports it. */
  errno: number;
  /** The syscall (or rtnetlink message type) that failed. */
  syscall: string;
  path?: string;
  dest?: string;
}

/** A Node-style system error raised by vhostplug itself (the addon raises plain Errors of the same shape). */
export class SystemError extends VhostplugError implements SystemErrorFields {
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly dest?: string;

  constructor(fields: SystemErrorFields, message: string, options?: { cause?: unknown }) {
    super(fields.code, message, options);
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    if (fields.path !== undefined) this.path = fields.path;
    if (fields.dest !== undefined) this.dest = fields.dest;
  }
}

/** The negative errno of an errno name (0 when unknown). */
export function errnoOf(code: string): number {
  const n = (osConstants.errno as Record<string, number | undefined>)[code];
  return n === undefined ? 0 : -n;
}

/** strerror() of an errno name, as Node's own errors word it. */
export function strerror(code: string): string {
  const errno = errnoOf(code);
  return (errno !== 0 && util.getSystemErrorMap().get(errno)?.[1]) || code;
}

/**
 * A system error as native/errors.cc makes one: message
 * `"<CODE>: <strerror>, <syscall> '<path>' -> '<dest>' (<detail>)"` (absent parts left
 * out), fields `code`, `errno`, `syscall`, `path`, `dest`.
 */
export function systemError(
  code: string,
  syscall: string,
  opts: { path?: string; dest?: string; detail?: string; cause?: unknown } = {},
): SystemError {
  let msg = `${code}: ${strerror(code)}, ${syscall}`;
  if (opts.path) msg += ` '${opts.path}'`;
  if (opts.dest) msg += ` -> '${opts.dest}'`;
  if (opts.detail) msg += ` (${opts.detail})`;
  const fields: SystemErrorFields = { code, errno: errnoOf(code), syscall };
  if (opts.path) fields.path = opts.path;
  if (opts.dest) fields.dest = opts.dest;
  return new SystemError(fields, msg, opts.cause === undefined ? undefined : { cause: opts.cause });
}

/** The string `code` of any thrown value (vhostplug, Node and addon errors alike), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}

/** True for an error whose `code` is one of `codes` (e.g. `hasCode(e, 'ENOENT')`). */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  const c = errorCode(err);
  return c !== undefined && codes.includes(c);
}

/** True for a system error (ours or Node's): a string `code` and a `syscall`. */
export function isSystemError(err: unknown): err is Error & SystemErrorFields {
  return (
    err instanceof Error && errorCode(err) !== undefined && typeof (err as { syscall?: unknown }).syscall === 'string'
  );
}

/**
 * Node's own argument errors (`ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`): a programming
 * error of the caller, refused before anything is done, with Node's TypeError/RangeError.
 */
export function invalidArgument(
  name: string,
  value: unknown,
  why: string,
  kind: 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE' = 'ERR_INVALID_ARG_VALUE',
): (TypeError | RangeError) & { code: string } {
  const Cls = kind === 'ERR_OUT_OF_RANGE' ? RangeError : TypeError;
  return Object.assign(new Cls(`The argument '${name}' ${why}. Received ${JSON.stringify(value)}`), { code: kind });
}

/** A bad command line or tool argument: printed as one line (no stack), exit code 2. */
export class UsageError extends VhostplugError {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super('EUSAGE', message);
  }
}
