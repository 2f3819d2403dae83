/**
 * `vhostplug install-cni` into temp dirs: the binary copied atomically (executable, same
 * bytes, no temp left), a conflist the netconf parser accepts, usage errors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildConflist, installCniCommand } from '../../src/cli/install-cni';
import { UsageError } from '../../src/cli/command';
import { parseNetConf } from '../../src/cni/netconf';

describe('install-cni', () => {
  let dir: string;
  let shim: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-install-'));
    shim = path.join(dir, 'fake-shim');
    fs.writeFileSync(shim, '#!/bin/sh\necho shim\n');
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('copies the shim as <bin-dir>/vhostplug (0755) and writes a parseable conflist', async () => {
    const bin = path.join(dir, 'opt/cni/bin');
    const conf = path.join(dir, 'etc/cni/net.d');
    const code = await installCniCommand.run([
      '--bin-dir',
      bin,
      '--conf-dir',
      conf,
      '--shim',
      shim,
      '--name',
      'dpdk-net',
      '--mode',
      'server',
      '--mtu',
      '9000',
      '--subnet',
      '10.1.0.0/24',
    ]);
    expect(code).toBe(0);
    expect(fs.readFileSync(path.join(bin, 'vhostplug'), 'utf8')).toBe(fs.readFileSync(shim, 'utf8'));
    expect(fs.statSync(path.join(bin, 'vhostplug')).mode & 0o777).toBe(0o755);
    const list = JSON.parse(fs.readFileSync(path.join(conf, '10-dpdk-net.conflist'), 'utf8')) as {
      name: string;
      cniVersion: string;
      plugins: Record<string, unknown>[];
    };
    expect(list.name).toBe('dpdk-net');
    const netconf = parseNetConf({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
    expect(netconf).toMatchObject({ mode: 'server', mtu: 9000, bridge: 'br-int', ipam: { type: 'host-local' } });
    expect(netconf.capabilities).toEqual({ CNIDeviceInfoFile: true });
    expect(fs.readdirSync(bin)).toEqual(['vhostplug']);
    // Re-running replaces both (idempotent).
    expect(
      await installCniCommand.run(['--bin-dir', bin, '--conf-dir', conf, '--shim', shim, '--name', 'dpdk-net']),
    ).toBe(0);
    expect(fs.readdirSync(conf)).toEqual(['10-dpdk-net.conflist']);
  });

  it('--no-conflist installs the binary only', async () => {
    const bin = path.join(dir, 'bin');
    expect(await installCniCommand.run(['--bin-dir', bin, '--no-conflist', '--shim', shim])).toBe(0);
    expect(fs.existsSync(path.join(bin, 'vhostplug'))).toBe(true);
  });

  it('refuses bad usage', async () => {
    await expect(installCniCommand.run(['--conf-dir', dir])).rejects.toThrow(UsageError);
    await expect(installCniCommand.run(['--bin-dir', dir])).rejects.toThrow(/--conf-dir/);
    await expect(installCniCommand.run(['--bin-dir', dir, '--conf-dir', dir, '--mode', 'vdpa'])).rejects.toThrow(
      /--mode/,
    );
    await expect(installCniCommand.run(['--bin-dir', dir, '--conf-dir', dir, '--conf-file', '../x'])).rejects.toThrow(
      /plain file name/,
    );
    await expect(
      installCniCommand.run(['--bin-dir', dir, '--conf-dir', dir, '--shim', path.join(dir, 'missing')]),
    ).rejects.toThrow(/cannot read the shim/);
  });

  it('conflist: cniVersion 1.0.0 for libcni < 1.2 (containerd 1.6 refuses a 1.1.0 result), cniVersions up to 1.1.0 for libcni >= 1.2', () => {
    const list = buildConflist({ name: 'n', mode: 'client', bridge: 'br-int' });
    expect(list.cniVersion).toBe('1.0.0');
    expect(list.cniVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });

  it('veth conflists carry no device-info capability', () => {
    expect(
      (buildConflist({ name: 'n', mode: 'veth', bridge: 'br-int' }).plugins as Record<string, unknown>[])[0]!
        .capabilities,
    ).toBeUndefined();
  });
});
