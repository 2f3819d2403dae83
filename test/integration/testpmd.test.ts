/**
 * Real traffic through the sandbox: OVS dpdkvhostuserclient and dpdkvhostuser ports on br-int,
 * each with its own dpdk-testpmd (the "pod" DPDK application), packets flooded between them by
 * the NORMAL action. Proves the sandbox and testpmd helpers; counters come from testpmd because
 * OVS 3.1 has none on dpdkvhostuser ports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parsePortStats, startTestpmd, vdevArg, type Testpmd } from '../helpers/testpmd';
import { useSandbox } from '../helpers/sandbox';
import { describeIf, firstReason, needsOvs, needsTestpmd } from '../helpers/skip';

it('parsePortStats reads the testpmd NIC statistics block', () => {
  const text = `
  ######################## NIC statistics for port 0  ########################
  RX-packets: 446528     RX-missed: 0          RX-bytes:  28577792
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 444800     TX-errors: 1          TX-bytes:  28467200

  Throughput (since last show)
  Rx-pps:            0          Rx-bps:            0
  ############################################################################
  ######################## NIC statistics for port 1  ########################
  RX-packets: 7     RX-missed: 2          RX-bytes:  448
  RX-errors: 3
  RX-nombuf:  0
  TX-packets: 32         TX-errors: 0          TX-bytes:  2048
  ############################################################################
`;
  expect(parsePortStats(text)).toEqual([
    {
      port: 0,
      rxPackets: 446528,
      rxMissed: 0,
      rxBytes: 28577792,
      rxErrors: 0,
      txPackets: 444800,
      txErrors: 1,
      txBytes: 28467200,
    },
    { port: 1, rxPackets: 7, rxMissed: 2, rxBytes: 448, rxErrors: 3, txPackets: 32, txErrors: 0, txBytes: 2048 },
  ]);
  expect(parsePortStats('testpmd> ')).toEqual([]);
});

it('vdevArg builds the virtio_user devargs and rejects a comma in the path', () => {
  expect(vdevArg(0, { path: '/run/a.sock' })).toBe('net_virtio_user0,path=/run/a.sock');
  expect(vdevArg(2, { path: '/x', server: true, mac: '02:00:00:00:00:01', queues: 2 })).toBe(
    'net_virtio_user2,path=/x,server=1,mac=02:00:00:00:00:01,queues=2',
  );
  expect(() => vdevArg(0, { path: '/a,b' })).toThrow(/cannot contain ','/);
});

it('finds the prompt on stdout when a stderr line lands inside it (seen in CI: "tes<error>tpmd> ")', async () => {
  // A stand-in for testpmd's console (the wrap option runs it instead of dpdk-testpmd): the
  // byte order of the two streams is what matters here, not DPDK. It prints the prompt in
  // two halves with an error on stderr between them, then answers one command.
  const script = [
    "printf 'Done\\ntes'",
    "printf 'Error during enabling promiscuous mode for port 0\\n' >&2",
    'sleep 0.05',
    "printf 'tpmd> '",
    'read line',
    'printf \'echo: %s\\ntestpmd> \' "$line"',
    'read line',
  ].join('; ');
  const tp = await startTestpmd({
    ports: [{ path: '/nonexistent.sock' }],
    readyTimeoutMs: 5000,
    wrap: () => ['sh', '-c', script],
  });
  try {
    expect(await tp.command('hello')).toContain('echo: hello');
    expect(tp.output()).toContain('Error during enabling promiscuous mode');
  } finally {
    await tp.stop();
  }
});

describeIf(firstReason(needsOvs({ dpdk: true }), needsTestpmd()))('testpmd through the sandbox', () => {
  const sandbox = useSandbox();
  let podDir: string;
  const pmds: Testpmd[] = [];

  beforeAll(() => {
    podDir = mkdtempSync(path.join(os.tmpdir(), 'vhp-pod-'));
  });
  afterAll(async () => {
    // Registered after useSandbox's afterAll, so it runs first: testpmd stops before OVS.
    await Promise.all(pmds.map((t) => t.stop()));
    if (podDir) rmSync(podDir, { recursive: true, force: true });
  });

  it('passes packets both ways between a dpdkvhostuserclient and a dpdkvhostuser port', async () => {
    const sb = sandbox();
    const clientSock = path.join(podDir, 'vhuc0.sock');
    sb.vsctl(
      'add-port',
      'br-int',
      'vhuc0',
      '--',
      'set',
      'Interface',
      'vhuc0',
      'type=dpdkvhostuserclient',
      `options:vhost-server-path=${clientSock}`,
      '--',
      'add-port',
      'br-int',
      'vhu0',
      '--',
      'set',
      'Interface',
      'vhu0',
      'type=dpdkvhostuser',
    );
    // testpmd is the vhost-user server for OVS's client port, and a client of OVS's server port
    // (whose socket OVS created in its run dir).
    const a = await startTestpmd({ ports: [{ path: clientSock, server: true }] });
    pmds.push(a);
    const b = await startTestpmd({ ports: [{ path: path.join(sb.runDir, 'vhu0'), mac: '02:00:00:00:0b:01' }] });
    pmds.push(b);
    expect((await b.command('show port summary all')).toLowerCase()).toContain('02:00:00:00:0b:01');

    // Both OVS ports see their peer before we send the first burst.
    sb.vsctl('--timeout=20', 'wait-until', 'Interface', 'vhuc0', 'link_state=up');
    sb.vsctl('--timeout=20', 'wait-until', 'Interface', 'vhu0', 'link_state=up');
    expect(sb.vsctl('get', 'Interface', 'vhuc0', 'status:status').trim()).toBe('connected');
    expect(sb.vsctl('get', 'Interface', 'vhu0', 'status:mode').trim()).toBe('server');

    await a.startForwarding();
    await b.startForwarding();
    // A's burst floods to B, B's io forwarding sends it back (its only port pairs with itself).
    const [sa] = await a.waitForTraffic({ minPackets: 1000 });
    const [sbStats] = await b.waitForTraffic({ minPackets: 1000 });
    expect(sa!.rxPackets).toBeGreaterThan(1000);
    expect(sa!.txPackets).toBeGreaterThan(1000);
    expect(sbStats!.rxPackets).toBeGreaterThan(1000);
    expect(sbStats!.txPackets).toBeGreaterThan(1000);
    // OVS counts the client port's traffic too (it has counters; the server port has none in 3.1).
    const ofport = sb.vsctl('get', 'Interface', 'vhuc0', 'ofport').trim();
    const dump = sb.ofctl('dump-ports', ofport);
    const rx = /rx pkts=(\d+)/.exec(dump);
    expect(rx, dump).not.toBeNull();
    expect(Number(rx![1])).toBeGreaterThan(1000);

    await Promise.all([a.stop(), b.stop()]);
    await a.stop(); // twice is fine
  });
});
