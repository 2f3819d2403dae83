/**
 * The CNI_* environment: parsing and validation (CNI SPEC "Parameters"; skel's rules for
 * which variables each command requires). Every failure is CniError 4.
 *
 * The values end up in file names (`<containerID>-<ifname>`), OVSDB external_ids and
 * netns paths, so they are checked here once, strictly, before anything else sees them:
 * - CNI_CONTAINERID: spec charset `[A-Za-z0-9][A-Za-z0-9_.-]*` (no `/`, cannot start with `.`),
 *   at most {@link MAX_CONTAINER_ID_LENGTH} so `<containerID>-<ifname>` fits NAME_MAX;
 * - CNI_IFNAME: 1-15 bytes, not `.`/`..`, no `/`, `:`, whitespace or control characters;
 * - CNI_NETNS and every CNI_PATH entry: absolute, no `.`/`..` components, no NUL; kept
 *   in canonical form (repeated and trailing slashes dropped).
 * The rules themselves live in binding/validate.ts (one copy for CNI, Kuryr and config);
 * this module only maps a ValidationError to CniError 4.
 */
import {
  isValidationError,
  MAX_CONTAINER_ID_BYTES,
  validateAbsolutePath,
  validateContainerId,
  validateIfName,
  validateMac,
  validatePodName,
  validatePodNamespace,
  validatePodUid,
} from '../core/validate';
import { MAX_IFNAME_BYTES } from '../core/net';
import { CniError, CniErrorCode } from './errors';
import { CNI_COMMANDS, type CniCommand } from './spec';

/** The raw environment as received (only CNI_* keys matter). */
export type CniEnvMap = Readonly<Record<string, string | undefined>>;

/** Parsed CNI_ARGS (`K=V;K2=V2`, split on `;` then on the first `=`). */
export interface CniArgs {
  /** Every pair, in order of appearance. */
  readonly pairs: ReadonlyMap<string, string>;
  /** K8S_POD_NAMESPACE (DNS-1123 label). */
  readonly podNamespace?: string;
  /** K8S_POD_NAME (DNS-1123 subdomain). */
  readonly podName?: string;
  /** K8S_POD_UID. */
  readonly podUid?: string;
  /** K8S_POD_INFRA_CONTAINER_ID (same charset as CNI_CONTAINERID). */
  readonly podInfraContainerId?: string;
  /** MAC requested through CNI_ARGS (`MAC=...`), lower-cased. */
  readonly mac?: string;
}

/** A validated CNI environment. Optional fields are absent when not given (or empty). */
export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args: CniArgs;
  /** CNI_PATH split on `:` (empty entries dropped). */
  readonly path: readonly string[];
  /** The CNI_* variables exactly as received, for delegating to other plugins. */
  readonly raw: Readonly<Record<string, string>>;
}

/** Longest container id accepted: NAME_MAX (255) - 1 (`-`) - 15 (IFNAMSIZ-1). */
export const MAX_CONTAINER_ID_LENGTH = MAX_CONTAINER_ID_BYTES;
/** Longest interface name (IFNAMSIZ - 1). */
export const MAX_IFNAME_LENGTH = MAX_IFNAME_BYTES;

type VarName = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

/** Which variables each command requires (skel's table; CNI_ARGS is never required). */
export const REQUIRED_ENV: Readonly<Record<CniCommand, readonly VarName[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  // DEL: the netns may already be gone (spec: "CNI_NETNS ... may be absent").
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

function envError(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.InvalidEnvironment, msg, details);
}

/**
 * Runs one of binding/validate's checks and hands back its reason instead of throwing.
 * The rules live there only; CNI words its own errors (code 4 here, 7 in netconf).
 */
export function validationProblem(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    if (isValidationError(err)) return err.reason;
    throw err;
  }
}

/** Validates a container id against the spec charset; returns a reason or undefined. */
export function containerIdProblem(id: string): string | undefined {
  return validationProblem(() => validateContainerId(id));
}

/** Validates an interface name (spec + Linux rules); returns a reason or undefined. */
export function ifnameProblem(name: string): string | undefined {
  return validationProblem(() => validateIfName(name));
}

/** Validates an absolute, normalised path; returns a reason or undefined. */
export function absolutePathProblem(p: string): string | undefined {
  return validationProblem(() => validateAbsolutePath(p));
}

/** Normalises a unicast Ethernet MAC (colon form, lower case); undefined if malformed or multicast. */
export function normalizeMac(mac: string): string | undefined {
  try {
    return validateMac(mac);
  } catch (err) {
    if (isValidationError(err)) return undefined;
    throw err;
  }
}

