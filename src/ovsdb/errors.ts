/**
 * Typed OVSDB errors. Server errors are mapped from the RFC 7047 error strings (and the
 * strings OVS adds) to one class each; every one carries the RFC `error` string, the
 * server's `details`, and for transact the failed operation's index and the op itself.
 * Client-side conditions (disconnect, protocol violation, timeout)
 * have their own classes. All have a stable `code` (catalogue in docs/ovsdb-protocol.md).
 */
import { VhostplugError } from '../core/errors';

/** What every OVSDB error carries. */
export interface OvsdbErrorInit {
  /** The server's `details` text, when given. */
  details?: string;
  /** Index of the failed operation in the transaction (absent for non-transact errors). */
  opIndex?: number;
  /** The failed operation as sent (absent for non-transact or commit errors). */
  op?: unknown;
  /** JSON-RPC method that failed. */
  method?: string;
  /** The server's `syntax` member: the JSON text it could not accept. */
  syntax?: string;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** Base class of every error raised by the OVSDB client; its `code` is e.g. `EOVSDBCONSTRAINT`. */
export class OvsdbError extends VhostplugError {
  /** The server's error string (RFC 7047 `error` member), or the client's own kind. */
  readonly error: string;
  readonly details: string | undefined;
  readonly opIndex: number | undefined;
  readonly op: unknown;
  readonly method: string | undefined;
  readonly syntax: string | undefined;

  constructor(code: string, error: string, init: OvsdbErrorInit = {}, message?: string) {
    super(code, message ?? formatMessage(error, init), init.cause !== undefined ? { cause: init.cause } : undefined);
    this.error = error;
    this.details = init.details;
    this.opIndex = init.opIndex;
    this.op = init.op;
    this.method = init.method;
    this.syntax = init.syntax;
  }
}

function formatMessage(error: string, init: OvsdbErrorInit): string {
  let where = '';
  if (init.opIndex !== undefined) {
    const opName = (init.op as { op?: unknown } | undefined)?.op;
    const table = (init.op as { table?: unknown } | undefined)?.table;
    where = ` in operation ${init.opIndex}${typeof opName === 'string' ? ` (${opName}${typeof table === 'string' ? ` ${table}` : ''})` : ''}`;
  } else if (init.method) {
    where = ` in ${init.method}`;
  }
  return `ovsdb: ${error}${where}${init.details ? `: ${init.details}` : ''}`;
}

/** A server error string that has no class of its own (e.g. `unknown database`, `canceled`). */
export class OvsdbRpcError extends OvsdbError {
  constructor(error: string, init: OvsdbErrorInit = {}) {
    super('EOVSDBRPC', error, init);
  }
}

// One class per RFC 7047 / OVS error string; ERROR_CLASSES below maps string -> class.

/** Constructor shape shared by the server error classes. */
export type ServerErrorClass = new (init?: OvsdbErrorInit) => OvsdbError;

/** `referential integrity violation`: a reference to a missing row, or a row deleted while still referenced. */
export class ReferentialIntegrityViolationError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBREFINTEGRITY', 'referential integrity violation', init);
  }
}

/** `constraint violation`: a value outside its column type, or a duplicate in a unique index (e.g. two Interfaces named alike). */
export class ConstraintViolationError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBCONSTRAINT', 'constraint violation', init);
  }
}

/** `resources exhausted`: the server ran out of a resource. */
export class ResourcesExhaustedError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBRESOURCES', 'resources exhausted', init);
  }
}

/** `I/O error`: the server could not write its database. */
export class OvsdbIoError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBIO', 'I/O error', init);
  }
}

/** `duplicate uuid-name`: the same uuid-name used by two inserts of one transaction. */
export class DuplicateUuidNameError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBDUPUUIDNAME', 'duplicate uuid-name', init);
  }
}

/** `duplicate uuid`: an insert with an explicit `uuid` that already exists. */
export class DuplicateUuidError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBDUPUUID', 'duplicate uuid', init);
  }
}

/** `domain error`: an arithmetic mutation outside its domain (division by zero). */
export class DomainError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBDOMAIN', 'domain error', init);
  }
}

/** `range error`: a mutation result outside the column range. */
export class OvsdbRangeError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBRANGE', 'range error', init);
  }
}

/** `timed out`: a `wait` operation's timeout expired. */
export class TimedOutError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBTIMEDOUT', 'timed out', init);
  }
}

/** `not supported`: the operation is not supported. */
export class NotSupportedError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBNOTSUPPORTED', 'not supported', init);
  }
}

/** `aborted`: an `abort` operation rolled the transaction back. */
export class AbortedError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBABORTED', 'aborted', init);
  }
}

/** `not owner`: an `assert` on a lock this session does not hold. */
export class NotOwnerError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBNOTOWNER', 'not owner', init);
  }
}

/** `syntax error`: (OVS) a malformed operation or value. */
export class OvsdbSyntaxError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBSYNTAX', 'syntax error', init);
  }
}

/** `unknown column`: (OVS) a column the table does not have. */
export class UnknownColumnError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBUNKNOWNCOLUMN', 'unknown column', init);
  }
}

/** `internal error`: (OVS) a server bug. */
export class OvsdbInternalError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBINTERNAL', 'internal error', init);
  }
}

/** `ovsdb error`: (OVS) a generic server-side failure. */
export class OvsdbGenericError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBERROR', 'ovsdb error', init);
  }
}

/** `permission error`: (OVS RBAC) the session may not do this. */
export class PermissionError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBPERMISSION', 'permission error', init);
  }
}

