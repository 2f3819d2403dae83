/**
 * kuryr.conf: the oslo.config INI file an existing Kuryr deployment already has, plus our
 * own `[vhostplug]` section.
 *
 * Syntax (oslo.config's iniparser): `[section]` headers; `key = value` or `key: value`
 * (the first `=` or `:` splits); whole-line comments starting with `#` or `;` (no inline
 * comments: `a = b # c` has the value `b # c`, as in oslo); a line starting with
 * whitespace continues the previous value (joined with a newline); a value wrapped in
 * matching quotes loses them; section names are case-insensitive except `DEFAULT`; a
 * repeated option takes its last value.
 *
 * Options we don't use come back as warnings (typos as `unknown`, Kuryr/oslo options we
 * have no use for as `ignored`), never as errors, so an existing kuryr.conf loads. A bad
 * value of an option we use is a {@link ConfigError} naming the section, the option and
 * the line, so a daemon refuses to start rather than half-work.
 */
import { VhostplugError } from '../core/errors';
import { readFileSync } from 'node:fs';
import { parseEndpoint, type Endpoint } from '../ovsdb/transport';
import { pooledBridges } from '../binding/pool';
import {
  isValidationError,
  validateAbsolutePath,
  validateOwner,
  validateSeLabel,
  validateSocketMode,
  validateUnixSocketPath,
  validateVifName,
} from '../core/validate';

/** Typed, defaulted and validated configuration. Option names are kuryr.conf's. */
export interface VhostplugConfig {
  vhostuser: {
    /** Where sockets and per-interface config files are exposed to pods. Kuryr: /var/cni/vhostuser. */
    mount_point: string;
    /** Where OVS creates client-mode sockets (its vhost-sock-dir). Kuryr: /var/run/openvswitch/. */
    ovs_vhu_path: string;
    /** Kuryr mode: every pod's files in `<mount_point>/<pod-uid>/` instead of the shared directory. */
    per_pod_dir: boolean;
    /** Where pods mount their directory (socket paths in results and indexes); null: per-pod /var/run/vhostuser, flat mount_point. */
    pod_mount_path: string | null;
    /** Kuryr mode: default owner "UID:GID" of pods' directories, client-mode sockets and files (a Pod's securityContext wins). */
    owner: string | null;
    /** Kuryr mode: client-mode socket mode (octal); default 0660 with an owner. */
    socket_mode: number | null;
    /** Kuryr mode: SELinux context for pods' files, where SELinux is enabled. */
    se_label: string | null;
  };
  os_vif_ovs: {
    ovsdb_connection: string;
    /** `ovsdb_connection` parsed. */
    ovsdb_endpoint: Endpoint;
    /** Seconds to wait for an OVSDB transaction and ovs-vswitchd's acknowledgement; 0 waits forever. */
    ovs_vsctl_timeout: number;
    /** MTU when the network has none. */
    network_device_mtu: number;
    /** Put new ports on the dead VLAN 4095 (os-vif's isolation). */
    isolate_vif: boolean;
  };
  neutron_defaults: {
    /** Bridge for VIFs whose port names none; null when unset. */
    ovs_bridge: string | null;
    /** Caps the veth MTU when non-zero and smaller than the network's (veth drivers only). */
    network_device_mtu: number;
  };
  cni_daemon: {
    bind_address: string;
    bind_host: string;
    bind_port: number;
    worker_num: number;
    /** Seconds to wait for a pod's VIFs, and separately for them to become active. */
    vif_annotation_timeout: number;
    docker_mode: boolean;
    netns_proc_dir: string | null;
    cni_failures_count: number;
  };
  cni_health_server: {
    port: number;
    /** MiB; -1 disables the check. */
    max_memory_usage: number;
  };
  kubernetes: {
    /** API server URL; null means in-cluster config or KUBECONFIG. */
    api_root: string | null;
    ssl_ca_crt_file: string | null;
    ssl_client_crt_file: string | null;
    ssl_client_key_file: string | null;
    token_file: string | null;
    ssl_verify_server_crt: boolean;
  };
  prometheus_exporter: {
    cni_exporter_port: number;
  };
  vhostplug: {
    /** Permission bits of `<mount_point>/<container-id>-<ifname>`. */
    config_file_mode: number;
    /** Owner of that file: a user name or uid; null leaves the daemon's. */
    config_file_owner: string | null;
    /** Group of that file: a group name or gid; null leaves the daemon's. */
    config_file_group: string | null;
    /** Seconds to wait for OVS to create a client-mode socket. */
    socket_wait_timeout: number;
    /** Allow converting an existing bridge of another datapath type to netdev. */
    allow_datapath_change: boolean;
    /** Allow `[cni_daemon] bind_address` on a non-loopback address. */
    allow_remote_bind: boolean;
    /** Where the daemon keeps its plug records. */
    state_dir: string;
    /** The CNI shim <-> daemon unix socket. */
    daemon_socket: string;
    /** Prometheus metrics port; defaults to `[prometheus_exporter] cni_exporter_port`. */
    metrics_port: number;
    /** The network namespace (a file such as /run/netns/ovs) ovs-vswitchd runs in, where veth host ends go; null: the daemon's own. */
    vswitchd_netns: string | null;
    /** Warm client-mode ports kept ready per pooled bridge (0: no pool). */
    pool_size: number;
    /** Refill the pool when fewer ports than this are ready; -1: half the size. */
    pool_low_water: number;
    /** Bridges with a pool (comma-separated); empty: `[neutron_defaults] ovs_bridge`, else br-int. */
    pool_bridges: string;
    /** Most vhost-user ports on the switch; 0: DPDK's RTE_MAX_VHOST_DEVICE (headers), else 1024. */
    vhostuser_port_limit: number;
    /** Advertise the free vhost-user ports as the Node's `vhostplug.io/vhostuser` extended resource when the daemon has Kubernetes access. */
    advertise_capacity: boolean;
  };
}

