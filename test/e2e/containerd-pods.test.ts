/**
 * Pods through a real container runtime: Debian 12's containerd 1.6 + runc on a private
 * node (test/helpers/cri/node.ts: own namespaces, nothing global changed), driven over the
 * CRI v1 gRPC API as kubelet drives it, with the vhostplug daemon on the node (the
 * DaemonSet's kuryr.conf) behind the shim `vhostplug install-cni` installs, and the
 * conflists install-cni writes. One containerd serves several networks through runtime
 * handlers, each with its own CNI conf dir: vp-server, vp-client, vp-veth, and the
 * reference `ptp` plugin.
 *
 * What no machine here has: a libcni >= 1.2 runtime (Debian 12 and 13 carry libcni 1.1.x;
 * containerd 2 is not packaged). Its version pick from `cniVersions` is reproduced by
 * {@link libcni12Version} (the rule of libcni 1.2's NetworkConfFromBytes) and the real
 * shim + daemon are driven with the config such a runtime sends.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeIf } from '../helpers/skip';
import { waitFor } from '../helpers/proc';
import { TestNode, needsContainerdNode } from '../helpers/cri/node';
import { importImages } from '../helpers/cri/images';
import { NodeDaemon, podConfig, REPO } from '../helpers/cri/pods';
import { CriError } from '../helpers/cri/client';
import { stablePortName } from '../../src/daemon/cni-plugin';
import { SUPPORTED_CNI_VERSIONS, compareCniVersions } from '../../src/cni/spec';

const MAIN = path.join(REPO, 'dist/cli/main.js');
const SHIM = path.join(REPO, 'build/Release/vhostplug-cni');

/** The vhostplug networks of this suite: runtime handler, mode, subnet. */
const NETS = {
  server: { handler: 'vp-server', subnet: '10.61.0.0/24' },
  client: { handler: 'vp-client', subnet: '10.62.0.0/24' },
  veth: { handler: 'vp-veth', subnet: '10.63.0.0/24' },
} as const;
type Mode = keyof typeof NETS;

/**
 * The cniVersion libcni >= 1.2 uses for a conflist: the highest of `cniVersions` plus
 * `cniVersion` that is not newer than the spec it implements (1.1.0). libcni < 1.2 ignores
 * `cniVersions` and uses `cniVersion`.
 */
export function libcni12Version(
  conflist: { cniVersion?: string; cniVersions?: string[] },
  implemented = '1.1.0',
): string | undefined {
  const vs = [...(conflist.cniVersions ?? []), ...(conflist.cniVersion ? [conflist.cniVersion] : [])].filter(
    (v) => compareCniVersions(v, implemented) <= 0,
  );
  return vs.sort(compareCniVersions).at(-1) ?? conflist.cniVersion;
}