/** `canceled`: the transact was cancelled (`cancel`) before it completed. */
export class CanceledError extends OvsdbError {
  constructor(init: OvsdbErrorInit = {}) {
    super('EOVSDBCANCELED', 'canceled', init);
  }
}

/** The error strings as the server spells them, mapped to their classes. */
export const ERROR_CLASSES: ReadonlyMap<string, ServerErrorClass> = new Map<string, ServerErrorClass>([
  ['referential integrity violation', ReferentialIntegrityViolationError],
  ['constraint violation', ConstraintViolationError],
  ['resources exhausted', ResourcesExhaustedError],
  ['I/O error', OvsdbIoError],
  ['duplicate uuid-name', DuplicateUuidNameError],
  // The RFC's text spells it with a space; accept both.
  ['duplicate uuid name', DuplicateUuidNameError],
  ['duplicate uuid', DuplicateUuidError],
  ['domain error', DomainError],
  ['range error', OvsdbRangeError],
  ['timed out', TimedOutError],
  ['not supported', NotSupportedError],
  ['aborted', AbortedError],
  ['not owner', NotOwnerError],
  ['syntax error', OvsdbSyntaxError],
  ['unknown column', UnknownColumnError],
  ['internal error', OvsdbInternalError],
  ['ovsdb error', OvsdbGenericError],
  ['permission error', PermissionError],
  ['canceled', CanceledError],
]);

/** Builds the typed error for a server error string (unknown strings give OvsdbRpcError). */
export function errorFromString(error: string, init: OvsdbErrorInit = {}): OvsdbError {
  const cls = ERROR_CLASSES.get(error);
  return cls ? new cls(init) : new OvsdbRpcError(error, init);
}

/**
 * The commit failed after every operation succeeded: the server appended one extra
 * result element (RFC 7047 4.1.3). `cause` is the typed error for that element.
 */
export class CommitError extends OvsdbError {
  override readonly cause: OvsdbError;
  constructor(cause: OvsdbError) {
    super(
      'EOVSDBCOMMIT',
      cause.error,
      { details: cause.details, cause },
      `ovsdb: commit failed: ${cause.error}${cause.details ? `: ${cause.details}` : ''}`,
    );
    this.cause = cause;
  }
}

/** The connection dropped (or was not up) while the request was outstanding; it was not replayed. */
export class DisconnectedError extends OvsdbError {
  constructor(
    message = 'ovsdb: disconnected from the server; the request was not replayed',
    init: OvsdbErrorInit = {},
  ) {
    super('EOVSDBDISCONNECTED', 'disconnected', init, message);
  }
}

/** The peer broke JSON-RPC or OVSDB rules (unparsable message, unexpected reply shape). */
export class ProtocolError extends OvsdbError {
  constructor(message: string, init: OvsdbErrorInit = {}) {
    super('EOVSDBPROTOCOL', 'protocol error', init, `ovsdb: protocol error: ${message}`);
  }
}

/** A client-side deadline passed (request reply, vswitchd acknowledgement, connect). */
export class TimeoutError extends OvsdbError {
  constructor(message: string, init: OvsdbErrorInit = {}) {
    super('EOVSDBTIMEOUT', 'timeout', init, `ovsdb: ${message}`);
  }
}

/** Connecting to the server did not finish in time (the server is unreachable, not slow to answer). */
export class ConnectTimeoutError extends TimeoutError {}

/** A JSON-RPC `error` member as sent by the server: usually `{error, details}`, sometimes a string. */
export function errorFromRpc(errorMember: unknown, method: string): OvsdbError {
  if (typeof errorMember === 'string') return errorFromString(errorMember, { method });
  if (errorMember && typeof errorMember === 'object') {
    const e = errorMember as { error?: unknown; details?: unknown; syntax?: unknown };
    if (typeof e.error === 'string') {
      return errorFromString(e.error, { method, ...detailsOf(e) });
    }
  }
  return new ProtocolError(`unrecognised error member ${JSON.stringify(errorMember)}`, { method });
}

/**
 * Checks a transact result array (RFC 7047 4.1.3 as `ovsdb/execution.c` builds it):
 * the first failed op carries `{error, details}`, later ones are null, and a commit
 * failure after all ops succeeded is one extra element. Returns the typed error, or
 * undefined when the transaction committed.
 */
export function transactError(results: unknown, ops: readonly unknown[]): OvsdbError | undefined {
  if (!Array.isArray(results)) return new ProtocolError('transact result is not an array', { method: 'transact' });
  const n = Math.min(results.length, ops.length);
  for (let i = 0; i < n; i++) {
    const r = results[i] as { error?: unknown; details?: unknown; syntax?: unknown } | null;
    if (r !== null && typeof r === 'object' && typeof r.error === 'string') {
      return errorFromString(r.error, { opIndex: i, op: ops[i], method: 'transact', ...detailsOf(r) });
    }
  }
  if (results.length > ops.length) {
    const extra = results[ops.length] as { error?: unknown; details?: unknown; syntax?: unknown } | null;
    if (extra && typeof extra.error === 'string') {
      return new CommitError(errorFromString(extra.error, { method: 'transact', ...detailsOf(extra) }));
    }
  }
  if (results.length < ops.length) {
    // Only legal when an op failed (reported above); otherwise the reply is short.
    return new ProtocolError(`transact returned ${results.length} results for ${ops.length} operations`, {
      method: 'transact',
    });
  }
  return undefined;
}

function detailsOf(e: { details?: unknown; syntax?: unknown }): { details?: string; syntax?: string } {
  const out: { details?: string; syntax?: string } = {};
  if (typeof e.details === 'string') out.details = e.details;
  if (typeof e.syntax === 'string') out.syntax = e.syntax;
  return out;
}
