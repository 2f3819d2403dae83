/**
 * The standalone vhostplug network configuration (stdin of every CNI call), e.g.
 *
 *   {"cniVersion":"1.1.0","name":"dpdk-net","type":"vhostplug","mode":"client",
 *    "bridge":"br-int","mtu":1500,"ipam":{"type":"host-local",...},
 *    "capabilities":{"CNIDeviceInfoFile":true}}
 *
 * Decoding rules: input over {@link MAX_NETCONF_BYTES} or malformed JSON -> CniError 6;
 * a missing/unsupported cniVersion -> 1; a known key with the wrong type or value -> 7.
 * Unknown keys are kept untouched in `raw` (the spec says they must be passed through,
 * and delegated IPAM plugins read their own keys from the same document).
 */
import { CniError, CniErrorCode } from './errors';
import {
  isValidationError,
  MAX_UNIX_SOCKET_PATH_BYTES,
  validateAbsolutePath,
  validateContainerId,
  validateIfName,
  validateMac,
  validateOwner,
  validateSeLabel,
  validateSocketMode,
  validateUnixSocketPath,
} from '../core/validate';
import { parseResult, type CniResult } from './result';
import { negotiateCniVersion, type CniVersion } from './spec';

/** Largest configuration accepted on stdin (the shim enforces the same cap). */
export const MAX_NETCONF_BYTES = 1024 * 1024;

/** Port flavours: OVS-side vhost-user server or client socket, or a kernel veth. */
export const NETCONF_MODES = ['server', 'client', 'veth'] as const;
/**
 * `client`: the pod application is the vhost-user client, OVS listens (`dpdkvhostuser`);
 * `server`: the pod application listens, OVS connects (`dpdkvhostuserclient`);
 * `veth`: a kernel veth pair, host end on the bridge. (Kuryr/Nova `vhostuser_mode` sense.)
 */
export type NetconfMode = (typeof NETCONF_MODES)[number];

/**
 * Default mode when the config has none: `server`, i.e. OVS is the vhost-user client
 * (`dpdkvhostuserclient`), which survives an ovs-vswitchd restart without re-relocating
 * sockets (see docs/vhostuser.md "Modes").
 */
export const DEFAULT_MODE: NetconfMode = 'server';
/** Default OVS bridge (Kuryr's default integration bridge). */
export const DEFAULT_BRIDGE = 'br-int';
/** Where a pod's vhost-user files live: its own directory (default) or the shared one (Kuryr's). */
export const SOCKET_LAYOUTS = ['per-pod', 'flat'] as const;
export type NetconfSocketLayout = (typeof SOCKET_LAYOUTS)[number];

/** Longest daemon socket path (sockaddr_un.sun_path is 108 bytes with the NUL). */
export const MAX_UNIX_PATH = MAX_UNIX_SOCKET_PATH_BYTES;

/** One entry of `cni.dev/valid-attachments` (GC input). */
export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

