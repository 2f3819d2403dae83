/** kuryr.conf parsing: oslo.config INI syntax, typed defaults, warnings for unused options, errors naming the option. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  OPTIONS,
  defaultConfig,
  formatConfigWarning,
  loadConfig,
  parseConfig,
  parseIni,
} from '../../src/agent/config';

function configError(fn: () => unknown, section?: string, option?: string): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a ConfigError').toBeInstanceOf(ConfigError);
  const e = caught as ConfigError;
  expect(e.code).toBe('ECONFIG');
  expect(e.section).toBe(section);
  expect(e.option).toBe(option);
  if (section && option) expect(e.message).toContain(`[${section}] ${option}`);
  return e;
}

describe('defaults', () => {
  it('match the documented values, with sockets and mount point on one filesystem', () => {
    const c = defaultConfig();
    expect(c.vhostuser).toStrictEqual({
      mount_point: '/var/run/vhostuser',
      ovs_vhu_path: '/var/run/openvswitch',
      per_pod_dir: false,
      pod_mount_path: null,
      owner: null,
      socket_mode: null,
      se_label: null,
    });
    expect(c.os_vif_ovs).toStrictEqual({
      ovsdb_connection: 'unix:/var/run/openvswitch/db.sock',
      ovsdb_endpoint: { kind: 'unix', path: '/var/run/openvswitch/db.sock' },
      ovs_vsctl_timeout: 120,
      network_device_mtu: 1500,
      isolate_vif: false,
    });
    expect(c.neutron_defaults).toStrictEqual({ ovs_bridge: null, network_device_mtu: 0 });
    expect(c.cni_daemon).toMatchObject({
      bind_address: '127.0.0.1:5036',
      bind_host: '127.0.0.1',
      bind_port: 5036,
      worker_num: 30,
      vif_annotation_timeout: 60,
      docker_mode: false,
      netns_proc_dir: null,
      cni_failures_count: 3,
    });
    expect(c.cni_health_server).toStrictEqual({ port: 8090, max_memory_usage: -1 });
    expect(c.kubernetes.api_root).toBeNull();
    expect(c.vhostplug).toStrictEqual({
      config_file_mode: 0o644,
      config_file_owner: null,
      config_file_group: null,
      socket_wait_timeout: 10,
      allow_datapath_change: false,
      allow_remote_bind: false,
      state_dir: '/var/lib/vhostplug',
      daemon_socket: '/run/vhostplug/daemon.sock',
      metrics_port: 9655,
      vswitchd_netns: null,
      pool_size: 0,
      pool_low_water: -1,
      pool_bridges: '',
      vhostuser_port_limit: 0,
      advertise_capacity: true,
    });
  });
});

describe('a real kuryr.conf', () => {
  const KURYR_CONF = `
[DEFAULT]
debug = True
use_stderr = true

[kubernetes]
api_root = https://10.0.0.1:6443/
token_file = /var/run/secrets/kubernetes.io/serviceaccount/token
ssl_ca_crt_file = /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
ssl_verify_server_crt = True
pod_vif_driver = neutron-vif
enabled_handlers = vif,kuryrport

[neutron_defaults]
ovs_bridge = br-int
pod_subnet = 3d4e5f60-aaaa-bbbb-cccc-000000000001

[vhostuser]
mount_point = /var/run/vhostuser/
ovs_vhu_path = /var/run/openvswitch/

[cni_daemon]
daemon_enabled = True
bind_address = 127.0.0.1:5036
worker_num = 8
vif_annotation_timeout = 30

[os_vif_ovs]
ovsdb_connection = tcp:127.0.0.1:6640
ovsdb_interface = native
ovs_vsctl_timeout = 60

[vif_plug_ovs_privileged]
helper_command = privsep-helper

[cni_health_server]
port = 8091
`;

  it('loads, with typed values and the unused options as warnings', () => {
    const { config, warnings } = parseConfig(KURYR_CONF, 'kuryr.conf');
    expect(config.kubernetes).toMatchObject({ api_root: 'https://10.0.0.1:6443', ssl_verify_server_crt: true });
    expect(config.neutron_defaults.ovs_bridge).toBe('br-int');
    expect(config.vhostuser).toMatchObject({
      mount_point: '/var/run/vhostuser',
      ovs_vhu_path: '/var/run/openvswitch',
      per_pod_dir: false,
    });
    expect(config.cni_daemon).toMatchObject({ worker_num: 8, vif_annotation_timeout: 30 });
    expect(config.os_vif_ovs).toMatchObject({
      ovsdb_endpoint: { kind: 'tcp', host: '127.0.0.1', port: 6640 },
      ovs_vsctl_timeout: 60,
    });
    expect(config.cni_health_server.port).toBe(8091);
    const byOpt = Object.fromEntries(warnings.map((w) => [`${w.section}.${w.option}`, w.kind]));
    expect(byOpt).toStrictEqual({
      'DEFAULT.debug': 'ignored',
      'DEFAULT.use_stderr': 'ignored',
      'kubernetes.pod_vif_driver': 'ignored',
      'kubernetes.enabled_handlers': 'ignored',
      'neutron_defaults.pod_subnet': 'ignored',
      'cni_daemon.daemon_enabled': 'ignored',
      'os_vif_ovs.ovsdb_interface': 'ignored',
      'vif_plug_ovs_privileged.helper_command': 'ignored',
    });
    const w = warnings.find((x) => x.option === 'debug')!;
    expect(w.line).toBe(3);
    expect(formatConfigWarning(w, 'kuryr.conf')).toBe(
      'kuryr.conf:3: [DEFAULT] debug is not used by vhostplug and is ignored',
    );
  });

  it('a typo is an unknown option, reported with its line, not an error', () => {
    const { config, warnings } = parseConfig('[vhostuser]\nmount_piont = /x\n[vhostusr]\nmount_point = /y\n');
    expect(config.vhostuser.mount_point).toBe('/var/run/vhostuser');
    expect(warnings.map((w) => [w.kind, w.section, w.option, w.line])).toStrictEqual([
      ['unknown', 'vhostuser', 'mount_piont', 2],
      ['unknown', 'vhostusr', 'mount_point', 4],
    ]);
  });
});

describe('INI syntax as oslo.config reads it', () => {
  it('= and :, quotes, comments, no inline comments, case-insensitive sections', () => {
    const doc = parseIni('# c\n; c\n[VhostUser]\na = 1\nb: 2\nc = "quoted"\nd = \'q\'\ne = x # not a comment\nf=g=h\n');
    const s = doc.sections.get('vhostuser')!;
    expect([...s].map(([k, v]) => [k, v.value])).toStrictEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', 'quoted'],
      ['d', 'q'],
      ['e', 'x # not a comment'],
      ['f', 'g=h'],
    ]);
    expect(parseIni('[DEFAULT]\na=1\n').sections.has('DEFAULT')).toBe(true);
  });

  it('a leading BOM and CRLF line ends are tolerated', () => {
    expect(parseConfig('\uFEFF[neutron_defaults]\r\novs_bridge = br-int\r\n').config.neutron_defaults.ovs_bridge).toBe(
      'br-int',
    );
  });

  it('continuation lines join with a newline; a blank line ends them', () => {
    const doc = parseIni('[s]\na = one\n  two\n\ttwo-b\n\nb = 3\n');
    expect(doc.sections.get('s')!.get('a')!.value).toBe('one\ntwo\ntwo-b');
    expect(doc.sections.get('s')!.get('b')!.value).toBe('3');
  });

  it('a repeated option: the last wins, with a warning', () => {
    const { config, warnings } = parseConfig('[cni_daemon]\nworker_num = 4\n[cni_daemon]\nworker_num = 5\n');
    expect(config.cni_daemon.worker_num).toBe(5);
    expect(warnings).toStrictEqual([
      {
        kind: 'duplicate',
        section: 'cni_daemon',
        option: 'worker_num',
        line: 4,
        message: expect.stringContaining('first on line 2'),
      },
    ]);
  });

  it('syntax errors name the line', () => {
    expect(configError(() => parseConfig('a = 1\n')).line).toBe(1);
    expect(configError(() => parseConfig('[s]\njunk\n')).message).toMatch(/line 2.*no "=" or ":"/);
    expect(configError(() => parseConfig('  x\n')).message).toMatch(/continuation/);
    expect(configError(() => parseConfig('[s\n')).message).toMatch(/must end with/);
    expect(configError(() => parseConfig('[]\n')).message).toMatch(/empty section/);
    expect(configError(() => parseConfig('[s]\n= v\n')).message).toMatch(/empty option/);
  });

  it('pool_bridges: each name checked as ovs_bridge is', () => {
    expect(parseConfig('[vhostplug]\npool_bridges = br-int, br-dpdk\n').config.vhostplug.pool_bridges).toBe(
      'br-int, br-dpdk',
    );
    expect(
      configError(() => parseConfig('[vhostplug]\npool_bridges = br-int,../x\n'), 'vhostplug', 'pool_bridges').message,
    ).toMatch(/bridge name/);
    expect(
      configError(
        () => parseConfig('[vhostplug]\npool_bridges = a-very-long-bridge-name\n'),
        'vhostplug',
        'pool_bridges',
      ).message,
    ).toMatch(/bridge name/);
  });

  it('booleans: oslo.config spellings, any case', () => {
    for (const [t, v] of [
      ['True', true],
      ['yes', true],
      ['ON', true],
      ['1', true],
      ['False', false],
      ['no', false],
      ['off', false],
      ['0', false],
    ] as const) {
      expect(parseConfig(`[os_vif_ovs]\nisolate_vif = ${t}\n`).config.os_vif_ovs.isolate_vif, t).toBe(v);
    }
  });
});

describe('bad values are refused, naming the option', () => {
  const bad: Array<[string, string, string, RegExp]> = [
    ['cni_daemon', 'worker_num', 'many', /not an integer/],
    ['cni_daemon', 'worker_num', '0', /minimum 1/],
    ['os_vif_ovs', 'isolate_vif', 'maybe', /not a boolean/],
    ['os_vif_ovs', 'ovs_vsctl_timeout', '-1', /minimum 0/],
    ['os_vif_ovs', 'network_device_mtu', '9', /minimum 68/],
    ['os_vif_ovs', 'ovsdb_connection', 'ssl:1.2.3.4:6640', /unix:PATH or tcp:HOST:PORT/],
    ['os_vif_ovs', 'ovsdb_connection', 'tcp:localhost', /tcp:HOST:PORT/],
    ['os_vif_ovs', 'ovsdb_connection', `unix:/${'x'.repeat(120)}`, /107/],
    ['vhostuser', 'mount_point', 'var/run/vhostuser', /absolute/],
    ['vhostuser', 'mount_point', '/var/run/../etc', /"\.\."/],
    ['vhostuser', 'mount_point', '', /must be set/],
    ['vhostuser', 'mount_point', `/${'m'.repeat(92)}`, /at most 92/],
    ['vhostuser', 'ovs_vhu_path', 'relative', /absolute/],
    ['neutron_defaults', 'ovs_bridge', 'br/int', /bridge name/],
    ['cni_daemon', 'bind_address', '5036', /HOST:PORT/],
    ['cni_daemon', 'bind_address', '127.0.0.1:99999', /out of range/],
    ['cni_daemon', 'netns_proc_dir', 'proc', /absolute/],
    ['cni_health_server', 'port', '0', /minimum 1/],
    ['kubernetes', 'api_root', 'localhost:6443', /http\(s\) URL/],
    ['kubernetes', 'token_file', 'token', /absolute/],
    ['vhostplug', 'config_file_mode', '644x', /octal mode/],
    ['vhostplug', 'config_file_mode', '4755', /setuid/],
    ['vhostplug', 'config_file_mode', '0666', /world-writable/],
    ['vhostplug', 'config_file_owner', 'root user', /user\/group name/],
    ['vhostplug', 'socket_wait_timeout', '10s', /seconds/],
    ['vhostplug', 'state_dir', './state', /absolute/],
    ['vhostplug', 'daemon_socket', `/run/${'s'.repeat(110)}`, /107/],
    ['vhostplug', 'metrics_port', '65536', /maximum 65535/],
  ];
  it.each(bad)('[%s] %s = %j', (section, option, value, why) => {
    const e = configError(() => parseConfig(`[${section}]\n${option} = ${value}\n`, 'kuryr.conf'), section, option);
    expect(e.line).toBe(2);
    expect(e.message).toMatch(why);
    expect(e.message).toMatch(/^kuryr\.conf:line 2: /);
  });

  it('a mount point of exactly 92 bytes fits (92 + "/" + 14 = 107)', () => {
    const mp = `/${'m'.repeat(91)}`;
    expect(parseConfig(`[vhostuser]\nmount_point = ${mp}\n`).config.vhostuser.mount_point).toBe(mp);
  });
});

describe('rules across options', () => {
  it('a non-loopback bind address needs allow_remote_bind', () => {
    configError(() => parseConfig('[cni_daemon]\nbind_address = 0.0.0.0:5036\n'), 'cni_daemon', 'bind_address');
    const ok = parseConfig('[cni_daemon]\nbind_address = 0.0.0.0:5036\n[vhostplug]\nallow_remote_bind = true\n').config;
    expect(ok.cni_daemon.bind_host).toBe('0.0.0.0');
    for (const lo of ['localhost:5036', '127.0.0.2:5036', '[::1]:5036']) {
      expect(parseConfig(`[cni_daemon]\nbind_address = ${lo}\n`).config.cni_daemon.bind_port).toBe(5036);
    }
  });

  it('metrics port defaults to [prometheus_exporter] cni_exporter_port; clashing ports are refused', () => {
    expect(parseConfig('[prometheus_exporter]\ncni_exporter_port = 9700\n').config.vhostplug.metrics_port).toBe(9700);
    expect(
      parseConfig('[prometheus_exporter]\ncni_exporter_port = 9700\n[vhostplug]\nmetrics_port = 9800\n').config
        .vhostplug.metrics_port,
    ).toBe(9800);
    const e = configError(() => parseConfig('[vhostplug]\nmetrics_port = 8090\n'), 'vhostplug', 'metrics_port');
    expect(e.message).toMatch(/\[cni_health_server\] port/);
    configError(() => parseConfig('[cni_health_server]\nport = 5036\n'), 'cni_health_server', 'port');
  });

  it('docker_mode needs netns_proc_dir', () => {
    configError(() => parseConfig('[cni_daemon]\ndocker_mode = true\n'), 'cni_daemon', 'netns_proc_dir');
    expect(
      parseConfig('[cni_daemon]\ndocker_mode = true\nnetns_proc_dir = /host_proc\n').config.cni_daemon.netns_proc_dir,
    ).toBe('/host_proc');
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'vhostplug-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a file and names it in errors', () => {
    const file = path.join(dir, 'kuryr.conf');
    writeFileSync(file, '[neutron_defaults]\novs_bridge = br-dpdk\n');
    const loaded = loadConfig(file);
    expect(loaded.file).toBe(file);
    expect(loaded.config.neutron_defaults.ovs_bridge).toBe('br-dpdk');
    writeFileSync(file, '[cni_daemon]\nworker_num = x\n');
    expect(configError(() => loadConfig(file), 'cni_daemon', 'worker_num').message).toContain(`${file}:line 2`);
    const missing = configError(() => loadConfig(path.join(dir, 'nope.conf')));
    expect(missing.message).toMatch(/ENOENT/);
    expect((missing.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});

describe('docs/configuration.md', () => {
  it('documents every option vhostplug reads', () => {
    const doc = readFileSync(path.resolve(__dirname, '../../docs/configuration.md'), 'utf8');
    for (const [section, opts] of Object.entries(OPTIONS)) {
      for (const option of Object.keys(opts)) {
        expect(doc, `[${section}] ${option}`).toMatch(new RegExp(`\\[${section}\\][^\\n]*\`${option}\``));
      }
    }
  });
});

describe('[vhostuser] per-pod directories and ownership', () => {
  it('parses per_pod_dir, pod_mount_path, owner, socket_mode and se_label', () => {
    const c = parseConfig(
      '[vhostuser]\nper_pod_dir = true\npod_mount_path = /dev/vhu\nowner = 1000:2000\nsocket_mode = 0640\nse_label = system_u:object_r:container_file_t:s0:c1,c2\n',
    ).config;
    expect(c.vhostuser).toMatchObject({
      per_pod_dir: true,
      pod_mount_path: '/dev/vhu',
      owner: '1000:2000',
      socket_mode: 0o640,
      se_label: 'system_u:object_r:container_file_t:s0:c1,c2',
    });
  });
  it('refuses bad values naming the option', () => {
    for (const [opt, v] of [
      ['owner', 'root:root'],
      ['owner', '1000'],
      ['socket_mode', '0666'],
      ['socket_mode', '4660'],
      ['socket_mode', '0440'],
      ['se_label', 'not a label'],
      ['pod_mount_path', 'relative'],
    ]) {
      expect(() => parseConfig(`[vhostuser]\n${opt} = ${v}\n`), `${opt} = ${v}`).toThrow(
        new RegExp(`\\[vhostuser\\] ${opt}: `),
      );
    }
  });
  it('with per_pod_dir, mount_point leaves room for <pod-uid>/<port> in 107 bytes', () => {
    expect(() => parseConfig(`[vhostuser]\nper_pod_dir = true\nmount_point = /${'m'.repeat(60)}\n`)).toThrow(
      /\[vhostuser\] mount_point: is 61 bytes; with per_pod_dir/,
    );
    expect(parseConfig(`[vhostuser]\nmount_point = /${'m'.repeat(60)}\n`).config.vhostuser.per_pod_dir).toBe(false);
  });
});
