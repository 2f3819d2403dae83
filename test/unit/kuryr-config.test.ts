/**
 * kuryr.conf compatibility for the Kuryr drop-in (reference section 3): the options that
 * apply ([vhostuser], [neutron_defaults], [cni_daemon], [cni_health_server], [os_vif_ovs]
 * ovsdb_connection / ovs_vsctl_timeout / network_device_mtu) are read; unknown options are
 * WARNED about and ignored; bad values are REFUSED at start with a message naming the
 * option. The last part runs the built CLI (`vhostplug kuryr-daemon --config-file`) on
 * such files, as an operator would.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/agent/config';
import { describeIf } from '../helpers/skip';

const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

/** A kuryr.conf as a Kuryr deployment with vhost-user has it, plus one typo per section we read. */
const WITH_TYPOS = `[DEFAULT]
debug = true

[kubernetes]
api_root = https://10.0.0.1:6443
token_file = /var/run/secrets/kubernetes.io/serviceaccount/token

[vhostuser]
mount_point = /var/run/vhostuser
ovs_vhu_path = /var/run/openvswitch
mount_pointt = /typo

[neutron_defaults]
ovs_bridge = br-int
network_device_mtu = 1400

[cni_daemon]
bind_address = 127.0.0.1:5036
worker_num = 16
vif_annotation_timeout = 45
cni_failures_count = 5
vif_anotation_timeout = 10

[cni_health_server]
port = 8090
max_memory_usage = 512
prot = 8091

[os_vif_ovs]
ovsdb_connection = tcp:127.0.0.1:6640
ovs_vsctl_timeout = 30
network_device_mtu = 9000
ovsdb_conection = unix:/x
`;

describe('kuryr.conf for the Kuryr drop-in', () => {
  it('reads every section-3 option that applies, typed', () => {
    const { config } = parseConfig(WITH_TYPOS);
    expect(config.vhostuser).toMatchObject({ mount_point: '/var/run/vhostuser', ovs_vhu_path: '/var/run/openvswitch' });
    expect(config.neutron_defaults).toEqual({ ovs_bridge: 'br-int', network_device_mtu: 1400 });
    expect(config.cni_daemon).toMatchObject({
      bind_host: '127.0.0.1',
      bind_port: 5036,
      worker_num: 16,
      vif_annotation_timeout: 45,
      cni_failures_count: 5,
    });
    expect(config.cni_health_server).toEqual({ port: 8090, max_memory_usage: 512 });
    expect(config.os_vif_ovs).toMatchObject({
      ovsdb_connection: 'tcp:127.0.0.1:6640',
      ovs_vsctl_timeout: 30,
      network_device_mtu: 9000,
    });
    expect(config.kubernetes.api_root).toBe('https://10.0.0.1:6443');
  });

  it('unknown options are warned about (kind, section, option, line) and ignored', () => {
    const { config, warnings } = parseConfig(WITH_TYPOS, 'kuryr.conf');
    const unknown = warnings.filter((w) => w.kind === 'unknown').map((w) => [w.section, w.option, w.line]);
    expect(unknown).toEqual([
      ['vhostuser', 'mount_pointt', 11],
      ['cni_daemon', 'vif_anotation_timeout', 22],
      ['cni_health_server', 'prot', 27],
      ['os_vif_ovs', 'ovsdb_conection', 33],
    ]);
    expect(config.cni_health_server.port).toBe(8090);
    expect(warnings.find((w) => w.option === 'debug')?.kind).toBe('ignored');
  });

  // Every option the drop-in reads, with a value it must refuse.
  const BAD: Array<[section: string, option: string, value: string, why: RegExp]> = [
    ['vhostuser', 'mount_point', 'relative/dir', /absolute/],
    ['vhostuser', 'mount_point', '', /must be set/],
    ['vhostuser', 'ovs_vhu_path', `/${'d'.repeat(120)}`, /107 bytes/],
    ['neutron_defaults', 'ovs_bridge', 'br int', /bridge name/],
    ['neutron_defaults', 'network_device_mtu', '-5', /minimum 0/],
    ['cni_daemon', 'bind_address', '127.0.0.1', /HOST:PORT/],
    ['cni_daemon', 'bind_address', '127.0.0.1:70000', /out of range/],
    ['cni_daemon', 'bind_address', '0.0.0.0:5036', /not a loopback address/],
    ['cni_daemon', 'worker_num', 'many', /not an integer/],
    ['cni_daemon', 'vif_annotation_timeout', '0', /minimum 1/],
    ['cni_daemon', 'cni_failures_count', '0', /minimum 1/],
    ['cni_daemon', 'docker_mode', 'perhaps', /not a boolean/],
    ['cni_health_server', 'port', '0', /minimum 1/],
    ['cni_health_server', 'port', '5036', /also used by \[cni_daemon\] bind_address/],
    ['cni_health_server', 'max_memory_usage', '-2', /minimum -1/],
    ['os_vif_ovs', 'ovsdb_connection', 'ssl:127.0.0.1:6640', /not an OVSDB endpoint/],
    ['os_vif_ovs', 'ovs_vsctl_timeout', '-1', /minimum 0/],
    ['os_vif_ovs', 'network_device_mtu', '20', /minimum 68/],
    ['kubernetes', 'api_root', 'ftp://x', /not an http\(s\) URL/],
  ];

  it.each(BAD)('refuses [%s] %s = %j, naming the option and the line', (section, option, value, why) => {
    const text = `[DEFAULT]\n\n[${section}]\n${option} = ${value}\n`;
    let err: unknown;
    try {
      parseConfig(text, '/etc/kuryr/kuryr.conf');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.section).toBe(section);
    expect(ce.option).toBe(option);
    expect(ce.line).toBe(4);
    expect(ce.message).toContain(`/etc/kuryr/kuryr.conf:line 4: [${section}] ${option}: `);
    expect(ce.message).toMatch(why);
  });
});

describeIf(fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)')(
  'vhostplug kuryr-daemon --config-file (the built CLI)',
  () => {
    let tmp: string;
    beforeAll(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vhp-kuryrconf-'));
    });
    afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, 'kuryr-daemon', ...args], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, KUBECONFIG: '' },
      });

    it('a file with unknown options: each one warned on stderr with file:line, and the file is accepted', () => {
      const f = path.join(tmp, 'typos.conf');
      fs.writeFileSync(f, WITH_TYPOS);
      const r = cli('--config-file', f, '--check-config');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${f}: ok (5 warnings)\n`);
      expect(r.stderr).toContain(
        `vhostplug: warning: ${f}:11: [vhostuser] mount_pointt is not a known option (a typo?); ignored`,
      );
      expect(r.stderr).toContain(`${f}:22: [cni_daemon] vif_anotation_timeout is not a known option`);
      expect(r.stderr).toContain(`${f}:27: [cni_health_server] prot is not a known option`);
      expect(r.stderr).toContain(`${f}:33: [os_vif_ovs] ovsdb_conection is not a known option`);
    });

    it('a file with a bad value: the daemon refuses to start (exit 1) and names the option', () => {
      const f = path.join(tmp, 'bad.conf');
      fs.writeFileSync(f, WITH_TYPOS.replace('vif_annotation_timeout = 45', 'vif_annotation_timeout = soon'));
      const r = cli('--config-file', f); // a real start, not --check-config
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `vhostplug kuryr-daemon: ${f}:line 20: [cni_daemon] vif_annotation_timeout: "soon" is not an integer [ECONFIG]`,
      );
      expect(r.stdout).toBe('');
    });
  },
);
