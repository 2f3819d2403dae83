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
import { VhostplugError } from './errors';
import { canonicalMac, ifnameProblem, MAX_IFNAME_BYTES } from './net';

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
  | 'enum'
  | 'range';

/** A value that may not become a name or a path. Carries the field, the value and the rule. */
export class ValidationError extends VhostplugError {
  /** What was being validated (`container id`, `ifname`, a config option, a VIF field). */
  readonly field: string;
  /** The rejected value, as received. */
  readonly value: unknown;
  /** The rule it broke. */
  readonly rule: ValidationRule;
  /** The rule in words, without field and value (for callers that word their own error). */
  readonly reason: string;

  constructor(field: string, value: unknown, rule: ValidationRule, reason: string) {
    super('EVALIDATION', `invalid ${field} ${describe(value)}: ${reason}`);
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

function validateDevName(value: unknown, field: string, what: string): string {
  const problem = ifnameProblem(value);
  if (problem)
    throw new ValidationError(
      field,
      value,
      problem.rule,
      problem.rule === 'too-long' ? `${what} ${problem.reason}` : problem.reason,
    );
  return value as string;
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

/**
 * A MAC address to give an interface: well-formed, unicast (I/G bit clear) and not all
 * zeros, as Linux's `is_valid_ether_addr()` wants. Returns the lower-case colon form
 * (the form `attached-mac` and the vhost-user config file's `vhostmac` use).
 */
export function validateMac(value: unknown, field = 'MAC address'): string {
  const raw = requireString(value, field);
  const mac = canonicalMac(raw);
  if (mac === undefined) {
    throw new ValidationError(
      field,
      value,
      'charset',
      'expected six hex octets separated by ":" (e.g. fa:16:3e:01:02:03)',
    );
  }
  if (parseInt(mac.slice(0, 2), 16) & 1) {
    throw new ValidationError(
      field,
      value,
      'multicast',
      'is a multicast/broadcast address; an interface needs a unicast MAC',
    );
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

// A UUID as Kubernetes writes metadata.uid (RFC 4122 text form), or the 32 hex digits
// kubelet uses as the UID of a static pod (a hash of its manifest).
const POD_UID = /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$/;

/** True for a pod UID {@link validatePodUid} accepts. */
export function isPodUid(value: string): boolean {
  return POD_UID.test(value);
}

/**
 * A Kubernetes pod UID: a UUID, or a static pod's 32-hex-digit hash; nothing else. It
 * names the pod's directory (`<mount_point>/<pod-uid>`, which the pod mounts with
 * `subPathExpr: $(POD_UID)`) and is written to OVSDB as `external_ids:vm-uuid`, so it is
 * kept exactly as given (kubelet expands the downward API's value, not a normalised one).
 */
export function validatePodUid(value: unknown, field = 'pod UID'): string {
  const uid = requireString(value, field);
  if (uid.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (!POD_UID.test(uid)) {
    throw new ValidationError(
      field,
      value,
      'charset',
      "expected a UUID (8-4-4-4-12 hex digits) or a static pod's 32 hex digits",
    );
  }
  return uid;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** A Kubernetes namespace name (`K8S_POD_NAMESPACE`): a DNS-1123 label, at most 63 characters. */
export function validatePodNamespace(value: unknown, field = 'pod namespace'): string {
  const ns = requireString(value, field);
  if (ns.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (ns.length > 63 || !DNS1123_LABEL.test(ns))
    throw new ValidationError(
      field,
      value,
      'charset',
      'must be a DNS-1123 label (a-z, 0-9 and "-", at most 63 characters)',
    );
  return ns;
}

/** A Kubernetes pod name (`K8S_POD_NAME`): a DNS-1123 subdomain, at most 253 characters. */
export function validatePodName(value: unknown, field = 'pod name'): string {
  const name = requireString(value, field);
  if (name.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    throw new ValidationError(
      field,
      value,
      'charset',
      'must be a DNS-1123 subdomain (a-z, 0-9, "-" and ".", at most 253 characters)',
    );
  }
  return name;
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
  if (byteLength(out) > MAX_PATH_BYTES)
    throw new ValidationError(field, value, 'too-long', `longer than ${MAX_PATH_BYTES} bytes`);
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
  if (byteLength(name) > MAX_NAME_BYTES)
    throw new ValidationError(field, value, 'too-long', `longer than ${MAX_NAME_BYTES} bytes`);
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

/** Largest uid/gid accepted: 2^32 - 2 ((uid_t)-1 means "unchanged" to chown(2)). */
export const MAX_ID = 0xfffffffe;

/** The owner of what a pod is handed. */
export interface FileOwner {
  uid: number;
  gid: number;
}

function validateId(text: string, field: string, value: unknown, what: string): number {
  if (!/^\d{1,10}$/.test(text))
    throw new ValidationError(
      field,
      value,
      'charset',
      `${what} must be a number (names in the node's /etc/passwd mean nothing in the pod)`,
    );
  const n = Number(text);
  if (n > MAX_ID) throw new ValidationError(field, value, 'range', `${what} must be at most ${MAX_ID}`);
  return n;
}

/** `"UID:GID"`, both numeric (netconf `owner`, `[vhostuser] owner`). */
export function validateOwner(value: unknown, field = 'owner'): FileOwner {
  const s = requireString(value, field);
  const m = /^([^:]*):([^:]*)$/.exec(s);
  if (!m) throw new ValidationError(field, value, 'charset', 'expected "UID:GID", e.g. "1000:1000"');
  return { uid: validateId(m[1]!, field, value, 'the UID'), gid: validateId(m[2]!, field, value, 'the GID') };
}

/**
 * The permission bits of a client-mode socket: an octal string (`"0660"`, `"660"`,
 * `"0o660"`) or a number. The owner needs read and write (connect(2) asks for write);
 * set-id and sticky bits and world-write are refused: the point is to keep others out.
 */
export function validateSocketMode(value: unknown, field = 'socketMode'): number {
  let mode: number;
  if (typeof value === 'number') mode = value;
  else {
    const m = /^(?:0o?)?([0-7]{3,4})$/.exec(requireString(value, field));
    if (!m) throw new ValidationError(field, value, 'charset', 'expected octal permission bits, e.g. "0660"');
    mode = parseInt(m[1]!, 8);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    throw new ValidationError(field, value, 'range', 'expected permission bits (0 to 07777)');
  if (mode & 0o7000)
    throw new ValidationError(field, value, 'range', 'must not set the set-user-ID, set-group-ID or sticky bits');
  if (mode & 0o002)
    throw new ValidationError(field, value, 'range', 'must not be world-writable (anyone could connect)');
  if ((mode & 0o600) !== 0o600)
    throw new ValidationError(
      field,
      value,
      'range',
      'must give the owner read and write (connecting to a socket needs write)',
    );
  return mode;
}

// user:role:type[:level], the level possibly with categories (s0-s0:c0.c1023, s0:c1,c2).
const SE_CONTEXT = /^[A-Za-z0-9_.]+:[A-Za-z0-9_.]+:[A-Za-z0-9_.]+(:[A-Za-z0-9_.,:-]+)?$/;

/** An SELinux security context (`seLabel`, `[vhostuser] se_label`). */
export function validateSeLabel(value: unknown, field = 'seLabel'): string {
  const s = requireString(value, field);
  if (s.length === 0) throw new ValidationError(field, value, 'empty', 'must not be empty');
  if (s.length > 255 || !SE_CONTEXT.test(s)) {
    throw new ValidationError(
      field,
      value,
      'charset',
      'expected an SELinux context user:role:type[:level], e.g. system_u:object_r:container_file_t:s0',
    );
  }
  return s;
}