/** The value's canonical form from a binding/validate check, or CniError 4 `msg` with the reason. */
function validEnv<T>(msg: string, what: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (isValidationError(err)) throw envError(msg, `${what} ${err.reason}`);
    throw err;
  }
}

/**
 * Parses CNI_ARGS: pairs separated by `;`, key and value split on the first `=`.
 * Empty segments are ignored; a segment without `=`, an empty key or a repeated key is
 * an error; the well-known K8S_* keys and MAC are validated. Throws CniError 4.
 */
export function parseCniArgs(text: string | undefined): CniArgs {
  const pairs = new Map<string, string>();
  for (const segment of (text ?? '').split(';')) {
    if (segment === '') continue;
    const eq = segment.indexOf('=');
    if (eq <= 0) throw envError('invalid CNI_ARGS', `"${segment}" is not a KEY=VALUE pair`);
    const key = segment.slice(0, eq);
    if (pairs.has(key)) throw envError('invalid CNI_ARGS', `key "${key}" given more than once`);
    pairs.set(key, segment.slice(eq + 1));
  }
  const args: { -readonly [K in keyof CniArgs]: CniArgs[K] } = { pairs };
  const given = (key: string): string | undefined => {
    const v = pairs.get(key);
    return v === undefined || v === '' ? undefined : v;
  };
  const ns = given('K8S_POD_NAMESPACE');
  if (ns !== undefined)
    args.podNamespace = validEnv('invalid CNI_ARGS', `K8S_POD_NAMESPACE "${ns}"`, () => validatePodNamespace(ns));
  const name = given('K8S_POD_NAME');
  if (name !== undefined)
    args.podName = validEnv('invalid CNI_ARGS', `K8S_POD_NAME "${name}"`, () => validatePodName(name));
  const uid = given('K8S_POD_UID');
  if (uid !== undefined) args.podUid = validEnv('invalid CNI_ARGS', `K8S_POD_UID "${uid}"`, () => validatePodUid(uid));
  const infra = given('K8S_POD_INFRA_CONTAINER_ID');
  if (infra !== undefined) {
    args.podInfraContainerId = validEnv('invalid CNI_ARGS', `K8S_POD_INFRA_CONTAINER_ID "${infra}"`, () =>
      validateContainerId(infra),
    );
  }
  const mac = given('MAC');
  if (mac !== undefined) args.mac = validEnv('invalid CNI_ARGS', `MAC "${mac}"`, () => validateMac(mac));
  return args;
}

/** Keeps only the CNI_* variables (the rest of a process environment is none of our business). */
export function pickCniVariables(env: CniEnvMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') && typeof v === 'string') out[k] = v;
  return out;
}

/**
 * Parses and validates the CNI environment for its command. Throws CniError 4 naming every
 * missing variable, or the first malformed one.
 */
export function parseCniEnv(env: CniEnvMap): CniEnv {
  const raw = pickCniVariables(env);
  const cmd = raw.CNI_COMMAND;
  if (cmd === undefined || cmd === '') throw envError('required env variables [CNI_COMMAND] missing');
  if (!(CNI_COMMANDS as readonly string[]).includes(cmd)) throw envError(`unknown CNI_COMMAND: ${cmd}`);
  const command = cmd as CniCommand;
  const get = (k: VarName): string | undefined => (raw[k] === '' ? undefined : raw[k]);

  const missing = REQUIRED_ENV[command].filter((k) => get(k) === undefined);
  if (missing.length > 0) throw envError(`required env variables [${missing.join(',')}] missing`);
  if (command === 'VERSION') return { command, args: { pairs: new Map() }, path: [], raw };

  const out: { -readonly [K in keyof CniEnv]: CniEnv[K] } = {
    command,
    args: parseCniArgs(raw.CNI_ARGS),
    path: [],
    raw,
  };
  const containerId = get('CNI_CONTAINERID');
  if (containerId !== undefined) {
    out.containerId = validEnv('invalid CNI_CONTAINERID', `"${containerId}"`, () => validateContainerId(containerId));
  }
  const ifname = get('CNI_IFNAME');
  if (ifname !== undefined) out.ifname = validEnv('invalid CNI_IFNAME', `"${ifname}"`, () => validateIfName(ifname));
  const netns = get('CNI_NETNS');
  if (netns !== undefined) out.netns = validEnv('invalid CNI_NETNS', `"${netns}"`, () => validateAbsolutePath(netns));
  const dirs = (get('CNI_PATH') ?? '')
    .split(':')
    .filter((d) => d !== '')
    .map((d) => validEnv('invalid CNI_PATH', `entry "${d}"`, () => validateAbsolutePath(d)));
  out.path = dirs;
  return out;
}