export type ConfigSection = keyof VhostplugConfig;

/** A problem that does not stop loading. */
export interface ConfigWarning {
  /** `unknown`: neither vhostplug nor Kuryr knows it (a typo?); `ignored`: a Kuryr/oslo option vhostplug has no use for; `duplicate`: set twice. */
  kind: 'unknown' | 'ignored' | 'duplicate';
  section: string;
  option?: string;
  line: number;
  message: string;
}

export interface LoadedConfig {
  config: VhostplugConfig;
  warnings: ConfigWarning[];
  /** The file read, if any. */
  file?: string;
}

/** A config that must not be used: a syntax error or a bad value. Names the option and the line. */
export class ConfigError extends VhostplugError {
  readonly section: string | undefined;
  readonly option: string | undefined;
  readonly line: number | undefined;
  readonly file: string | undefined;

  constructor(
    message: string,
    where: { section?: string; option?: string; line?: number; file?: string; cause?: unknown } = {},
  ) {
    const loc = [where.file, where.line === undefined ? undefined : `line ${where.line}`].filter(Boolean).join(':');
    const opt =
      where.section && where.option
        ? `[${where.section}] ${where.option}: `
        : where.section
          ? `[${where.section}]: `
          : '';
    super(
      'ECONFIG',
      `${loc ? `${loc}: ` : ''}${opt}${message}`,
      where.cause === undefined ? undefined : { cause: where.cause },
    );
    this.section = where.section;
    this.option = where.option;
    this.line = where.line;
    this.file = where.file;
  }
}

// ---------------------------------------------------------------------------------------
// INI parsing.

/** One assignment as written. */
export interface IniValue {
  value: string;
  line: number;
}

/** Sections (normalised names) -> options -> last assignment; `all` keeps every assignment in order. */
export interface IniDocument {
  sections: Map<string, Map<string, IniValue>>;
  all: Array<{ section: string; option: string; value: string; line: number }>;
}

