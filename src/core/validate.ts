/**
 * Validation of everything that becomes a file name, a path or an OVS name.
 *
 * Pure functions, no I/O. Each `validateX(value, field?)` returns the value in its
 * canonical form or throws a {@link ValidationError} naming the field, the value and the
 * rule. Callers validate at the edge (CNI request, VIF primitive, config file) and pass
 * canonical values inward, so nothing below trusts a string it did not check.
 *
 * Rules come from their owners:
 * - container id: the CNI spec (`CNI_CONTAINERID`: alphanumeric first, then alphanumerics,
 *   `_`, `.`, `-`), capped so that `<container-id>-<ifname>` fits NAME_MAX;
 * - interface and OVS port names: Linux `dev_valid_name()` (net/core/dev.c): not empty,
 *   shorter than IFNAMSIZ (16), not `.` or `..`, no `/`, `:` or whitespace (the kernel's
 *   `isspace`, which includes 0xA0). OVS names vhost-user sockets after the port, so a
 *   port name must also be a safe file name; control characters are refused too;
 * - unix socket paths: `sun_path` is 108 bytes including the NUL, so 107 usable.
 */

/** Longest interface or OVS port name in bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME_BYTES = 15;
/** Longest file name component (NAME_MAX). */
export const MAX_NAME_BYTES = 255;
/** Longest container id: NAME_MAX - 1 (`-`) - 15 (ifname), so the config file name always fits. */
export const MAX_CONTAINER_ID_BYTES = MAX_NAME_BYTES - 1 - MAX_IFNAME_BYTES;
/** Usable bytes of `sockaddr_un.sun_path` (108 including the terminating NUL). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;
/** Longest path accepted (PATH_MAX - 1). */
export const MAX_PATH_BYTES = 4095;

/** Which rule a value broke; stable, for callers that branch on it. */
export type ValidationRule =
  | 'type'
  | 'empty'
  | 'too-long'
  | 'charset'
  | 'reserved'
  | 'not-absolute'
  | 'dot-component'
  | 'multicast'
  | 'zero'
  | 'enum';

/** A value that may not become a name or a path. Carries the field, the value and the rule. */
export class ValidationError extends Error {
  /** Always `EVALIDATION`, so the error classifies like a Node-style error. */
  readonly code = 'EVALIDATION';
  /** What was being validated (`container id`, `ifname`, a config option, a VIF field). */
  readonly field: string;
  /** The rejected value, as received. */
  readonly value: unknown;
  /** The rule it broke. */
  readonly rule: ValidationRule;
  /** The rule in words, without field and value (for callers that word their own error). */
  readonly reason: string;

  constructor(field: string, value: unknown, rule: ValidationRule, reason: string) {
    super(`invalid ${field} ${describe(value)}: ${reason}`);
    this.name = 'ValidationError';
    this.field = field;
    this.value = value;
    this.rule = rule;
    this.reason = reason;
  }
}