/** The runtime-supplied part of the config (capabilities the plugin declared). */
export interface RuntimeConfig {
  /** Multus device-info file to write (capability `CNIDeviceInfoFile`). */
  CNIDeviceInfoFile?: string;
  /** Requested MAC (capability `mac`), normalised. */
  mac?: string;
  /** Requested IPs (capability `ips`), CIDR strings; passed to IPAM untouched. */
  ips?: string[];
  /** Everything else, untouched. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** A decoded network configuration. */
export interface NetConf {
  /** The version negotiated for this call (every reply is in this version). */
  cniVersion: CniVersion;
  name: string;
  type: string;
  mode: NetconfMode;
  bridge: string;
  mtu?: number;
  /**
   * A warm port pool for this network's bridge (client mode): `{"size": N, "lowWater": M}`.
   * The daemon starts one for the bridge on the first ADD that asks, unless it has one.
   */
  pool?: { size: number; lowWater?: number };
  /** The IPAM section (at least `{type}`), passed to the delegate untouched. */
  ipam?: Readonly<Record<string, unknown>> & { type: string };
  /** Daemon socket the shim should use (informational for the daemon). */
  daemonSocket?: string;
  /** kuryr.conf to read Kuryr settings from. */
  kuryrConf?: string;
  /** `socketLayout`: `per-pod` (default; `<mount_point>/<pod-uid>/`, needs K8S_POD_UID) or `flat`. */
  socketLayout: NetconfSocketLayout;
  /** `podMountPath`: where the pod mounts its directory (socket paths in the result); per-pod default /var/run/vhostuser. */
  podMountPath?: string;
  /** `owner` ("UID:GID"), `socketMode` ("0660"), `seLabel`: who may use the pod's files (docs/pod-side.md). */
  access?: { uid?: number; gid?: number; socketMode?: number; seLabel?: string };
  /** A vhost-user ADD on the pod's primary interface (eth0): warn (default) or refuse (7). */
  vhostUserPrimary: 'warn' | 'refuse';
  capabilities: Readonly<Record<string, boolean>>;
  runtimeConfig: RuntimeConfig;
  /** The previous result (CHECK, DEL), decoded. */
  prevResult?: CniResult;
  /** GC input: attachments that must be kept. */
  validAttachments?: ValidAttachment[];
  disableCheck: boolean;
  disableGC: boolean;
  /** The whole document as received (unknown keys included). */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface ParseNetConfOptions {
  /** Expected `type` (the binary name). Default "vhostplug". */
  pluginType?: string;
  /** Size cap in bytes. Default {@link MAX_NETCONF_BYTES}. */
  maxBytes?: number;
}

function invalid(details: string): CniError {
  return new CniError(CniErrorCode.InvalidConfig, 'invalid network configuration', details);
}

/** The value's canonical form from a binding/validate check, or CniError 7 naming `what` and the rule. */
function validConf<T>(what: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (isValidationError(err)) throw invalid(`${what} ${err.reason}`);
    throw err;
  }
}

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
// OVS accepts long bridge names on netdev, but the bridge's internal port is a kernel
// netdev name on most set-ups: keep to IFNAMSIZ and a conservative charset.
const BRIDGE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

function optString(o: Obj, k: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${k} must be a string`);
  return v;
}

function optBool(o: Obj, k: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw invalid(`${k} must be a boolean`);
  return v;
}

function optPath(o: Obj, k: string, socket = false): string | undefined {
  const v = optString(o, k);
  if (v === undefined) return undefined;
  return validConf(`${k} "${v}"`, () => (socket ? validateUnixSocketPath(v, k) : validateAbsolutePath(v, k)));
}

/** Decodes the JSON text (or bytes) and enforces the size cap. Throws CniError 6. */
export function decodeJsonConfig(input: string | Uint8Array, maxBytes = MAX_NETCONF_BYTES): Obj {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      'network configuration too large',
      `${size} bytes on stdin, the limit is ${maxBytes}`,
    );
  }
  const text =
    typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CniError(CniErrorCode.DecodeFailure, 'error decoding network configuration', (e as Error).message);
  }
  if (!isObj(doc))
    throw new CniError(
      CniErrorCode.DecodeFailure,
      'error decoding network configuration',
      'the configuration must be a JSON object',
    );
  return doc;
}

/** Best-effort cniVersion of a raw document, for wording an error in the runtime's version. */
export function peekCniVersion(input: string | Uint8Array | Obj | undefined): string | undefined {
  try {
    const doc = isObj(input) ? input : input === undefined ? undefined : decodeJsonConfig(input, Infinity);
    return doc && typeof doc.cniVersion === 'string' ? doc.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

function parseRuntimeConfig(v: unknown): RuntimeConfig {
  if (v === undefined || v === null) return { raw: {} };
  if (!isObj(v)) throw invalid('runtimeConfig must be an object');
  const rc: RuntimeConfig = { raw: v };
  const devInfo = v.CNIDeviceInfoFile;
  if (devInfo !== undefined && devInfo !== null && devInfo !== '') {
    if (typeof devInfo !== 'string') throw invalid('runtimeConfig.CNIDeviceInfoFile must be a string');
    rc.CNIDeviceInfoFile = validConf(`runtimeConfig.CNIDeviceInfoFile "${devInfo}"`, () =>
      validateAbsolutePath(devInfo),
    );
  }
  if (v.mac !== undefined && v.mac !== null && v.mac !== '') {
    const mac = v.mac;
    rc.mac = validConf(`runtimeConfig.mac ${JSON.stringify(mac)}`, () => validateMac(mac));
  }
  if (v.ips !== undefined && v.ips !== null) {
    if (!Array.isArray(v.ips) || !v.ips.every((x) => typeof x === 'string'))
      throw invalid('runtimeConfig.ips must be an array of strings');
    rc.ips = v.ips as string[];
  }
  return rc;
}

function parseValidAttachments(v: unknown): ValidAttachment[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid('cni.dev/valid-attachments must be an array');
  return v.map((a, i) => {
    if (!isObj(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw invalid(`cni.dev/valid-attachments[${i}] must be {containerID: string, ifname: string}`);
    }
    // Entries are only compared, never used as paths; still refuse junk loudly.
    const containerID = validConf(`cni.dev/valid-attachments[${i}].containerID`, () =>
      validateContainerId(a.containerID),
    );
    const ifname = validConf(`cni.dev/valid-attachments[${i}].ifname`, () => validateIfName(a.ifname));
    return { containerID, ifname };
  });
}

/**
 * Decodes and validates a vhostplug network configuration. Throws CniError 6 (size,
 * JSON), 1 (cniVersion) or 7 (any other bad key).
 */
export function parseNetConf(input: string | Uint8Array | Obj, opts: ParseNetConfOptions = {}): NetConf {
  const doc = isObj(input) ? input : decodeJsonConfig(input, opts.maxBytes ?? MAX_NETCONF_BYTES);
  const cniVersion = negotiateCniVersion(doc);

  const name = optString(doc, 'name');
  if (!name) throw invalid('name is required');
  if (name.length > 253 || !NETWORK_NAME.test(name))
    throw invalid(
      `name "${name}" must start with an alphanumeric character followed by alphanumerics, "_", "." or "-"`,
    );

  const type = optString(doc, 'type');
  if (!type) throw invalid('type is required');
  const expectedType = opts.pluginType ?? 'vhostplug';
  if (type !== expectedType) throw invalid(`type "${type}" is not "${expectedType}"`);

  const modeText = optString(doc, 'mode') ?? DEFAULT_MODE;
  if (!(NETCONF_MODES as readonly string[]).includes(modeText))
    throw invalid(`mode "${modeText}" is not one of ${NETCONF_MODES.join(', ')}`);

  const bridge = optString(doc, 'bridge') ?? DEFAULT_BRIDGE;
  if (!BRIDGE_NAME.test(bridge))
    throw invalid(`bridge "${bridge}" is not a valid bridge name (1-15 of [A-Za-z0-9_.-])`);

  const conf: NetConf = {
    cniVersion,
    name,
    type,
    mode: modeText as NetconfMode,
    bridge,
    capabilities: {},
    runtimeConfig: parseRuntimeConfig(doc.runtimeConfig),
    socketLayout: 'per-pod',
    disableCheck: optBool(doc, 'disableCheck'),
    disableGC: optBool(doc, 'disableGC'),
    vhostUserPrimary: 'warn',
    raw: doc,
  };
  const primary = optString(doc, 'vhostUserPrimary');
  if (primary !== undefined && primary !== 'warn' && primary !== 'refuse')
    throw invalid('vhostUserPrimary must be "warn" or "refuse"');
  if (primary) conf.vhostUserPrimary = primary;

  if (doc.mtu !== undefined && doc.mtu !== null) {
    const mtu = doc.mtu;
    if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535)
      throw invalid('mtu must be an integer in [68, 65535]');
    conf.mtu = mtu;
  }
  if (doc.pool !== undefined && doc.pool !== null) {
    const p = doc.pool as Record<string, unknown>;
    const int = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 512;
    if (typeof p !== 'object' || Array.isArray(p) || !int(p.size))
      throw invalid('pool must be {"size": 0..512, "lowWater": 0..512}');
    if (p.lowWater !== undefined && !int(p.lowWater)) throw invalid('pool.lowWater must be an integer in [0, 512]');
    conf.pool = { size: p.size as number, ...(p.lowWater !== undefined ? { lowWater: p.lowWater as number } : {}) };
  }

  if (doc.ipam !== undefined && doc.ipam !== null) {
    if (!isObj(doc.ipam)) throw invalid('ipam must be an object');
    const ipamType = doc.ipam.type;
    // An empty ipam object means "no IPAM" (common in NADs); a present type must be a plain name.
    if (ipamType !== undefined) {
      if (typeof ipamType !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ipamType)) {
        throw invalid('ipam.type must be a plugin name (no "/")');
      }
      conf.ipam = doc.ipam as NetConf['ipam'] & object;
    } else if (Object.keys(doc.ipam).length > 0) {
      throw invalid('ipam.type is required when ipam is given');
    }
  }

  const layout = optString(doc, 'socketLayout') ?? 'per-pod';
  if (!(SOCKET_LAYOUTS as readonly string[]).includes(layout))
    throw invalid(`socketLayout "${layout}" is not one of ${SOCKET_LAYOUTS.join(', ')}`);
  conf.socketLayout = layout as NetconfSocketLayout;
  const podMountPath = optPath(doc, 'podMountPath');
  if (podMountPath !== undefined) conf.podMountPath = podMountPath;
  const access: NonNullable<NetConf['access']> = {};
  const owner = optString(doc, 'owner');
  if (owner !== undefined)
    Object.assign(
      access,
      validConf(`owner "${owner}"`, () => validateOwner(owner)),
    );
  if (doc.socketMode !== undefined && doc.socketMode !== null) {
    const m = doc.socketMode;
    if (typeof m !== 'string')
      throw invalid('socketMode must be a string of octal digits, e.g. "0660" (JSON has no octal numbers)');
    access.socketMode = validConf(`socketMode "${m}"`, () => validateSocketMode(m));
  }
  const seLabel = optString(doc, 'seLabel');
  if (seLabel !== undefined) access.seLabel = validConf(`seLabel "${seLabel}"`, () => validateSeLabel(seLabel));
  if (Object.keys(access).length > 0) {
    if (conf.mode === 'veth')
      throw invalid('owner, socketMode and seLabel apply to vhost-user modes (client, server), not veth');
    conf.access = access;
  }

  const daemonSocket = optPath(doc, 'daemonSocket', true);
  if (daemonSocket !== undefined) conf.daemonSocket = daemonSocket;
  const kuryrConf = optPath(doc, 'kuryrConf');
  if (kuryrConf !== undefined) conf.kuryrConf = kuryrConf;

  if (doc.capabilities !== undefined && doc.capabilities !== null) {
    if (!isObj(doc.capabilities) || !Object.values(doc.capabilities).every((b) => typeof b === 'boolean')) {
      throw invalid('capabilities must be an object of booleans');
    }
    conf.capabilities = doc.capabilities as Record<string, boolean>;
  }

  if (doc.args !== undefined && doc.args !== null && !isObj(doc.args)) throw invalid('args must be an object');

  if (doc.prevResult !== undefined && doc.prevResult !== null) {
    conf.prevResult = parseResult(doc.prevResult, { code: CniErrorCode.InvalidConfig, what: 'prevResult' });
  }
  const valid = parseValidAttachments(doc['cni.dev/valid-attachments']);
  if (valid) conf.validAttachments = valid;
  return conf;
}

/**
 * The configuration to hand a delegated plugin (IPAM): the document as received with
 * `cniVersion` replaced, `cniVersions` dropped and prevResult re-encoded for that version.
 */
export function delegateConfig(
  raw: Readonly<Record<string, unknown>>,
  cniVersion: string,
  prevResult?: Record<string, unknown>,
): Obj {
  const out: Obj = { ...raw, cniVersion };
  delete out.cniVersions;
  if (prevResult) out.prevResult = prevResult;
  else delete out.prevResult;
  return out;
}
