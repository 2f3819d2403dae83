/**
 * Property-based tests (fast-check) of every parser that takes outside input: the CNI
 * network configuration, the CNI environment and CNI_ARGS, kuryr.conf, and the o.vo VIF
 * codec. Two properties for each, over random and mutated inputs:
 * - it never throws an untyped error: only its own typed error (CniError with a spec code,
 *   ConfigError, VIFFormatError) — never a TypeError, RangeError or a bare string;
 * - it never accepts a path outside its root: names that end up in file names are one
 *   path component, paths are absolute without `.`/`..`, device-info files stay in their
 *   directories, socket and config paths stay in the mount point.
 * Runs FC_NUM_RUNS cases per property (default 300; scripts/reliability.sh runs more).
 */
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CniError, checkDeviceInfoPath, parseCniArgs, parseCniEnv, parseNetConf } from '../../src/cni';
import {
  ConfigError,
  VIFFormatError,
  decodeVIF,
  encodeVIF,
  makeVHostUserVif,
  parseConfig,
  vhostUserConfigFileName,
  vhostUserPortName,
  vhostUserSocketPath,
} from '../../src';
import { stateFileName } from '../../src/daemon/state';

const NUM_RUNS = Number(process.env.FC_NUM_RUNS ?? 300);
const opts = { numRuns: NUM_RUNS };

/** Strings rich in what breaks parsers and paths. */
const nasty = fc.oneof(
  fc.string(),
  fc.string({
    unit: fc.constantFrom(
      '/',
      '.',
      '..',
      '\0',
      ':',
      ';',
      '=',
      '-',
      '_',
      'a',
      'Z',
      '0',
      ' ',
      '\n',
      '\t',
      '\\',
      '%',
      '"',
      '\u00e9',
      '\ud83d\ude00',
    ),
  }),
  fc.constantFrom(
    '',
    '.',
    '..',
    '/',
    '//',
    '/..',
    '../x',
    'a/../../b',
    '/var/run/../../etc/passwd',
    'x'.repeat(300),
    '\0',
    'eth0',
    'net1',
    '-',
    '..x',
    '/tmp/./x',
  ),
);

/** A pathname is one component: no separator, not . or .., no NUL. */
function isOneComponent(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !s.includes('/') && !s.includes('\0');
}

/** Absolute, normalised (no ./.. components), no NUL. */
function isCleanAbsolute(p: string): boolean {
  return p.startsWith('/') && !p.includes('\0') && p.split('/').every((c) => c !== '.' && c !== '..');
}