const normalizeSection = (s: string): string => (s === 'DEFAULT' ? s : s.toLowerCase());

/** Parses oslo.config INI text. Throws {@link ConfigError} on a syntax error. */
export function parseIni(text: string, file?: string): IniDocument {
  const doc: IniDocument = { sections: new Map(), all: [] };
  let section: string | undefined;
  let pending: { option: string; parts: string[]; line: number } | undefined;
  const fail = (line: number, msg: string): never => {
    throw new ConfigError(msg, { line, file });
  };
  const flush = (): void => {
    if (!pending) return;
    if (section === undefined) fail(pending.line, 'an option before any [section] header');
    const value = pending.parts.join('\n');
    doc.all.push({ section: section!, option: pending.option, value, line: pending.line });
    let opts = doc.sections.get(section!);
    if (!opts) doc.sections.set(section!, (opts = new Map()));
    opts.set(pending.option, { value, line: pending.line });
    pending = undefined;
  };
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/); // an editor's BOM is not part of the first line
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.replace(/\s+$/, '');
    if (line === '') {
      flush(); // a blank line ends a multi-line value
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!pending) fail(n, 'unexpected continuation line (an indented line must continue an option)');
      pending!.parts.push(line.replace(/^\s+/, ''));
      continue;
    }
    flush();
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) fail(n, 'invalid section header (must end with "]")');
      if (line.length <= 2) fail(n, 'empty section name');
      section = normalizeSection(line.slice(1, -1));
      if (!doc.sections.has(section)) doc.sections.set(section, new Map());
      continue;
    }
    if (line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    const colon = line.indexOf(':');
    if (eq < 0 && colon < 0) fail(n, `no "=" or ":" in ${JSON.stringify(line)}`);
    const at = colon < 0 || (eq >= 0 && eq < colon) ? eq : colon;
    const option = line.slice(0, at).trim();
    let value = line.slice(at + 1).trim();
    if (value.length >= 2 && value[0] === value[value.length - 1] && (value[0] === '"' || value[0] === "'"))
      value = value.slice(1, -1);
    if (!option) fail(n, 'empty option name');
    pending = { option, parts: [value], line: n };
  }
  flush();
  return doc;
}

// ---------------------------------------------------------------------------------------
// Option table.

type Parsed = string | number | boolean | null | Endpoint;

interface OptionSpec {
  /** The default, already in typed form. */
  default: Parsed;
  /** Text value -> typed value; throws a message string on a bad value. */
  parse(text: string): Parsed;
  /** One line for docs and errors. */
  help: string;
}

/** A bad value; the caller names the option, section, file and line (see parse below). */
function bad(msg: string): never {
  throw new ConfigError(msg);
}

const BOOLEANS: Record<string, boolean> = {
  true: true,
  '1': true,
  on: true,
  yes: true,
  false: false,
  '0': false,
  off: false,
  no: false,
};

function boolOpt(def: boolean, help: string): OptionSpec {
  return {
    default: def,
    help,
    parse: (t) =>
      BOOLEANS[t.toLowerCase()] ?? bad(`${JSON.stringify(t)} is not a boolean (use true/false, yes/no, on/off or 1/0)`),
  };
}

function intOpt(def: number, help: string, min?: number, max?: number): OptionSpec {
  return {
    default: def,
    help,
    parse: (t) => {
      if (!/^[+-]?\d+$/.test(t)) bad(`${JSON.stringify(t)} is not an integer`);
      const n = Number(t);
      if (min !== undefined && n < min) bad(`${n} is below the minimum ${min}`);
      if (max !== undefined && n > max) bad(`${n} is above the maximum ${max}`);
      return n;
    },
  };
}

function secondsOpt(def: number, help: string): OptionSpec {
  return {
    default: def,
    help,
    parse: (t) => (/^\d+(\.\d+)?$/.test(t) ? Number(t) : bad(`${JSON.stringify(t)} is not a number of seconds`)),
  };
}

