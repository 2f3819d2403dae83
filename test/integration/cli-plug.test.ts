/**
 * `vhostplug plug` / `unplug` as an operator runs them: kuryr.conf + an os-vif VIF primitive
 * file, JSON on stdout, a clear message and a non-zero exit on error. Runs the built CLI
 * (dist/) against a private DPDK OVS.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import { encodeVIF } from '../../src/vif/ovo';
import type { VIFVHostUser } from '../../src/vif/model';
import { vhostUserPortName } from '../../src/vif/names';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsOvs, needsRoot } from '../helpers/skip';

const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeIf(
  firstReason(
    needsRoot(),
    needsOvs({ dpdk: true }),
    fs.existsSync(CLI) ? undefined : 'dist/ is not built (npm run build)',
  ),
)('vhostplug plug/unplug CLI', () => {
  const sandbox = useSandbox();
  let dir: string;
  let conf: string;

  beforeAll(() => {
    dir = path.join(sandbox().dir, 'cli');
    fs.mkdirSync(path.join(dir, 'vhostuser'), { recursive: true });
    conf = path.join(dir, 'kuryr.conf');
    fs.writeFileSync(
      conf,
      [
        '[vhostuser]',
        `mount_point = ${path.join(dir, 'vhostuser')}`,
        `ovs_vhu_path = ${sandbox().runDir}`,
        '[os_vif_ovs]',
        `ovsdb_connection = ${sandbox().db}`,
        '[neutron_defaults]',
        'ovs_bridge = br-int',
        '',
      ].join('\n'),
    );
  });

  function vifFile(mode: 'client' | 'server'): { file: string; vif: VIFVHostUser } {
    const id = randomUUID();
    const vif: VIFVHostUser = {
      kind: 'VIFVHostUser',
      id,
      address: 'fa:16:3e:aa:bb:cc',
      network: { id: randomUUID(), mtu: 1500, subnets: [] },
      port_profile: { kind: 'VIFPortProfileOpenVSwitch', interface_id: id },
      vif_name: vhostUserPortName(id),
      mode,
    };
    const file = path.join(dir, `${id}.json`);
    fs.writeFileSync(file, JSON.stringify(encodeVIF(vif)));
    return { file, vif };
  }

  it('plugs both modes and prints the attachment as JSON; unplug removes everything, twice', () => {
    for (const mode of ['server', 'client'] as const) {
      const { file, vif } = vifFile(mode);
      const name = vhostUserPortName(vif.id);
      const p = cli(
        'plug',
        '--config',
        conf,
        '--vif',
        file,
        '--container-id',
        `cid-${mode}`,
        '--ifname',
        'eth0',
        '--pod-uid',
        randomUUID(),
      );
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      const out = JSON.parse(p.stdout) as {
        vifName: string;
        mode: string;
        bridge: string;
        socketPath: string;
        timings: { totalMs: number };
      };
      expect(out).toMatchObject({
        vifName: name,
        mode,
        bridge: 'br-int',
        socketPath: path.join(dir, 'vhostuser', name),
      });
      expect(out.timings.totalMs).toBeGreaterThan(0);
      expect(sandbox().vsctl('list-ports', 'br-int')).toContain(name);
      expect(fs.existsSync(path.join(dir, 'vhostuser', `cid-${mode}-eth0`))).toBe(true);

      for (let i = 0; i < 2; i++) {
        const u = cli('unplug', '--config', conf, '--container-id', `cid-${mode}`, '--ifname', 'eth0');
        expect(u.code).toBe(0);
        expect(JSON.parse(u.stdout).removed.port).toBe(i === 0);
      }
      expect(sandbox().vsctl('list-ports', 'br-int')).not.toContain(name);
      expect(fs.readdirSync(path.join(dir, 'vhostuser'))).toEqual([]);
    }
  });

  it('bad input: a clear one-line message, a non-zero exit, nothing written', () => {
    const { file } = vifFile('server');
    const bad = cli('plug', '--config', conf, '--vif', file, '--container-id', '../etc', '--ifname', 'eth0');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^vhostplug plug: vhost-user validate failed: invalid container id/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const noConf = cli(
      'plug',
      '--config',
      path.join(dir, 'nope.conf'),
      '--vif',
      file,
      '--container-id',
      'x',
      '--ifname',
      'eth0',
    );
    expect(noConf.code).toBe(1);
    expect(noConf.stderr).toMatch(/nope\.conf/);
    const garbage = path.join(dir, 'garbage.json');
    fs.writeFileSync(garbage, '{"versioned_object.name": "VIFNope"}');
    const g = cli('plug', '--config', conf, '--vif', garbage, '--container-id', 'x', '--ifname', 'eth0');
    expect(g.code).toBe(1);
    expect(g.stderr).toMatch(/VIFNope|unknown/i);
    const usage = cli('plug', '--config', conf);
    expect(usage.code).toBe(2);
    expect(cli('plug', '--help').stdout).toMatch(/usage: vhostplug plug/);
    expect(sandbox().vsctl('list-ports', 'br-int').trim()).toBe('');
    expect(fs.readdirSync(path.join(dir, 'vhostuser'))).toEqual([]);
  });
});