function insideRoot(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Runs `fn`; an error must be one of `types` (and a CniError must carry `codes`). */
function typedOnly<T>(fn: () => T, types: (new (...a: never[]) => Error)[], codes?: number[]): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof Error) || !types.some((t) => e instanceof t)) {
      throw new Error(`untyped error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    if (codes && e instanceof CniError && !codes.includes(e.cniCode))
      throw new Error(`CniError with code ${e.cniCode}: ${e.message}`);
    return undefined;
  }
}

// ---------------------------------------------------------------- CNI network configuration

const baseConf = {
  cniVersion: '1.1.0',
  name: 'dpdk-net',
  type: 'vhostplug',
  mode: 'client',
  bridge: 'br-int',
  ipam: { type: 'host-local' },
};
const confKeys = [
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'mode',
  'bridge',
  'mtu',
  'ipam',
  'daemonSocket',
  'kuryrConf',
  'capabilities',
  'runtimeConfig',
  'prevResult',
  'cni.dev/valid-attachments',
  'disableCheck',
  'disableGC',
  'args',
];

/** A valid netconf with one key replaced by anything (nested values too). */
const mutatedConf = fc
  .record({
    key: fc.constantFrom(...confKeys),
    value: fc.oneof(
      fc.jsonValue(),
      nasty,
      fc.record({ type: nasty }),
      fc.record({ CNIDeviceInfoFile: nasty, mac: nasty, ips: fc.array(nasty) }),
    ),
  })
  .map(({ key, value }) => ({ ...baseConf, [key]: value }));

describe('netconf parser (src/cni/netconf.ts)', () => {
  it('any bytes, any JSON, any mutation of a valid config: a config or a CniError 1/6/7', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.uint8Array({ maxLength: 512 }),
          fc.json(),
          mutatedConf.map((c) => JSON.stringify(c)),
          mutatedConf,
        ),
        (input) => {
          typedOnly(() => parseNetConf(input as never), [CniError], [1, 6, 7]);
        },
      ),
      opts,
    );
  });

  it('what it accepts names no path outside its root: IPAM plugin a bare name, daemonSocket/kuryrConf clean absolute paths', () => {
    fc.assert(
      fc.property(mutatedConf, (input) => {
        const c = typedOnly(() => parseNetConf(input), [CniError], [1, 6, 7]);
        if (!c) return;
        if (c.ipam) expect(isOneComponent(c.ipam.type), c.ipam.type).toBe(true);
        if (c.daemonSocket !== undefined) expect(isCleanAbsolute(c.daemonSocket), c.daemonSocket).toBe(true);
        if (c.kuryrConf !== undefined) expect(isCleanAbsolute(c.kuryrConf), c.kuryrConf).toBe(true);
        expect(c.bridge).toMatch(/^[A-Za-z0-9_.-]{1,15}$/);
      }),
      opts,
    );
  });

  it('device-info files: accepted only strictly inside the allowed directories', () => {
    const root = '/run/k8s.cni.cncf.io/devinfo';
    const candidate = fc.oneof(
      nasty,
      nasty.map((s) => `${root}/${s}`),
      nasty.map((s) => `${root}${s}`),
      fc.constantFrom(`${root}/../x`, `${root}/./x`, `${root}/`, root, `${root}x/y`),
    );
    fc.assert(
      fc.property(candidate, (p) => {
        const ok = typedOnly(() => checkDeviceInfoPath(p, { allowedDirs: [root] }), [CniError], [7]);
        if (ok !== undefined) {
          expect(isCleanAbsolute(ok), ok).toBe(true);
          expect(insideRoot(root, ok), ok).toBe(true);
        }
      }),
      opts,
    );
  });
});

// ---------------------------------------------------------------- CNI environment, CNI_ARGS

const envVar = fc.oneof(nasty, fc.constantFrom('ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'));
const cniEnv = fc.record(
  {
    CNI_COMMAND: fc.oneof(fc.constantFrom('ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'), nasty),
    CNI_CONTAINERID: fc.oneof(nasty, fc.stringMatching(/^[a-f0-9]{1,64}$/)),
    CNI_NETNS: fc.oneof(
      nasty,
      nasty.map((s) => `/var/run/netns/${s}`),
    ),
    CNI_IFNAME: fc.oneof(nasty, fc.constantFrom('eth0', 'net1')),
    CNI_PATH: fc.oneof(
      nasty,
      fc.array(nasty).map((a) => a.join(':')),
    ),
    CNI_ARGS: fc.oneof(
      nasty,
      fc
        .array(
          fc.tuple(
            fc.constantFrom(
              'K8S_POD_NAMESPACE',
              'K8S_POD_NAME',
              'K8S_POD_UID',
              'K8S_POD_INFRA_CONTAINER_ID',
              'MAC',
              'IgnoreUnknown',
              'X',
            ),
            nasty,
          ),
        )
        .map((kv) => kv.map(([k, v]) => `${k}=${v}`).join(';')),
    ),
    OTHER: envVar,
  },
  { requiredKeys: [] },
);

describe('CNI environment parser (src/cni/env.ts)', () => {
  it('any environment: a CniEnv or a CniError 4', () => {
    fc.assert(
      fc.property(cniEnv, (env) => {
        typedOnly(() => parseCniEnv(env), [CniError], [4]);
      }),
      opts,
    );
  });

  it('what it accepts cannot leave its root: container id and ifname make one file name, netns and CNI_PATH are clean absolute paths', () => {
    const root = '/var/run/vhostuser';
    fc.assert(
      fc.property(cniEnv, (env) => {
        const e = typedOnly(() => parseCniEnv(env), [CniError], [4]);
        if (!e) return;
        if (e.containerId !== undefined && e.ifname !== undefined) {
          for (const name of [
            vhostUserConfigFileName(e.containerId, e.ifname),
            stateFileName(e.containerId, e.ifname),
            `${e.containerId}-${e.ifname}`,
          ]) {
            expect(isOneComponent(name), name).toBe(true);
            expect(path.dirname(path.join(root, name))).toBe(root);
          }
        }
        if (e.netns !== undefined) expect(isCleanAbsolute(e.netns), e.netns).toBe(true);
        for (const d of e.path) expect(isCleanAbsolute(d), d).toBe(true);
        if (e.args.podUid !== undefined) expect(isOneComponent(e.args.podUid), e.args.podUid).toBe(true);
      }),
      opts,
    );
  });

  it('CNI_ARGS alone: parsed or CniError 4', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nasty,
          fc.array(fc.tuple(nasty, nasty)).map((kv) => kv.map(([k, v]) => `${k}=${v}`).join(';')),
        ),
        (text) => {
          typedOnly(() => parseCniArgs(text), [CniError], [4]);
        },
      ),
      opts,
    );
  });
});

// ---------------------------------------------------------------- kuryr.conf

const sections = [
  'DEFAULT',
  'vhostuser',
  'os_vif_ovs',
  'vhostplug',
  'cni_daemon',
  'kubernetes',
  'neutron_defaults',
  'cni_health_server',
  'nope',
];
const options = [
  'mount_point',
  'ovs_vhu_path',
  'ovsdb_connection',
  'ovs_vsctl_timeout',
  'state_dir',
  'daemon_socket',
  'bind_address',
  'worker_num',
  'api_root',
  'token_file',
  'config_file_mode',
  'config_file_owner',
  'socket_wait_timeout',
  'allow_remote_bind',
  'network_device_mtu',
  'ovs_bridge',
  'x',
];
const iniLine = fc.oneof(
  fc.constantFrom(...sections).map((s) => `[${s}]`),
  fc
    .tuple(
      fc.constantFrom(...options),
      fc.oneof(
        nasty,
        nasty.map((s) => `/${s}`),
      ),
    )
    .map(([k, v]) => `${k} = ${v}`),
  nasty,
  fc.constantFrom('[', ']', '= x', '  continued', '#c', ';c'),
);

describe('kuryr.conf parser (src/binding/config.ts)', () => {
  it('any text: a config (with warnings) or a ConfigError, and every path it accepts is clean and absolute', () => {
    fc.assert(
      fc.property(
        fc.array(iniLine, { maxLength: 30 }).map((l) => l.join('\n')),
        (text) => {
          const loaded = typedOnly(() => parseConfig(text), [ConfigError]);
          if (!loaded) return;
          const c = loaded.config;
          for (const p of [
            c.vhostuser.mount_point,
            c.vhostuser.ovs_vhu_path,
            c.vhostplug.state_dir,
            c.vhostplug.daemon_socket,
          ])
            expect(isCleanAbsolute(p), p).toBe(true);
          for (const p of [c.kubernetes.token_file, c.kubernetes.ssl_ca_crt_file])
            if (p !== null) expect(isCleanAbsolute(p), p).toBe(true);
        },
      ),
      opts,
    );
  });
});

// ---------------------------------------------------------------- o.vo VIF codec

const vhuVif = fc
  .record({
    mode: fc.constantFrom('client' as const, 'server' as const),
    id: fc.uuid(),
    mac: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }),
    mtu: fc.integer({ min: 68, max: 9000 }),
  })
  .map(({ mode, id, mac, mtu }) =>
    makeVHostUserVif(mode, '/var/run/vhostuser', {
      id,
      address: mac.map((b, i) => (i === 0 ? b & 0xfe : b).toString(16).padStart(2, '0')).join(':'),
      network: { bridge: 'br-int', mtu },
    }),
  );

/** A primitive with one field (at any depth along `versioned_object.data`) replaced. */
const mutatedPrimitive = fc
  .tuple(
    vhuVif,
    fc.constantFrom(
      'id',
      'address',
      'network',
      'vif_name',
      'path',
      'mode',
      'port_profile',
      'active',
      'plugin',
      'versioned_object.name',
      'versioned_object.version',
      'versioned_object.namespace',
    ),
    fc.oneof(fc.jsonValue(), nasty),
  )
  .map(([vif, key, value]) => {
    const p = JSON.parse(JSON.stringify(encodeVIF(vif))) as Record<string, Record<string, unknown>>;
    if (key.startsWith('versioned_object.')) (p as Record<string, unknown>)[key] = value;
    else p['versioned_object.data']![key] = value;
    return p;
  });

describe('o.vo VIF codec (src/vif/ovo.ts)', () => {
  it('decode(encode(vif)) is the VIF', () => {
    fc.assert(
      fc.property(vhuVif, (vif) => {
        expect(decodeVIF(encodeVIF(vif))).toEqual(decodeVIF(JSON.parse(JSON.stringify(encodeVIF(vif)))));
        expect(encodeVIF(decodeVIF(encodeVIF(vif)))).toEqual(encodeVIF(vif));
      }),
      opts,
    );
  });

  it('any JSON, any mutated primitive: a VIF or a VIFFormatError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutatedPrimitive), (p) => {
        typedOnly(() => decodeVIF(p), [VIFFormatError]);
      }),
      opts,
    );
  });

  it('a decoded VIF never places its socket outside the mount point, whatever its path or vif_name says', () => {
    const mount = '/var/run/vhostuser';
    fc.assert(
      fc.property(mutatedPrimitive, (p) => {
        const vif = typedOnly(() => decodeVIF(p), [VIFFormatError]);
        if (!vif || vif.kind !== 'VIFVHostUser') return;
        const name = typedOnly(() => vhostUserPortName(vif.id), [Error]);
        if (name === undefined) return;
        expect(isOneComponent(name), name).toBe(true);
        expect(path.dirname(vhostUserSocketPath(mount, name))).toBe(mount);
      }),
      opts,
    );
  });
});
