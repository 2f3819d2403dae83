/**
 * The CNI spec versions vhostplug speaks, version negotiation and the VERSION reply.
 *
 * Invariants (tested in test/unit/cni-spec.test.ts):
 * - Every reply is in the cniVersion the runtime asked for (results, errors and the VERSION
 *   reply alike: SPEC "Version": `cniVersion` is "the value of cniVersion specified on
 *   input"; {@link CURRENT_CNI_VERSION} only when the input has none that parses).
 * - CHECK needs a config version >= 0.4.0; GC and STATUS need >= 1.1.0 (as skel enforces).
 * - The list below is the one source of truth; native/cni_shim.c repeats it only for its
 *   daemon-unreachable VERSION fallback, and a test compares the two.
 */
import { CniError, CniErrorCode } from './errors';

/** Spec versions vhostplug accepts, oldest first. 0.1.0/0.2.0 had no rich result and are refused. */
export const SUPPORTED_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export type CniVersion = (typeof SUPPORTED_CNI_VERSIONS)[number];

/** The newest spec version implemented. */
export const CURRENT_CNI_VERSION: CniVersion = '1.1.0';

/** The operations of CNI 1.1. */
export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;

export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The VERSION reply. */
export interface VersionReply {
  cniVersion: string;
  supportedVersions: string[];
}

const SEMVER = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;

/** Parses "MAJOR.MINOR.PATCH"; undefined if malformed. */
export function parseCniVersion(v: string): [number, number, number] | undefined {
  const m = SEMVER.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Compares two version strings numerically (throws TypeError on a malformed one). */
export function compareCniVersions(a: string, b: string): number {
  const pa = parseCniVersion(a);
  const pb = parseCniVersion(b);
  if (!pa || !pb) throw new TypeError(`malformed CNI version: ${pa ? b : a}`);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** True when `v` is one of {@link SUPPORTED_CNI_VERSIONS}. */
export function isSupportedCniVersion(v: unknown): v is CniVersion {
  return typeof v === 'string' && (SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v);
}

/** True when `v` is a supported version >= `min`. */
export function versionAtLeast(v: string, min: string): boolean {
  return parseCniVersion(v) !== undefined && compareCniVersions(v, min) >= 0;
}

/** The VERSION command's reply: the input's cniVersion echoed (else the current one) plus every supported version. */
export function versionReply(inputVersion?: unknown): VersionReply {
  const v = typeof inputVersion === 'string' && parseCniVersion(inputVersion) ? inputVersion : CURRENT_CNI_VERSION;
  return { cniVersion: v, supportedVersions: [...SUPPORTED_CNI_VERSIONS] };
}

function incompatible(configVersion: string, extra?: string): CniError {
  return new CniError(
    CniErrorCode.IncompatibleVersion,
    'incompatible CNI versions',
    `config is "${configVersion}", plugin supports [${SUPPORTED_CNI_VERSIONS.map((v) => `"${v}"`).join(' ')}]` +
      (extra ? `; ${extra}` : ''),
  );
}

/**
 * Picks the version to speak for a config, following CNI 1.1 negotiation:
 * - `cniVersion` is authoritative when present (libcni already chose it from `cniVersions`);
 * - otherwise the highest entry of `cniVersions` that we support;
 * - otherwise the spec's implied "0.1.0", which we refuse.
 * Throws CniError 1 (incompatible) or 7 (wrong types).
 */
export function negotiateCniVersion(conf: { cniVersion?: unknown; cniVersions?: unknown }): CniVersion {
  if (conf.cniVersions !== undefined) {
    if (!Array.isArray(conf.cniVersions) || !conf.cniVersions.every((v) => typeof v === 'string')) {
      throw new CniError(
        CniErrorCode.InvalidConfig,
        'invalid network configuration',
        'cniVersions must be an array of strings',
      );
    }
  }
  if (conf.cniVersion !== undefined) {
    if (typeof conf.cniVersion !== 'string') {
      throw new CniError(CniErrorCode.InvalidConfig, 'invalid network configuration', 'cniVersion must be a string');
    }
    if (!isSupportedCniVersion(conf.cniVersion)) throw incompatible(conf.cniVersion);
    return conf.cniVersion;
  }
  const offered = (conf.cniVersions as string[] | undefined) ?? [];
  const common = offered.filter(isSupportedCniVersion).sort(compareCniVersions);
  if (common.length > 0) return common[common.length - 1]!;
  if (offered.length > 0) throw incompatible(offered.join(','), 'no common version in cniVersions');
  throw incompatible('0.1.0', 'the config has no cniVersion, which implies 0.1.0');
}

/** The oldest config version that allows each command (skel's rules). */
export const MIN_VERSION_FOR_COMMAND: Readonly<Record<CniCommand, string>> = {
  ADD: '0.3.0',
  DEL: '0.3.0',
  CHECK: '0.4.0',
  GC: '1.1.0',
  STATUS: '1.1.0',
  VERSION: '0.3.0',
};

/** Throws CniError 1 when the config version is too old for the command (e.g. GC with 1.0.0). */
export function assertCommandAllowed(command: CniCommand, cniVersion: string): void {
  const min = MIN_VERSION_FOR_COMMAND[command];
  if (!versionAtLeast(cniVersion, min)) {
    throw incompatible(cniVersion, `config version does not allow ${command} (needs ${min} or later)`);
  }
}