const portOpt = (def: number, help: string): OptionSpec => intOpt(def, help, 1, 65535);

function checkedPath<T extends Parsed>(fn: (t: string) => T): (t: string) => T {
  return (t) => {
    try {
      return fn(t);
    } catch (err) {
      if (isValidationError(err)) bad(err.message.replace(/^invalid [^"]*/, ''));
      throw err;
    }
  };
}

function pathOpt(def: string | null, help: string, nullable = def === null): OptionSpec {
  const check = checkedPath((t) => validateAbsolutePath(t, 'path'));
  return { default: def, help, parse: (t) => (t === '' && nullable ? null : check(t)) };
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || LOOPBACK_V4.test(host);
}

/** `HOST:PORT` or `[V6]:PORT` (Kuryr splits on one `:`, so it takes no IPv6). */
export function parseHostPort(t: string): { host: string; port: number } {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(t) ?? /^([^:[\]\s]+):(\d+)$/.exec(t);
  if (!m) bad(`${JSON.stringify(t)} is not HOST:PORT`);
  const port = Number(m![2]);
  if (port < 1 || port > 65535) bad(`port ${port} is out of range (1-65535)`);
  return { host: m![1]!, port };
}

const USER_OR_ID = /^([0-9]+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/;

function ownerOpt(help: string): OptionSpec {
  return {
    default: null,
    help,
    parse: (t) =>
      t === ''
        ? null
        : USER_OR_ID.test(t) && t.length <= 32
          ? t
          : bad(`${JSON.stringify(t)} is not a user/group name or numeric id`),
  };
}

/** Our defaults share a filesystem (/run): the client-mode rename(2) works out of the box. */
export const DEFAULT_MOUNT_POINT = '/var/run/vhostuser';
export const DEFAULT_OVS_VHU_PATH = '/var/run/openvswitch';
export const DEFAULT_OVSDB_CONNECTION = 'unix:/var/run/openvswitch/db.sock';

/** Longest vhost-user port name (`vhu` + 11 characters). */
const VIF_NAME_LEN = 14;

function socketDirOpt(def: string, help: string): OptionSpec {
  const check = checkedPath((t) => validateAbsolutePath(t, 'path'));
  return {
    default: def,
    help,
    parse: (t) => {
      if (t === '') bad('must be set (an absolute directory)');
      const p = check(t);
      // <dir>/<14-character port name> must fit sun_path (107 bytes).
      const room = 107 - 1 - VIF_NAME_LEN;
      if (Buffer.byteLength(p) > room)
        bad(
          `${JSON.stringify(p)} is ${Buffer.byteLength(p)} bytes; socket paths <dir>/vhuXXXXXXXX-XX must fit 107 bytes, so at most ${room}`,
        );
      return p;
    },
  };
}

/** Every option vhostplug reads, per section. The docs table (docs/configuration.md) lists the same. */
export const OPTIONS: { readonly [S in ConfigSection]: { readonly [O in keyof VhostplugConfig[S]]?: OptionSpec } } = {
  vhostuser: {
    mount_point: socketDirOpt(
      DEFAULT_MOUNT_POINT,
      'Directory, mounted into DPDK pods, holding the vhost-user sockets and per-interface config files.',
    ),
    ovs_vhu_path: socketDirOpt(
      DEFAULT_OVS_VHU_PATH,
      'Directory where ovs-vswitchd creates client-mode (dpdkvhostuser) sockets; must be on the same filesystem as mount_point.',
    ),
    per_pod_dir: boolOpt(
      false,
      "Kuryr mode: put every pod's socket, config files and interfaces.json in <mount_point>/<pod-uid>/ (pods mount it with subPathExpr: $(POD_UID)); false keeps Kuryr's shared directory.",
    ),
    pod_mount_path: pathOpt(
      null,
      'Where pods mount their vhostplug directory: the socket path in CNI results, device-info and interfaces.json (default: /var/run/vhostuser with per_pod_dir, else mount_point).',
    ),
    owner: {
      default: null,
      help: 'Kuryr mode: "UID:GID" owning pods\' directories, client-mode sockets and files; a Pod\'s securityContext (runAsUser, fsGroup/runAsGroup) takes precedence.',
      parse: (t) => (t === '' ? null : checkedPath((v) => (validateOwner(v, 'owner'), v))(t)),
    },
    socket_mode: {
      default: null,
      help: 'Kuryr mode: octal mode of client-mode sockets (default 0660 when an owner applies); directories get the same bits plus x, files without x and group write.',
      parse: (t) => (t === '' ? null : checkedPath((v) => validateSocketMode(v, 'socket_mode'))(t)),
    },
    se_label: {
      default: null,
      help: "Kuryr mode: SELinux context set on pods' directories, sockets and files where SELinux is enabled (a no-op elsewhere).",
      parse: (t) => (t === '' ? null : checkedPath((v) => validateSeLabel(v, 'se_label'))(t)),
    },
  },
  os_vif_ovs: {
    ovsdb_connection: {
      default: DEFAULT_OVSDB_CONNECTION,
      help: 'OVSDB endpoint: unix:PATH or tcp:HOST:PORT.',
      parse: (t) => {
        try {
          const ep = parseEndpoint(t);
          if (ep.kind === 'unix') validateUnixSocketPath(ep.path, 'unix socket path');
          return t;
        } catch (err) {
          return bad(
            `${JSON.stringify(t)} is not an OVSDB endpoint (unix:PATH or tcp:HOST:PORT): ${(err as Error).message}`,
          );
        }
      },
    },
    ovs_vsctl_timeout: intOpt(
      120,
      'Seconds to wait for an OVSDB transaction and the ovs-vswitchd acknowledgement; 0 waits forever.',
      0,
    ),
    network_device_mtu: intOpt(1500, 'MTU for ports whose network has none.', 68, 65535),
    isolate_vif: boolOpt(false, 'Put new ports on the dead VLAN 4095 until an agent configures them.'),
  },
  neutron_defaults: {
    ovs_bridge: {
      default: null,
      help: 'Bridge for VIFs whose Neutron port names none.',
      parse: (t) => {
        if (t === '') return null;
        try {
          return validateVifName(t, 'bridge name');
        } catch (err) {
          return bad((err as Error).message);
        }
      },
    },
    network_device_mtu: intOpt(
      0,
      'When non-zero and smaller than the network MTU, the veth MTU (veth drivers only).',
      0,
      65535,
    ),
  },
  cni_daemon: {
    bind_address: {
      default: '127.0.0.1:5036',
      help: 'HOST:PORT of the kuryr-daemon HTTP API.',
      parse: (t) => {
        parseHostPort(t);
        return t;
      },
    },
    worker_num: intOpt(30, 'Most CNI requests handled at once.', 1),
    vif_annotation_timeout: intOpt(
      60,
      'Seconds an ADD waits for the pod VIFs, and again for them to become active.',
      1,
    ),
    docker_mode: boolOpt(
      false,
      'The daemon runs in a container: rewrite the /proc prefix of netns paths to netns_proc_dir.',
    ),
    netns_proc_dir: pathOpt(null, 'The host /proc as mounted in the daemon container (docker_mode).'),
    cni_failures_count: intOpt(3, 'Consecutive failed requests after which the daemon reports itself unhealthy.', 1),
  },
  cni_health_server: {
    port: portOpt(8090, 'Port of the /ready and /alive endpoints.'),
    max_memory_usage: intOpt(-1, 'MiB of memory above which /alive fails; -1 disables the check.', -1),
  },
  kubernetes: {
    api_root: {
      default: null,
      help: 'Kubernetes API server URL; unset means in-cluster config or KUBECONFIG.',
      parse: (t) =>
        t === ''
          ? null
          : /^https?:\/\/[^\s/]+/.test(t)
            ? t.replace(/\/+$/, '')
            : bad(`${JSON.stringify(t)} is not an http(s) URL`),
    },
    ssl_ca_crt_file: pathOpt(null, 'CA bundle for the API server certificate.'),
    ssl_client_crt_file: pathOpt(null, 'Client certificate for the API server.'),
    ssl_client_key_file: pathOpt(null, 'Client key for the API server.'),
    token_file: pathOpt(null, 'Bearer token file for the API server.'),
    ssl_verify_server_crt: boolOpt(false, 'Verify the API server certificate against ssl_ca_crt_file.'),
  },
  prometheus_exporter: {
    cni_exporter_port: portOpt(9655, "Kuryr's CNI metrics port; the default of [vhostplug] metrics_port."),
  },
  vhostplug: {
    config_file_mode: {
      default: 0o644,
      help: 'Octal permission bits of the per-interface config file.',
      parse: (t) => {
        const m = /^(?:0o?)?([0-7]{1,4})$/.exec(t);
        if (!m) bad(`${JSON.stringify(t)} is not an octal mode (e.g. 0644)`);
        const mode = parseInt(m![1]!, 8);
        if (mode > 0o777) bad(`${t} sets setuid/setgid/sticky bits, which a config file must not have`);
        if (mode & 0o002) bad(`${t} makes the file world-writable`);
        return mode;
      },
    },
    config_file_owner: ownerOpt("Owner (user name or uid) of the per-interface config file; unset keeps the daemon's."),
    config_file_group: ownerOpt(
      "Group (group name or gid) of the per-interface config file; unset keeps the daemon's.",
    ),
    socket_wait_timeout: secondsOpt(10, 'Seconds to wait for ovs-vswitchd to create a client-mode socket.'),
    allow_datapath_change: boolOpt(false, 'Allow switching an existing bridge of another datapath type to netdev.'),
    allow_remote_bind: boolOpt(false, 'Allow [cni_daemon] bind_address on a non-loopback address.'),
    state_dir: pathOpt('/var/lib/vhostplug', "Directory of the daemon's plug records."),
    daemon_socket: {
      default: '/run/vhostplug/daemon.sock',
      help: 'Unix socket between the CNI shim and the daemon.',
      parse: checkedPath((t) => validateUnixSocketPath(t, 'unix socket path')),
    },
    metrics_port: portOpt(9655, 'Prometheus metrics port (default: [prometheus_exporter] cni_exporter_port).'),
    vswitchd_netns: pathOpt(
      null,
      "Network namespace file of ovs-vswitchd (e.g. /run/netns/ovs), where veth host ends are created; unset: the daemon's own.",
    ),
    pool_size: intOpt(
      0,
      'Warm client-mode (dpdkvhostuser) ports kept ready per pooled bridge; a client-mode plug takes one (0: no pool).',
      0,
      512,
    ),
    pool_low_water: intOpt(
      -1,
      'Refill the pool when fewer ports than this are ready (-1: half of pool_size).',
      -1,
      512,
    ),
    pool_bridges: {
      default: '',
      help: 'Bridges that get a pool, comma-separated (default: [neutron_defaults] ovs_bridge, else br-int).',
      parse: (t) => {
        // Each name as [neutron_defaults] ovs_bridge is checked, split as the pools read the list.
        for (const b of pooledBridges(t, 'br-int')) {
          try {
            validateVifName(b, 'bridge name');
          } catch (err) {
            bad((err as Error).message);
          }
        }
        return t;
      },
    },
    vhostuser_port_limit: intOpt(
      0,
      'Most vhost-user ports on this ovs-vswitchd (a plug past it is refused); 0: RTE_MAX_VHOST_DEVICE from the DPDK headers when installed, else 1024.',
      0,
      65535,
    ),
    advertise_capacity: boolOpt(
      true,
      "With Kubernetes access, keep the Node's extended resource vhostplug.io/vhostuser (status.capacity and allocatable) at the free vhost-user ports.",
    ),
  },
};

/**
 * Sections and options Kuryr (or oslo/os-vif) defines that vhostplug has no use for: their
 * presence is reported as `ignored`, not as a possible typo. In the sections where we read
 * only a few of Kuryr's many options (PARTIAL_SECTIONS) every other option is `ignored`;
 * in the others an option neither of us knows is `unknown`.
 */
const PARTIAL_SECTIONS = new Set(['DEFAULT', 'kubernetes', 'neutron_defaults']);

const KURYR_SECTIONS = new Set([
  'DEFAULT',
  'binding',
  'cache_defaults',
  'cni_health_server',
  'health_server',
  'ingress',
  'keystone_authtoken',
  'kuryr-kubernetes',
  'kubernetes',
  'namespace_handler_caching',
  'namespace_sg',
  'namespace_subnet',
  'nested_dpdk',
  'neutron',
  'neutron_defaults',
  'np_handler_caching',
  'octavia_defaults',
  'os_vif_linux_bridge',
  'os_vif_noop',
  'os_vif_ovs',
  'pod_ip_allocation',
  'pod_vif_nested',
  'pool_manager',
  'prometheus_exporter',
  'sriov',
  'subnet_caching',
  'vif_plug_linux_bridge_privileged',
  'vif_plug_ovs_privileged',
  'vif_pool',
  'cni_daemon',
  'vhostuser',
]);

const KURYR_IGNORED_OPTIONS: Partial<Record<string, readonly string[]>> = {
  os_vif_ovs: ['ovsdb_interface', 'per_port_bridge', 'default_qos_type'],
  cni_daemon: ['daemon_enabled', 'pyroute2_timeout'],
  cni_health_server: ['cg_path'],
};

/** The built-in defaults. */
export function defaultConfig(): VhostplugConfig {
  return parseConfig('').config;
}

/**
 * Parses kuryr.conf text into a typed config. Unknown and unused options become
 * warnings; a bad value, a syntax error or an inconsistent combination throws
 * {@link ConfigError}.
 */
export function parseConfig(text: string, file?: string): LoadedConfig {
  const doc = parseIni(text, file);
  const warnings: ConfigWarning[] = [];
  const config = {} as Record<string, Record<string, Parsed>>;
  const lineOf = (section: string, option: string): number | undefined => doc.sections.get(section)?.get(option)?.line;

  // Repeats: the last one wins, as in oslo; say so.
  const seen = new Map<string, number>();
  for (const a of doc.all) {
    const key = `${a.section}\0${a.option}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      warnings.push({
        kind: 'duplicate',
        section: a.section,
        option: a.option,
        line: a.line,
        message: `[${a.section}] ${a.option} is set again (first on line ${prev}); the last value is used`,
      });
    } else seen.set(key, a.line);
  }

  for (const [section, specs] of Object.entries(OPTIONS) as Array<[string, Record<string, OptionSpec>]>) {
    const out: Record<string, Parsed> = {};
    const given = doc.sections.get(section);
    for (const [option, spec] of Object.entries(specs)) {
      const v = given?.get(option);
      if (!v) {
        out[option] = spec.default;
        continue;
      }
      try {
        out[option] = spec.parse(v.value);
      } catch (err) {
        // A value parser's ConfigError names no option yet: say where the value was.
        if (err instanceof ConfigError && err.option === undefined)
          throw new ConfigError(err.message, { section, option, line: v.line, file, cause: err.cause });
        throw err;
      }
    }
    config[section] = out;
  }

  for (const [section, opts] of doc.sections) {
    const known = (OPTIONS as Record<string, Record<string, OptionSpec>>)[section];
    for (const [option, v] of opts) {
      if (known && option in known) continue;
      const ignored =
        KURYR_IGNORED_OPTIONS[section]?.includes(option) ||
        (KURYR_SECTIONS.has(section) && !known) ||
        PARTIAL_SECTIONS.has(section);
      warnings.push(
        ignored
          ? {
              kind: 'ignored',
              section,
              option,
              line: v.line,
              message: `[${section}] ${option} is not used by vhostplug and is ignored`,
            }
          : {
              kind: 'unknown',
              section,
              option,
              line: v.line,
              message: `[${section}] ${option} is not a known option (a typo?); ignored`,
            },
      );
    }
  }

  const cfg = config as unknown as VhostplugConfig;
  cfg.os_vif_ovs.ovsdb_endpoint = parseEndpoint(cfg.os_vif_ovs.ovsdb_connection);
  const bind = parseHostPort(cfg.cni_daemon.bind_address);
  cfg.cni_daemon.bind_host = bind.host;
  cfg.cni_daemon.bind_port = bind.port;
  if (lineOf('vhostplug', 'metrics_port') === undefined)
    cfg.vhostplug.metrics_port = cfg.prometheus_exporter.cni_exporter_port;
  checkCombination(cfg, lineOf, file);
  return { config: cfg, warnings, ...(file === undefined ? {} : { file }) };
}

/** Rules across options. */
function checkCombination(
  cfg: VhostplugConfig,
  lineOf: (s: string, o: string) => number | undefined,
  file?: string,
): void {
  const err = (section: string, option: string, msg: string): ConfigError =>
    new ConfigError(msg, { section, option, line: lineOf(section, option), file });
  // <mount_point>/<36-character pod UID>/<14-character port name> must fit sun_path (107 bytes).
  const perPodRoom = 107 - 1 - 36 - 1 - VIF_NAME_LEN;
  if (cfg.vhostuser.per_pod_dir && Buffer.byteLength(cfg.vhostuser.mount_point) > perPodRoom) {
    throw err(
      'vhostuser',
      'mount_point',
      `is ${Buffer.byteLength(cfg.vhostuser.mount_point)} bytes; with per_pod_dir, socket paths <dir>/<pod-uid>/vhuXXXXXXXX-XX must fit 107 bytes, so at most ${perPodRoom}`,
    );
  }
  if (!cfg.vhostplug.allow_remote_bind && !isLoopback(cfg.cni_daemon.bind_host)) {
    throw err(
      'cni_daemon',
      'bind_address',
      `${cfg.cni_daemon.bind_address} is not a loopback address; the API is unauthenticated (set [vhostplug] allow_remote_bind = true to allow it)`,
    );
  }
  const ports: Array<[string, string, number]> = [
    ['cni_daemon', 'bind_address', cfg.cni_daemon.bind_port],
    ['cni_health_server', 'port', cfg.cni_health_server.port],
    ['vhostplug', 'metrics_port', cfg.vhostplug.metrics_port],
  ];
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      if (ports[i]![2] === ports[j]![2]) {
        const [s, o] = lineOf(ports[j]![0], ports[j]![1]) !== undefined ? ports[j]! : ports[i]!;
        throw err(s, o, `port ${ports[j]![2]} is also used by [${ports[i]![0]}] ${ports[i]![1]}`);
      }
    }
  }
  if (cfg.cni_daemon.docker_mode && cfg.cni_daemon.netns_proc_dir === null) {
    throw err(
      'cni_daemon',
      'netns_proc_dir',
      'docker_mode is on, so netns_proc_dir must name the host /proc as mounted in the container',
    );
  }
}

/** Reads and parses a kuryr.conf file (the only I/O in this module). */
export function loadConfig(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the config file: ${(err as Error).message}`, { file: path, cause: err });
  }
  return parseConfig(text, path);
}

/** One line per warning, for logs. */
export function formatConfigWarning(w: ConfigWarning, file?: string): string {
  return `${file ? `${file}:` : ''}${w.line}: ${w.message}`;
}