describeIf(needsContainerdNode())('pods through containerd 1.6 (CRI) with vhostplug', () => {
  let node: TestNode;
  let daemon: NodeDaemon;

  beforeAll(async () => {
    node = await TestNode.start({ handlers: [...Object.values(NETS).map((n) => n.handler), 'ptp'] });
    try {
      importImages(node, []);
      daemon = await NodeDaemon.start(node);
      // The DaemonSet's init container does this on every node; here with a conflist per network.
      for (const [mode, n] of Object.entries(NETS)) {
        node.exec(
          [
            process.execPath,
            MAIN,
            'install-cni',
            '--bin-dir',
            '/opt/cni/bin',
            '--conf-dir',
            node.confDir(n.handler),
            '--name',
            n.handler,
            '--mode',
            mode,
            '--subnet',
            n.subnet,
          ],
          { net: false },
        );
      }
      node.installConflist('ptp', '10-ptp.conflist', {
        cniVersion: '1.0.0',
        name: 'ptp',
        plugins: [{ type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '10.64.0.0/24' }]] } }],
      });
      await waitForNetworks(node, ['vp-server', 'vp-client', 'vp-veth', 'ptp']);
    } catch (e) {
      await node.stop({ keepDir: true });
      throw e;
    }
  }, 30 * 60_000);

  afterEach(async () => {
    // A failed test must not leave pods to the next one.
    await node?.removeAllPods();
  });

  afterAll(async () => {
    await node?.stop();
  });

  /** Everything a pod can leave on the node. */
  function nodeLeftovers() {
    const ls = (p: string) => (fs.existsSync(node.path(p)) ? fs.readdirSync(node.path(p)) : []);
    return {
      ports: node.ports(),
      mountDir: ls('/run/openvswitch/vhostuser'),
      ovsSockets: ls('/run/openvswitch').filter((f) => f.startsWith('vhu')),
      state: ls('/var/lib/vhostplug'),
      ips: Object.values(NETS).flatMap((n) =>
        ls(`/var/lib/cni/networks/${n.handler}`).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)),
      ),
      sandboxes: ls('/run/containerd/io.containerd.grpc.v1.cri/sandboxes'),
    };
  }
  const NOTHING = { ports: [], mountDir: [], ovsSockets: [], state: [], ips: [], sandboxes: [] };

  it("server, client and veth pods from install-cni's conflists: port, socket, config file and IP in place, PodSandboxStatus's IP; Stop+Remove leave nothing", async () => {
    for (const mode of ['server', 'client', 'veth'] as Mode[]) {
      const net = NETS[mode];
      const cfg = podConfig(node, `pod-${mode}`);
      const id = await node.cri.runPodSandbox(cfg, net.handler);
      const { status, info } = await node.cri.podSandboxStatus(id);
      expect(status.state).toBe('SANDBOX_READY');
      const ip = status.network!.ip;
      expect(ip, mode).toMatch(new RegExp(`^${net.subnet.split('.').slice(0, 3).join('\\.')}\\.\\d+$`));
      // host-local's reservation, in the node's /var/lib/cni (the conflist has no dataDir).
      expect(fs.readFileSync(node.path(`/var/lib/cni/networks/${net.handler}/${ip}`), 'utf8')).toContain(id);
      const port = stablePortName(id, 'eth0', mode === 'veth' ? 'veth' : 'vhostuser');
      expect(node.ports()).toContain(port);
      expect(node.vsctl('get', 'Interface', port, 'type').trim()).toBe(
        mode === 'server' ? 'dpdkvhostuserclient' : mode === 'client' ? 'dpdkvhostuser' : '""',
      );
      expect(node.vsctl('get', 'Interface', port, 'external_ids:iface-id').trim()).not.toBe('');
      if (mode === 'veth') {
        const pid = String(info.pid);
        const addrs = JSON.parse(
          node.exec(['nsenter', '-t', pid, '-n', 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { net: false }),
        ) as { addr_info: { local: string }[] }[];
        expect(addrs[0]!.addr_info.map((a) => a.local)).toContain(ip);
      } else {
        // The pod's own directory <mount_point>/<pod-uid>/ (containerd passes K8S_POD_UID).
        const dir = `/run/openvswitch/vhostuser/${cfg.metadata.uid}`;
        const sock = node.path(`${dir}/${port}`);
        if (mode === 'client') expect(fs.lstatSync(sock).isSocket()).toBe(true);
        // Server mode: the pod's app creates the socket; OVS was told where.
        else
          expect(node.vsctl('get', 'Interface', port, 'options:vhost-server-path').trim()).toBe(`"/var${dir}/${port}"`);
        const conf = JSON.parse(fs.readFileSync(node.path(`${dir}/${id}-eth0`), 'utf8')) as Record<string, unknown>;
        expect(conf).toMatchObject({ vhostname: port, mode });
        const index = JSON.parse(fs.readFileSync(node.path(`${dir}/interfaces.json`), 'utf8')) as {
          pod_uid: string;
          interfaces: Record<string, unknown>[];
        };
        expect(index.pod_uid).toBe(cfg.metadata.uid);
        expect(index.interfaces).toEqual([
          expect.objectContaining({ ifname: 'eth0', vhostname: port, mode, socket_path: `/var/run/vhostuser/${port}` }),
        ]);
        // The runtime logged the daemon's warning: a vhost-user port as the pod's primary interface.
        expect(fs.readFileSync(node.containerdLog, 'utf8')).toContain(
          `vhostplug: warning: network "${net.handler}" makes the pod's primary interface eth0 a vhost-user port`,
        );
      }
      await node.cri.stopPodSandbox(id);
      await node.cri.removePodSandbox(id);
      expect(nodeLeftovers(), mode).toEqual(NOTHING);
    }
  }, 180_000);

  it('cniVersion: containerd 1.6 (libcni 1.1) refuses the 1.1.0 result of a conflist at cniVersion 1.1.0 (the old install-cni) and works with the 1.0.0 install-cni writes; a libcni >= 1.2 runtime gets 1.1.0 with socketPath', async () => {
    // The old conflist: reproduces the field report exactly.
    const conflist = JSON.parse(
      fs.readFileSync(path.join(node.confDir('vp-client'), '10-vp-client.conflist'), 'utf8'),
    ) as Record<string, unknown> & { cniVersion: string; cniVersions: string[]; plugins: Record<string, unknown>[] };
    expect(conflist.cniVersion).toBe('1.0.0');
    expect(conflist.cniVersions).toEqual([...SUPPORTED_CNI_VERSIONS]);
    node.installConflist('vp-client', '10-vp-client.conflist', { ...conflist, cniVersion: '1.1.0' });
    try {
      await new Promise((r) => setTimeout(r, 500)); // containerd reloads on the rename event
      const err = await node.cri.runPodSandbox(podConfig(node, 'old-conflist'), 'vp-client').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(CriError);
      expect(err!.message).toMatch(/plugin type="vhostplug" failed \(add\): unsupported CNI result version "1\.1\.0"/);
    } finally {
      node.installConflist('vp-client', '10-vp-client.conflist', conflist);
      await new Promise((r) => setTimeout(r, 500));
    }
    await node.removeAllPods();
    expect(nodeLeftovers()).toEqual(NOTHING);

    // libcni >= 1.2 (stand-in, see the file comment): picks 1.1.0 and sends it to the plugin.
    const picked = libcni12Version(conflist);
    expect(picked).toBe('1.1.0');
    expect(libcni12Version({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0', '2.0.0'] })).toBe('1.1.0');
    expect(libcni12Version({ cniVersion: '1.0.0' })).toBe('1.0.0');
    const plugin = { ...conflist.plugins[0], cniVersion: picked, name: conflist.name };
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'libcni12',
      CNI_IFNAME: 'net1',
      CNI_NETNS: '/proc/self/ns/net',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS:
        'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=libcni12;K8S_POD_UID=0f0f0f0f-1111-4222-8333-444444444444',
    };
    const res = shimOnNode(node, env, JSON.stringify(plugin));
    expect(res.status, res.stdout).toBe(0);
    const add = JSON.parse(res.stdout) as { cniVersion: string; interfaces: { socketPath?: string; mtu?: number }[] };
    expect(add.cniVersion).toBe('1.1.0');
    // The socket as the pod sees it: its own directory mounted at /var/run/vhostuser.
    expect(add.interfaces[0]!.socketPath).toBe(`/var/run/vhostuser/${stablePortName('libcni12', 'net1', 'vhostuser')}`);
    expect(shimOnNode(node, { ...env, CNI_COMMAND: 'DEL' }, JSON.stringify(plugin)).status).toBe(0);
    expect(nodeLeftovers()).toEqual(NOTHING);
  }, 120_000);

  it('8 pods in parallel (server, client, veth): distinct IPs, every port and socket in place; all removed in parallel leave nothing', async () => {
    const modes: Mode[] = ['server', 'client', 'veth', 'server', 'client', 'veth', 'client', 'server'];
    const pods = await Promise.all(
      modes.map(async (mode, i) => {
        const cfg = podConfig(node, `par-${i}-${mode}`);
        const id = await node.cri.runPodSandbox(cfg, NETS[mode].handler);
        return { mode, id, uid: cfg.metadata.uid, ip: (await node.cri.podSandboxStatus(id)).status.network!.ip };
      }),
    );
    expect(new Set(pods.map((p) => p.ip)).size).toBe(8);
    const ports = node.ports();
    for (const p of pods)
      expect(ports).toContain(stablePortName(p.id, 'eth0', p.mode === 'veth' ? 'veth' : 'vhostuser'));
    for (const p of pods.filter((x) => x.mode === 'client'))
      expect(
        fs
          .lstatSync(node.path(`/run/openvswitch/vhostuser/${p.uid}/${stablePortName(p.id, 'eth0', 'vhostuser')}`))
          .isSocket(),
      ).toBe(true);
    await Promise.all(
      pods.map(async (p) => {
        await node.cri.stopPodSandbox(p.id);
        await node.cri.removePodSandbox(p.id);
      }),
    );
    expect(nodeLeftovers()).toEqual(NOTHING);
  }, 180_000);

  it('the daemon down: RunPodSandbox fails with the shim\'s code 11 ("try again later") and leaves nothing; once it is back, pods run and the ones from before are removed cleanly', async () => {
    const beforeCfg = podConfig(node, 'before-crash');
    const before = await node.cri.runPodSandbox(beforeCfg, NETS.client.handler);
    daemon.kill();
    try {
      const err = await node.cri.runPodSandbox(podConfig(node, 'while-down'), NETS.server.handler).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(CriError);
      // containerd prints the CNI error's msg and details (not the code): these are the shim's for 11.
      expect(err!.message).toContain('plugin type="vhostplug" failed (add): vhostplug daemon unavailable');
      expect(err!.message).toContain('cannot reach the vhostplug daemon at /run/vhostplug/daemon.sock');
      // The shim's own answer, as the runtime got it: code 11.
      const shim = shimOnNode(
        node,
        {
          CNI_COMMAND: 'ADD',
          CNI_CONTAINERID: 'x1',
          CNI_IFNAME: 'eth0',
          CNI_NETNS: '/proc/self/ns/net',
          CNI_PATH: '/opt/cni/bin',
        },
        '{"cniVersion":"1.0.0","name":"vp-server","type":"vhostplug"}',
      );
      expect(shim.status).toBe(1);
      expect(JSON.parse(shim.stdout)).toMatchObject({
        cniVersion: '1.0.0',
        code: 11,
        msg: 'vhostplug daemon unavailable',
      });
    } finally {
      await daemon.restart();
    }
    // containerd keeps the failed sandbox (NOTREADY): its CNI DEL failed too while the daemon
    // was down. kubelet's garbage collection stops and removes it; the DEL then succeeds.
    const sandboxes = await node.cri.listPodSandbox();
    expect(sandboxes.find((p) => p.id === before)?.state).toBe('SANDBOX_READY');
    for (const p of sandboxes.filter((x) => x.id !== before)) {
      expect(p.state).toBe('SANDBOX_NOTREADY');
      await node.cri.stopPodSandbox(p.id);
      await node.cri.removePodSandbox(p.id);
    }
    const after = await node.cri.runPodSandbox(podConfig(node, 'after-restart'), NETS.server.handler);
    expect((await node.cri.podSandboxStatus(after)).status.network!.ip).toMatch(/^10\.61\.0\./);
    expect(
      fs
        .lstatSync(
          node.path(
            `/run/openvswitch/vhostuser/${beforeCfg.metadata.uid}/${stablePortName(before, 'eth0', 'vhostuser')}`,
          ),
        )
        .isSocket(),
    ).toBe(true);
    for (const id of [before, after]) {
      await node.cri.stopPodSandbox(id);
      await node.cri.removePodSandbox(id);
    }
    expect(nodeLeftovers()).toEqual(NOTHING);
  }, 120_000);
});

/** Runs the real shim on the node as a runtime runs a CNI plugin: only the CNI environment, config on stdin. */
function shimOnNode(
  node: TestNode,
  env: Record<string, string>,
  stdin: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'nsenter',
    [
      '-t',
      String(node.initPid),
      '-m',
      '-p',
      `--net=${node.netnsPath}`,
      '--',
      'env',
      '-i',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      SHIM,
    ],
    {
      input: stdin,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Waits until containerd has loaded a network for each handler (CRI refuses pods before). */
async function waitForNetworks(node: TestNode, handlers: string[]): Promise<void> {
  await waitFor(
    () => {
      const log = fs.readFileSync(node.containerdLog, 'utf8');
      return (
        handlers.every((h) => fs.readdirSync(node.confDir(h)).some((f) => f.endsWith('.conflist'))) && log.length > 0
      );
    },
    'the CNI conflists',
    10_000,
    50,
  );
  // containerd reloads asynchronously on the rename event.
  await new Promise((r) => setTimeout(r, 300));
}
