/**
 * DPDK traffic between two pods through OVS-DPDK, each pod's dpdk-testpmd running INSIDE a
 * container that containerd started (image: Debian's dpdk-dev, built by
 * scripts/build-image.sh), on the socket vhostplug plugged for the pod: one server-mode
 * port (the pod listens, OVS connects) and one client-mode port (OVS listens; vhostplug
 * renamed its socket into the pod's directory). Each container mounts only its pod's own
 * directory `<mount_point>/<pod-uid>` at /var/run/vhostuser (what kubelet does for a hostPath
 * volume with `subPathExpr: $(POD_UID)`; containerd passes K8S_POD_UID, so the ADD created
 * it) and sees its socket, its config file and interfaces.json there, and nothing of the
 * other pod. Both send and receive (testpmd's flowgen mode: it generates packets and drains its RX queue), and both must receive what
 * the other sent, through br-int.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIf, firstReason } from '../helpers/skip';
import { waitFor } from '../helpers/proc';
import { TestNode, needsContainerdNode } from '../helpers/cri/node';
import { importImages } from '../helpers/cri/images';
import { NodeDaemon, podConfig, REPO } from '../helpers/cri/pods';
import type { ContainerConfig } from '../helpers/cri/client';
import { parsePortStats } from '../../src/sandbox/testpmd';
import { stablePortName } from '../../src/daemon/cni-plugin';

const MAIN = path.join(REPO, 'dist/cli/main.js');

describeIf(firstReason(needsContainerdNode()))('dpdk-testpmd inside pod containers, on vhostplug sockets', () => {
  let node: TestNode;
  let testpmdImage: string;

  beforeAll(async () => {
    node = await TestNode.start({ handlers: ['vp-server', 'vp-client'] });
    try {
      testpmdImage = importImages(node, ['testpmd']).testpmd;
      await NodeDaemon.start(node);
      for (const mode of ['server', 'client']) {
        node.exec(
          [
            process.execPath,
            MAIN,
            'install-cni',
            '--bin-dir',
            '/opt/cni/bin',
            '--conf-dir',
            node.confDir(`vp-${mode}`),
            '--name',
            `vp-${mode}`,
            '--mode',
            mode,
            '--subnet',
            mode === 'server' ? '10.71.0.0/24' : '10.72.0.0/24',
          ],
          { net: false },
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    } catch (e) {
      await node.stop({ keepDir: true });
      throw e;
    }
  }, 30 * 60_000);

  afterAll(async () => {
    await node?.stop();
  });

  /** testpmd on the pod's socket, flowgen (send and drain RX), stats every second, bounded in time. */
  function testpmdContainer(name: string, socket: string, server: boolean, podUid: string): ContainerConfig {
    const vdev = `net_virtio_user0,path=/var/run/vhostuser/${socket}${server ? ',server=1' : ''}`;
    return {
      metadata: { name },
      image: { image: testpmdImage },
      command: ['timeout', '120', 'stdbuf', '-oL', 'dpdk-testpmd'],
      args: [
        '--no-pci',
        '--no-huge',
        '-m',
        '256',
        '--file-prefix',
        name,
        '--lcores',
        '0@0,1@0',
        `--vdev=${vdev}`,
        '--',
        '--total-num-mbufs=16384',
        '--forward-mode=flowgen',
        '--auto-start',
        '--stats-period',
        '1',
      ],
      // The pod sees its own directory only (not the other pods', not OVS's db.sock).
      mounts: [{ container_path: '/var/run/vhostuser', host_path: `/var/run/openvswitch/vhostuser/${podUid}` }],
      log_path: `${name}.log`,
    };
  }

  it('server-mode and client-mode pods exchange packets both ways through OVS; removing them leaves nothing', async () => {
    const pods: { id: string; cid: string; log: string; mode: string; uid: string; socket: string }[] = [];
    for (const mode of ['server', 'client']) {
      const cfg = podConfig(node, `dpdk-${mode}`);
      const id = await node.cri.runPodSandbox(cfg, `vp-${mode}`);
      const socket = stablePortName(id, 'eth0', 'vhostuser');
      const uid = cfg.metadata.uid;
      // The config file the DPDK app reads names the same socket.
      expect(
        JSON.parse(fs.readFileSync(node.path(`/run/openvswitch/vhostuser/${uid}/${id}-eth0`), 'utf8')),
      ).toMatchObject({ vhostname: socket, mode });
      const cid = await node.cri.createContainer(
        id,
        testpmdContainer(`testpmd-${mode}`, socket, mode === 'server', uid),
        cfg,
      );
      await node.cri.startContainer(cid);
      pods.push({ id, cid, log: path.join(cfg.log_directory!, `testpmd-${mode}.log`), mode, uid, socket });
    }
    // Inside each container: its own socket, config file and interfaces.json, nothing else;
    // the other pod's directory and files are not there at all.
    for (const p of pods) {
      const other = pods.find((o) => o !== p)!;
      await waitFor(
        () => fs.existsSync(node.path(`/run/openvswitch/vhostuser/${p.uid}/${p.socket}`)),
        `the ${p.mode} pod's socket`,
        30_000,
        200,
      );
      const ls = await node.cri.execSync(p.cid, ['ls', '-A', '/var/run/vhostuser']);
      expect(ls.exit_code, ls.stderr).toBe(0);
      const seen = ls.stdout.split('\n').filter(Boolean).sort();
      // Server mode: testpmd (the pod's app) creates its socket there itself.
      expect(seen, p.mode).toEqual([`${p.id}-eth0`, 'interfaces.json', p.socket].sort());
      const index = await node.cri.execSync(p.cid, ['cat', '/var/run/vhostuser/interfaces.json']);
      expect(JSON.parse(index.stdout)).toMatchObject({
        pod_uid: p.uid,
        interfaces: [
          { ifname: 'eth0', vhostname: p.socket, mode: p.mode, socket_path: `/var/run/vhostuser/${p.socket}` },
        ],
      });
      for (const f of [
        other.socket,
        `${other.id}-eth0`,
        `../${other.uid}`,
        `/var/run/openvswitch/vhostuser/${other.uid}`,
      ]) {
        const st = await node.cri.execSync(p.cid, ['stat', f.startsWith('/') ? f : `/var/run/vhostuser/${f}`]);
        expect(st.exit_code, `${p.mode} pod: stat ${f}`).not.toBe(0);
      }
    }
    const lastStats = (log: string) => {
      // CRI log lines: "<time> <stream> <P|F> <text>".
      const text = (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').replace(/^\S+ (stdout|stderr) [PF] /gm, '');
      const stats = parsePortStats(text);
      return stats.at(-1);
    };
    const ovsStats = () =>
      pods
        .map(
          (p) =>
            `${p.mode}: ${node.vsctl('get', 'Interface', stablePortName(p.id, 'eth0', 'vhostuser'), 'statistics', 'link_state', 'error')}`,
        )
        .join('\n');
    const final = await waitFor(
      async () => {
        for (const p of pods) {
          const st = await node.cri.containerStatus(p.cid);
          if (st.state === 'CONTAINER_EXITED')
            throw new Error(
              `testpmd in the ${p.mode} pod exited ${st.exit_code}:\n${fs.readFileSync(p.log, 'utf8').slice(-3000)}`,
            );
        }
        const s = pods.map((p) => lastStats(p.log));
        return s.every((x) => x && x.rxPackets > 1000 && x.txPackets > 1000) ? s : undefined;
      },
      'packets both ways between the two pods',
      60_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nOVS: ${ovsStats()}\n${node.vsctl('show')}`);
    });
    for (const s of final) {
      expect(s!.rxPackets).toBeGreaterThan(1000);
      expect(s!.txPackets).toBeGreaterThan(1000);
    }
    // OVS counted the server-mode port's traffic too (dpdkvhostuser ports have no counters in
    // OVS 3.1; vswitchd refreshes the statistics column every few seconds).
    await waitFor(
      () =>
        Number(
          /rx_packets=(\d+)/.exec(
            node.vsctl('get', 'Interface', stablePortName(pods[0]!.id, 'eth0', 'vhostuser'), 'statistics'),
          )?.[1] ?? 0,
        ) > 0,
      "OVS's statistics of the server-mode port",
      20_000,
      500,
    );
    for (const p of pods) {
      await node.cri.stopContainer(p.cid, 5);
      await node.cri.removeContainer(p.cid);
      await node.cri.stopPodSandbox(p.id);
      await node.cri.removePodSandbox(p.id);
    }
    expect(node.ports()).toEqual([]);
    expect(fs.readdirSync(node.path('/run/openvswitch/vhostuser'))).toEqual([]);
  }, 180_000);
});