/** True for a {@link ValidationError} (also across module copies, by shape). */
export function isValidationError(err: unknown): err is ValidationError {
  return err instanceof ValidationError || (err instanceof Error && err.name === 'ValidationError');
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…` : value);
  if (value === undefined) return '(missing)';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ValidationError(field, value, 'type', 'must be a string');
  return value;
}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * A CNI container id (`CNI_CONTAINERID`). It becomes part of a file name in the mount
 * dir, so the CNI charset is enforced exactly and the length capped at
 * {@link MAX_CONTAINER_ID_BYTES}.
 */
export function validateContainerId(value: unknown, field = 'container id'): string {
  const id = requireString(value, field);
  if (id.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (id.length > MAX_CONTAINER_ID_BYTES) {
    throw new ValidationError(field, value, 'too-long', `longer than ${MAX_CONTAINER_ID_BYTES} characters`);
  }
  if (!CONTAINER_ID.test(id)) {
    throw new ValidationError(
      field,
      value,
      'charset',
      'must start with a letter or digit, followed by letters, digits, "_", "." or "-" (CNI spec)',
    );
  }
  return id;
}

// dev_valid_name(): '/', ':' and the kernel's isspace() set (\t \n \v \f \r, space, 0xA0).
// Control characters are refused as well: these names become file names and log fields.
// eslint-disable-next-line no-control-regex
const BAD_DEV_CHAR = /[/:\s\u0000-\u001f\u007f\u00a0]/;

function validateDevName(value: unknown, field: string, what: string): string {
  const name = requireString(value, field);
  if (name.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (byteLength(name) > MAX_IFNAME_BYTES) {
    throw new ValidationError(field, value, 'too-long', `${what} is at most ${MAX_IFNAME_BYTES} bytes (IFNAMSIZ - 1)`);
  }
  if (name === '.' || name === '..') throw new ValidationError(field, value, 'reserved', 'must not be "." or ".."');
  if (BAD_DEV_CHAR.test(name) || [...Buffer.from(name, 'utf8')].some((b) => b === 0xa0)) {
    throw new ValidationError(field, value, 'charset', 'must not contain "/", ":", whitespace or control characters');
  }
  return name;
}

/** A Linux interface name (`CNI_IFNAME`, a KuryrPort ifname): the kernel's `dev_valid_name()` rules. */
export function validateIfName(value: unknown, field = 'ifname'): string {
  return validateDevName(value, field, 'an interface name');
}

/**
 * An OVS port/interface name (a VIF's `vif_name`, e.g. `vhu9c9cc8f5-88`). The same rules
 * as a Linux interface name: veth ports become netdevs, and vhost-user ports name the
 * socket file, so the name must also be a safe single path component.
 */
export function validateVifName(value: unknown, field = 'vif_name'): string {
  return validateDevName(value, field, 'an OVS port name');
}

const MAC_FORM = /^[0-9a-f]{2}([-:][0-9a-f]{2}){5}$/i;

/**
 * Parses a MAC the way os-vif's MACAddressField does (six 2-digit hex groups separated by
 * `:` or `-`, any case) and returns the canonical lower-case colon form, or undefined.
 * Accepts any MAC, multicast included; {@link validateMac} is the stricter check.
 */
export function canonicalMac(value: string): string | undefined {
  if (!MAC_FORM.test(value)) return undefined;
  return value.toLowerCase().replace(/-/g, ':');
}

/**
 * A MAC address to give an interface: well-formed, unicast (I/G bit clear) and not all
 * zeros, as Linux's `is_valid_ether_addr()` wants. Returns the lower-case colon form
 * (the form `attached-mac` and the vhost-user config file's `vhostmac` use).
 */
export function validateMac(value: unknown, field = 'MAC address'): string {
  const raw = requireString(value, field);
  const mac = canonicalMac(raw);
  if (mac === undefined) {
    throw new ValidationError(field, value, 'charset', 'expected six hex octets separated by ":" (e.g. fa:16:3e:01:02:03)');
  }
  if (parseInt(mac.slice(0, 2), 16) & 1) {
    throw new ValidationError(field, value, 'multicast', 'is a multicast/broadcast address; an interface needs a unicast MAC');
  }
  if (mac === '00:00:00:00:00:00') throw new ValidationError(field, value, 'zero', 'must not be all zeros');
  return mac;
}

/** Who listens on a vhost-user socket, in os-vif's terms (`VIFVHostUser.mode`). */
export type VHostUserMode = 'client' | 'server';

/** `client` (OVS is the server: `dpdkvhostuser`) or `server` (the pod listens: `dpdkvhostuserclient`). */
export function validateMode(value: unknown, field = 'mode'): VHostUserMode {
  if (value === 'client' || value === 'server') return value;
  throw new ValidationError(field, value, 'enum', 'must be "client" or "server"');
}

const POD_UID = /^[A-Za-z0-9-]{1,64}$/;

/**
 * A Kubernetes pod UID (a UUID; static pods carry a 32-digit hex hash). It is written to
 * OVSDB as `external_ids:vm-uuid`; letters, digits and `-`, at most 64 characters.
 */
export function validatePodUid(value: unknown, field = 'pod UID'): string {
  const uid = requireString(value, field);
  if (uid.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (!POD_UID.test(uid)) {
    throw new ValidationError(field, value, 'charset', 'expected a UUID (letters, digits and "-", at most 64 characters)');
  }
  return uid;
}

/**
 * An absolute path with no `.` or `..` components and no NUL, returned normalised
 * (repeated and trailing slashes removed). Paths we build from config must not climb out
 * of the directory the operator named.
 */
export function validateAbsolutePath(value: unknown, field = 'path'): string {
  const p = requireString(value, field);
  if (p.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (p.includes('\0')) throw new ValidationError(field, value, 'charset', 'must not contain a NUL byte');
  if (!p.startsWith('/')) throw new ValidationError(field, value, 'not-absolute', 'must be an absolute path');
  const parts = p.split('/').filter((c) => c !== '');
  if (parts.some((c) => c === '.' || c === '..')) {
    throw new ValidationError(field, value, 'dot-component', 'must not contain "." or ".." components');
  }
  const out = `/${parts.join('/')}`;
  if (byteLength(out) > MAX_PATH_BYTES) throw new ValidationError(field, value, 'too-long', `longer than ${MAX_PATH_BYTES} bytes`);
  return out;
}

/**
 * One file name inside a directory we own: not empty, not `.`/`..`, no `/` or NUL,
 * at most NAME_MAX bytes.
 */
export function validateFileName(value: unknown, field = 'file name'): string {
  const name = requireString(value, field);
  if (name.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (name === '.' || name === '..') throw new ValidationError(field, value, 'reserved', 'must not be "." or ".."');
  if (name.includes('/') || name.includes('\0')) {
    throw new ValidationError(field, value, 'charset', 'must be a single path component (no "/" or NUL)');
  }
  if (byteLength(name) > MAX_NAME_BYTES) throw new ValidationError(field, value, 'too-long', `longer than ${MAX_NAME_BYTES} bytes`);
  return name;
}

/**
 * A unix socket path: absolute, normalised (see {@link validateAbsolutePath}) and short
 * enough for `sun_path` ({@link MAX_UNIX_SOCKET_PATH_BYTES} bytes). A longer path cannot be
 * bound or connected to, and DPDK would fail far from the cause.
 */
export function validateUnixSocketPath(value: unknown, field = 'unix socket path'): string {
  const p = validateAbsolutePath(value, field);
  const n = byteLength(p);
  if (n > MAX_UNIX_SOCKET_PATH_BYTES) {
    throw new ValidationError(
      field,
      value,
      'too-long',
      `is ${n} bytes; a unix socket path holds at most ${MAX_UNIX_SOCKET_PATH_BYTES} (sun_path is 108 bytes with the NUL)`,
    );
  }
  return p;
}
