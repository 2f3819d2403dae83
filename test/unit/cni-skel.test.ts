import { describe, expect, it } from 'vitest';
import { CniError } from '../../src/cni/errors';
import { vhostUserResult } from '../../src/cni/result';
import { dispatchCni, type CniCall, type CniPlugin } from '../../src/cni/skel';
import { SUPPORTED_CNI_VERSIONS } from '../../src/cni/spec';

const ENV = { CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'net1', CNI_PATH: '/usr/lib/cni' };

function conf(version: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: version, name: 'dpdk-net', type: 'vhostplug', mode: 'client', ...extra });
}

/** A plugin that records its calls; ADD returns a vhost-user result. */
function recorder(fail?: Error) {
  const calls: CniCall[] = [];
  const op = async (c: CniCall) => {
    calls.push(c);
    if (fail) throw fail;
  };
  const plugin: CniPlugin = {
    add: async (c) => {
      await op(c);
      return vhostUserResult({ ifname: c.env.ifname!, mac: '0a:00:00:00:00:01', mtu: 1500, socketPath: '/run/vhu/x' });
    },
    del: op,
    check: op,
    gc: op,
    status: op,
  };
  return { plugin, calls };
}

describe('dispatchCni', () => {
  it('answers VERSION itself', async () => {
    const { plugin, calls } = recorder();
    const res = await dispatchCni({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' }, plugin);
    expect(res.exitCode).toBe(0);
    // SPEC "Version": cniVersion is the value given on input.
    expect(JSON.parse(res.stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
    const none = await dispatchCni({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{}' }, plugin);
    expect(JSON.parse(none.stdout)).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_CNI_VERSIONS] });
    expect(calls).toHaveLength(0);
  });

  for (const v of SUPPORTED_CNI_VERSIONS) {
    it(`ADD with cniVersion ${v} returns the result in ${v}`, async () => {
      const { plugin, calls } = recorder();
      const res = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: conf(v) }, plugin);
      expect(res.exitCode).toBe(0);
      const out = JSON.parse(res.stdout) as { cniVersion: string; interfaces: Record<string, unknown>[] };
      expect(out.cniVersion).toBe(v);
      expect(out.interfaces[0]!.name).toBe('net1');
      expect('socketPath' in out.interfaces[0]!).toBe(v === '1.1.0');
      expect(calls[0]!.command).toBe('ADD');
      expect(calls[0]!.conf.cniVersion).toBe(v);
    });
  }

  it('DEL/CHECK/GC/STATUS succeed with empty stdout', async () => {
    for (const command of ['DEL', 'CHECK', 'GC', 'STATUS']) {
      const { plugin, calls } = recorder();
      const res = await dispatchCni({ env: { ...ENV, CNI_COMMAND: command }, stdin: conf('1.1.0') }, plugin);
      expect(res, command).toEqual({ exitCode: 0, stdout: '' });
      expect(calls[0]!.command).toBe(command);
    }
  });

  it('refuses GC/STATUS under 1.1.0 and CHECK under 0.4.0 with code 1, without calling the plugin', async () => {
    for (const [command, version] of [
      ['GC', '1.0.0'],
      ['STATUS', '0.4.0'],
      ['CHECK', '0.3.1'],
    ] as const) {
      const { plugin, calls } = recorder();
      const res = await dispatchCni({ env: { ...ENV, CNI_COMMAND: command }, stdin: conf(version) }, plugin);
      expect(res.exitCode).toBe(1);
      expect(JSON.parse(res.stdout)).toMatchObject({ cniVersion: version, code: 1 });
      expect(calls).toHaveLength(0);
    }
  });

  it('maps bad input to the right code, in the requested version', async () => {
    const { plugin, calls } = recorder();
    const cases: [Record<string, string>, string, number, string][] = [
      [{ ...ENV, CNI_COMMAND: 'ADD', CNI_CONTAINERID: '../x' }, conf('0.4.0'), 4, '0.4.0'],
      [{ ...ENV, CNI_COMMAND: 'ADD', CNI_IFNAME: 'a/b' }, conf('1.0.0'), 4, '1.0.0'],
      [{ CNI_COMMAND: 'ADD' }, conf('1.1.0'), 4, '1.1.0'],
      [{ ...ENV, CNI_COMMAND: 'ADD' }, '{not json', 6, '1.1.0'],
      [{ ...ENV, CNI_COMMAND: 'ADD' }, conf('0.3.1', { mode: 'hybrid' }), 7, '0.3.1'],
      [{ ...ENV, CNI_COMMAND: 'ADD' }, conf('0.3.1', { mtu: 'big' }), 7, '0.3.1'],
      [{ ...ENV, CNI_COMMAND: 'ADD' }, conf('7.0.0'), 1, '1.1.0'],
    ];
    for (const [env, stdin, code, version] of cases) {
      const res = await dispatchCni({ env, stdin }, plugin);
      expect(res.exitCode, stdin).toBe(1);
      const err = JSON.parse(res.stdout) as Record<string, unknown>;
      expect(err, stdin).toMatchObject({ code, cniVersion: version });
      expect(typeof err.msg).toBe('string');
    }
    expect(calls).toHaveLength(0);
  });

  it('reports plugin errors with their code and maps foreign errors', async () => {
    const own = await dispatchCni(
      { env: { ...ENV, CNI_COMMAND: 'DEL' }, stdin: conf('0.4.0') },
      recorder(new CniError(11, 'busy', 'retry')).plugin,
    );
    expect(JSON.parse(own.stdout)).toEqual({ cniVersion: '0.4.0', code: 11, msg: 'busy', details: 'retry' });
    const foreign = await dispatchCni(
      { env: { ...ENV, CNI_COMMAND: 'CHECK' }, stdin: conf('1.1.0') },
      recorder(new RangeError('oops')).plugin,
    );
    expect(foreign.exitCode).toBe(1);
    expect(JSON.parse(foreign.stdout)).toMatchObject({ code: 100, details: 'oops' });
  });

  it("warnings from ADD go to the shim's stderr (the runtime logs it), one line each", async () => {
    const { plugin } = recorder();
    const add = plugin.add;
    plugin.add = async (c) => {
      c.warn?.('first');
      c.warn?.('second');
      return add(c);
    };
    const res = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: conf('1.0.0') }, plugin);
    expect(res.exitCode).toBe(0);
    expect(res.stderr).toBe('vhostplug: warning: first\nvhostplug: warning: second\n');
    const quiet = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: conf('1.0.0') }, recorder().plugin);
    expect(quiet.stderr).toBeUndefined();
  });

  it('passes the abort signal through', async () => {
    const { plugin, calls } = recorder();
    const ac = new AbortController();
    await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'DEL' }, stdin: conf('1.1.0') }, plugin, { signal: ac.signal });
    expect(calls[0]!.signal).toBe(ac.signal);
  });

  it('DEL with an undecodable config: delWithoutConfig cleans by attachment and succeeds (no DEL loop)', async () => {
    const { plugin } = recorder();
    const seen: string[] = [];
    plugin.delWithoutConfig = async (u) => {
      seen.push(`${u.env.containerId}/${u.env.ifname}:${u.error.cniCode}`);
    };
    for (const stdin of ['{broken', conf('1.1.0', { mode: 'hybrid' }), conf('9.9.9')]) {
      const res = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'DEL' }, stdin }, plugin);
      expect(res, stdin).toEqual({ exitCode: 0, stdout: '' });
    }
    expect(seen).toEqual(['c0ffee/net1:6', 'c0ffee/net1:7', 'c0ffee/net1:1']);
    // Only DEL, and never for a bad environment.
    const add = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'ADD' }, stdin: '{broken' }, plugin);
    expect(JSON.parse(add.stdout)).toMatchObject({ code: 6 });
    const badEnv = await dispatchCni(
      { env: { ...ENV, CNI_COMMAND: 'DEL', CNI_IFNAME: '../x' }, stdin: '{broken' },
      plugin,
    );
    expect(JSON.parse(badEnv.stdout)).toMatchObject({ code: 4 });
    expect(seen).toHaveLength(3);
    // Without the hook the decode error is returned, as skel does.
    const plain = await dispatchCni({ env: { ...ENV, CNI_COMMAND: 'DEL' }, stdin: '{broken' }, recorder().plugin);
    expect(JSON.parse(plain.stdout)).toMatchObject({ code: 6 });
  });
});
