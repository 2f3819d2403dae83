/**
 * The real `vhostplug-cni` executable (build/Release) driven the way a runtime drives a
 * CNI plugin (environment + stdin), against a small in-process daemon built on
 * src/cni/shim-protocol.ts. The daemon side here is an echo handler (or the real
 * dispatcher with a recording plugin): what is under test is the shim and the wire.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { cniShimPath } from '../../src/native';
import { listenShimSocket, type ShimHandler, type ShimRequest, type ShimServer } from '../../src/cni/shim-protocol';
import { dispatchCni, type CniPlugin } from '../../src/cni/skel';
import { vhostUserResult } from '../../src/cni/result';
import { versionReply } from '../../src/cni/spec';
import { describeIf, needsBinaries } from '../helpers/skip';

// VHOSTPLUG_TEST_SHIM runs the same tests against another build (e.g. with ASan/UBSan).
const SHIM = process.env.VHOSTPLUG_TEST_SHIM ?? cniShimPath();

interface ShimRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the shim with exactly `env` (no inherited variables) and `stdin`. */
function runShim(env: Record<string, string>, stdin: string | Buffer, timeoutMs = 20_000): Promise<ShimRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(SHIM, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ms: performance.now() - t0,
      });
    });
    child.stdin.end(stdin);
  });
}

const CNI_ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c0ffee',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'net1',
  CNI_PATH: '/usr/lib/cni',
  CNI_ARGS: 'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p',
};
const CONF = '{"cniVersion":"0.4.0","name":"dpdk-net","type":"vhostplug","mode":"client"}';

/** Echo handler: answers with the request it received, and exit code / stderr on demand. */
const echo: ShimHandler = (req: ShimRequest) => {
  const wanted = Number(req.env.CNI_ARGS?.match(/EXIT=(\d+)/)?.[1] ?? 0);
  return { exitCode: wanted, stdout: JSON.stringify(req), stderr: wanted ? 'echo: failing on request\n' : undefined };
};

/** CPU seconds (user + system) of this process's reaped children, from /proc/self/stat. */
function childrenCpuSeconds(): number {
  const f = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 (1-based), i.e. 13 and 14 after the comm field; clock ticks of 1/100 s.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** A daemon that listens with backlog 1, accepts nothing for argv[2] s, then answers argv[3] requests with stdout "ok" and exits. */
const BUSY_DAEMON = `
import socket, struct, sys, time, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
time.sleep(float(sys.argv[2]))
body = json.dumps({"exitCode": 0, "stdout": "ok"}).encode()
for _ in range(int(sys.argv[3])):
    c, _ = s.accept()
    n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
    c.recv(n, socket.MSG_WAITALL)
    c.sendall(struct.pack(">I", len(body)) + body)
    c.close()
`;

describeIf(needsBinaries(SHIM))('vhostplug-cni shim', () => {
  let dir: string;
  let sock: string;
  let daemon: ShimServer | undefined;
  let handler: ShimHandler;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vhostplug-shim-'));
    sock = path.join(dir, 'run', 'daemon.sock');
    handler = echo;
    daemon = await listenShimSocket(sock, (req, ctx) => handler(req, ctx));
  });

  afterEach(async () => {
    await daemon?.close({ abortInFlight: true });
    daemon = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const env = (over: Record<string, string> = {}): Record<string, string> => ({
    ...CNI_ENV,
    VHOSTPLUG_DAEMON_SOCKET: sock,
    HOME: '/root',
    SECRET_TOKEN: 'do-not-forward',
    ...over,
  });

  it('forwards only CNI_* variables and stdin verbatim, prints the answer, exits 0', async () => {
    const stdin = '{"cniVersion":"1.1.0","s":"quote \\" backslash \\\\ tab \\t é ✓ 𝄞"}\n';
    const r = await runShim(env(), stdin);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const req = JSON.parse(r.stdout) as ShimRequest;
    expect(req.stdin).toBe(stdin);
    expect(req.env).toEqual(CNI_ENV);
  });

  it('escapes control characters and replaces invalid UTF-8 so the frame stays JSON', async () => {
    // VERSION: the one command whose stdin is forwarded even when it is not a JSON object.
    const raw = Buffer.concat([
      Buffer.from('{"a":"\u0001\u001f\n\r"}'),
      Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
      Buffer.from('\u0000end'),
    ]);
    const r = await runShim(env({ CNI_COMMAND: 'VERSION', CNI_ARGS: 'X=\u0002"y"' }), raw);
    expect(r.code).toBe(0);
    const req = JSON.parse(r.stdout) as ShimRequest;
    expect(req.stdin).toBe('{"a":"\u0001\u001f\n\r"}' + '\ufffd\ufffd(\ufffd\ufffd\ufffd' + '\u0000end');
    expect(req.env.CNI_ARGS).toBe('X=\u0002"y"');
  });

  it('a config that is not one JSON object -> code 6 from the shim itself, whichever daemon socket it names', async () => {
    let calls = 0;
    handler = (req, ctx) => {
      calls++;
      return echo(req, ctx);
    };
    const broken = [
      '{"cniVersion":"1.0.0","name":"n","type":"vhostplug"', // truncated
      `{"cniVersion":"1.0.0","daemonSocket":"${path.join(dir, 'nope.sock')}",`, // names a dead socket, then breaks
      `{"cniVersion":"1.0.0","daemonSocket":"${sock}"} trailing`, // names the live one, then garbage
      '[1,2]',
      '',
      '{"a":"raw \u0001 control"}', // a raw control character inside a string
    ];
    for (const stdin of broken) {
      for (const command of ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']) {
        const r = await runShim(env({ CNI_COMMAND: command }), stdin);
        expect(r.code, `${command} ${stdin}`).toBe(1);
        const e = JSON.parse(r.stdout) as Record<string, unknown>;
        expect(e, `${command} ${stdin}`).toMatchObject({ code: 6, msg: 'error decoding network configuration' });
        expect(e.cniVersion).toBe(stdin.startsWith('{"cniVersion":"1.0.0"') ? '1.0.0' : '1.1.0');
      }
    }
    // Also with no daemon anywhere (the error is not "try again later").
    await daemon!.close();
    daemon = undefined;
    const down = await runShim(env(), broken[0]!);
    expect(JSON.parse(down.stdout)).toMatchObject({ code: 6 });
    expect(calls).toBe(0);
  });

  it('passes exit code and stderr through', async () => {
    const r = await runShim(env({ CNI_ARGS: 'EXIT=7' }), CONF);
    expect(r.code).toBe(7);
    expect(r.stderr).toBe('echo: failing on request\n');
    expect(JSON.parse(r.stdout)).toHaveProperty('stdin', CONF);
  });

  it('carries a large answer (2 MiB) intact', async () => {
    handler = () => ({ exitCode: 0, stdout: 'x'.repeat(2 * 1024 * 1024) + '"\\é' });
    const r = await runShim(env(), CONF);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(2 * 1024 * 1024 + 3);
    expect(r.stdout.endsWith('"\\é')).toBe(true);
  });

  it('accepts 1 MiB of stdin and refuses more with code 6 without contacting the daemon', async () => {
    let calls = 0;
    handler = (req) => {
      calls++;
      return { exitCode: 0, stdout: String(req.stdin.length) };
    };
    const limit = 1024 * 1024;
    const ok = await runShim(env(), `{"cniVersion":"0.4.0","pad":"${'a'.repeat(limit - 40)}"}`.padEnd(limit, ' '));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(String(limit));
    const big = await runShim(env(), `{"cniVersion":"0.3.1","pad":"${'a'.repeat(limit)}"}`);
    expect(big.code).toBe(1);
    expect(JSON.parse(big.stdout)).toEqual({
      cniVersion: '0.3.1',
      code: 6,
      msg: 'network configuration too large',
      details: `more than ${limit} bytes on stdin`,
    });
    expect(calls).toBe(1);
  });

  it('daemon unreachable (no socket, or a dead one) -> code 11 in the config version', async () => {
    await daemon!.close();
    daemon = undefined;
    const r = await runShim(env(), CONF);
    expect(r.code).toBe(1);
    const e = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(e).toMatchObject({ cniVersion: '0.4.0', code: 11, msg: 'vhostplug daemon unavailable' });
    expect(e.details).toContain(sock);
    expect(e.details).toContain('No such file or directory');

    // A socket file nobody listens on (daemon crashed): ECONNREFUSED, still 11.
    const dead = net.createServer();
    await new Promise<void>((res) => dead.listen(sock, res));
    fs.renameSync(sock, `${sock}.tmp`);
    await new Promise((res) => dead.close(res));
    fs.renameSync(`${sock}.tmp`, sock);
    const r2 = await runShim(env(), CONF);
    expect(JSON.parse(r2.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 11 });
    expect(JSON.parse(r2.stdout).details).toContain('Connection refused');
  });

  it('unreadable stdin version -> the error is worded in 1.1.0', async () => {
    await daemon!.close();
    daemon = undefined;
    const r = await runShim(env(), '{"cniVersion":"<script>"}');
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 11 });
  });

  it('VERSION: answered by the daemon when up, locally (same list) when down; cniVersion echoes the input (SPEC)', async () => {
    handler = (req, ctx) => dispatchCni(req, {} as CniPlugin, ctx);
    for (const input of ['1.0.0', '0.3.1', '1.1.0', '2.0.0']) {
      const up = await runShim(env({ CNI_COMMAND: 'VERSION' }), `{"cniVersion":"${input}"}`);
      expect(up.code).toBe(0);
      expect(JSON.parse(up.stdout)).toEqual({ ...versionReply(), cniVersion: input });
    }
    await daemon!.close();
    daemon = undefined;
    for (const input of ['1.0.0', '0.4.0', '2.0.0']) {
      const down = await runShim(
        { CNI_COMMAND: 'VERSION', VHOSTPLUG_DAEMON_SOCKET: sock },
        `{"cniVersion":"${input}"}`,
      );
      expect(down.code).toBe(0);
      // The C fallback must match src/cni/spec.ts byte for byte.
      expect(down.stdout).toBe(JSON.stringify(versionReply(input)));
    }
    // No usable version on input: the current one, both ways.
    for (const stdin of ['{}', '{"cniVersion":"1.0"}', '{"cniVersion":"01.0.0"}', 'not json']) {
      const down = await runShim({ CNI_COMMAND: 'VERSION', VHOSTPLUG_DAEMON_SOCKET: sock }, stdin);
      expect(down.stdout, stdin).toBe(JSON.stringify(versionReply()));
      expect(versionReply(JSON.parse(stdin.startsWith('{') ? stdin : '{}').cniVersion).cniVersion).toBe('1.1.0');
    }
  });

  it('finds the socket from the config\'s "daemonSocket" when the env does not set it', async () => {
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'vhostplug', daemonSocket: sock });
    const r = await runShim({ ...CNI_ENV }, conf);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as ShimRequest).stdin).toBe(conf);
    // A value with an escaped NUL is ignored, never truncated to a different path.
    const nul = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'n',
      type: 'vhostplug',
      daemonSocket: `${sock}\u0000/../x`,
    });
    const n = await runShim({ ...CNI_ENV }, nul);
    expect(n.code).not.toBe(0);
    expect(n.stdout).not.toContain('"stdin"'); // our echo daemon was not reached
    // The environment wins over the config.
    const other = await runShim({ ...CNI_ENV, VHOSTPLUG_DAEMON_SOCKET: path.join(dir, 'nope.sock') }, conf);
    expect(JSON.parse(other.stdout)).toMatchObject({ code: 11 });
  });

  it('a daemon that does not answer in time -> code 11 after VHOSTPLUG_SHIM_TIMEOUT; the handler sees the abort', async () => {
    let aborted: Promise<boolean> | undefined;
    handler = (_req, ctx) => {
      aborted = new Promise((res) => ctx.signal.addEventListener('abort', () => res(true)));
      return new Promise(() => undefined);
    };
    const r = await runShim(env({ VHOSTPLUG_SHIM_TIMEOUT: '0.5' }), CONF);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      cniVersion: '0.4.0',
      code: 11,
      msg: 'vhostplug daemon did not answer',
    });
    expect(r.ms).toBeGreaterThanOrEqual(450);
    expect(r.ms).toBeLessThan(5000);
    expect(await aborted).toBe(true);
  });

  it('a full listen backlog: waiting shims queue in the kernel (no busy retry burning the CPU) and get in once the daemon accepts', async () => {
    /** CPU seconds of 100 shims against a daemon (listen backlog 1) that accepts nothing for `busyS`, then answers all. */
    const burst = async (busyS: number): Promise<number> => {
      const busy = path.join(dir, `busy-${busyS}.sock`);
      const server = spawn('python3', ['-c', BUSY_DAEMON, busy, String(busyS), '100'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise((r) => server.stdout!.once('data', r)); // "listening"
      const cpu0 = childrenCpuSeconds();
      const runs = await Promise.all(
        Array.from({ length: 100 }, () =>
          runShim({ ...CNI_ENV, VHOSTPLUG_DAEMON_SOCKET: busy, VHOSTPLUG_SHIM_TIMEOUT: '30' }, CONF),
        ),
      );
      await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
      expect(
        runs
          .map((r) => r.stdout)
          .filter((o) => o !== 'ok')
          .slice(0, 2),
      ).toEqual([]);
      return childrenCpuSeconds() - cpu0;
    };
    const idle = await burst(0);
    const waiting = await burst(5);
    // Spinning on EAGAIN, 100 shims burn seconds of CPU in 5 s; queued in connect(2) they cost what they cost unqueued.
    expect(waiting - idle).toBeLessThan(0.5);
  }, 60_000);

  it('a daemon that closes without answering -> code 11; a garbled answer -> code 5', async () => {
    daemon!.server.removeAllListeners('connection');
    daemon!.server.on('connection', (s: net.Socket) => s.once('data', () => s.destroy()));
    const r = await runShim(env(), CONF);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 11 });

    daemon!.server.removeAllListeners('connection');
    daemon!.server.on('connection', (s: net.Socket) =>
      s.once('data', () => {
        const body = Buffer.from('{"exitCode":"zero"}');
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(body.length);
        s.end(Buffer.concat([hdr, body]));
      }),
    );
    const g = await runShim(env(), CONF);
    expect(g.code).toBe(1);
    expect(JSON.parse(g.stdout)).toMatchObject({ code: 5, msg: 'malformed answer from the vhostplug daemon' });
  });

  it('bad invocations: no CNI_COMMAND -> 4, bad VHOSTPLUG_SHIM_TIMEOUT -> 4, --help prints usage', async () => {
    const { CNI_COMMAND: _omit, ...noCommand } = env();
    const r = await runShim(noCommand, CONF);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 4 });
    const t = await runShim(env({ VHOSTPLUG_SHIM_TIMEOUT: 'soon' }), CONF);
    expect(JSON.parse(t.stdout)).toMatchObject({ code: 4, msg: 'invalid VHOSTPLUG_SHIM_TIMEOUT' });
    const help = await new Promise<string>((res) => {
      const c = spawn(SHIM, ['--help']);
      let s = '';
      c.stdout.on('data', (d: Buffer) => (s += d.toString()));
      c.on('close', () => res(s));
    });
    expect(help).toContain('CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0');
  });

  it('end to end with the dispatcher: ADD result in the requested version, bad input coded', async () => {
    const plugin: CniPlugin = {
      add: async (c) =>
        vhostUserResult({
          ifname: c.env.ifname!,
          mac: '0a:00:00:00:00:09',
          mtu: 1500,
          socketPath: '/run/vhostplug/x/vhu0',
        }),
      del: async () => undefined,
      check: async () => undefined,
      gc: async () => undefined,
      status: async () => undefined,
    };
    handler = (req, ctx) => dispatchCni(req, plugin, ctx);
    const add = await runShim(env(), CONF.replace('0.4.0', '1.1.0'));
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'net1', mac: '0a:00:00:00:00:09', mtu: 1500, socketPath: '/run/vhostplug/x/vhu0' }],
      dns: {},
    });
    const bad = await runShim(env({ CNI_CONTAINERID: '../../etc' }), CONF);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 4, msg: 'invalid CNI_CONTAINERID' });
    const del = await runShim(env({ CNI_COMMAND: 'DEL', CNI_NETNS: '' }), CONF);
    expect(del).toMatchObject({ code: 0, stdout: '' });
  });

  it('garbled answers and configs never crash the shim (deterministic mutation corpus)', async () => {
    // Mutations of a valid answer: the shim must either pass a well-formed answer through or
    // print error 5, and must always exit normally (no signal, e.g. no SIGSEGV).
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const valid = JSON.stringify({
      exitCode: 0,
      stdout: '{"cniVersion":"1.1.0","dns":{}}\u00e9\ud834\udd1e',
      stderr: 'w',
    });
    const alphabet = '{}[]":,\\u0123456789abcdefxyz-+.eE \n\t';
    let answer = Buffer.from(valid);
    let refusedCount = 0;
    daemon!.server.removeAllListeners('connection');
    daemon!.server.on('connection', (s: net.Socket) =>
      s.once('data', () => {
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(answer.length);
        s.end(Buffer.concat([hdr, answer]));
      }),
    );
    for (let i = 0; i < 120; i++) {
      const bytes = Buffer.from(valid);
      for (let k = 0, m = 1 + rand(4); k < m; k++) {
        const at = rand(bytes.length);
        bytes[at] = rand(3) === 0 ? rand(256) : alphabet.charCodeAt(rand(alphabet.length));
      }
      answer = rand(5) === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
      const conf = i % 2 ? CONF : Buffer.from(valid).subarray(0, rand(valid.length)).toString('latin1');
      const r = await runShim(env(), conf);
      expect(r.code, `case ${i}: ${answer.toString('latin1')}`).not.toBeNull();
      if (conf !== CONF) {
        // A truncated config is refused by the shim before the daemon is asked.
        expect(JSON.parse(r.stdout), `case ${i}`).toMatchObject({ code: 6 });
        continue;
      }
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(answer.toString('utf8')) as Record<string, unknown>;
      } catch {
        parsed = undefined;
      }
      const refused = r.code === 1 && /"code":5,"msg":"malformed answer/.test(r.stdout);
      if (!refused) {
        // Passed through: only ever a valid answer, exactly as JSON.parse reads it.
        expect(parsed, `case ${i}: ${answer.toString('latin1')}`).toBeDefined();
        expect(r.code).toBe(parsed!.exitCode);
        expect(r.stdout).toBe(parsed!.stdout);
      } else if (
        parsed &&
        Number.isInteger(parsed.exitCode) &&
        typeof parsed.stdout === 'string' &&
        (parsed.exitCode as number) <= 255
      ) {
        // Refusing valid JSON is only allowed for what the shim's strict reader rejects.
        expect(answer.toString('utf8'), `case ${i}`).toMatch(
          /"exitCode":(-|\d+[.eE])|"exitCode":-?0\d|"(exitCode|stdout|stderr)":.*"\2":/,
        );
      }
      refusedCount += refused ? 1 : 0;
    }
    // The corpus exercises both outcomes.
    expect(refusedCount).toBeGreaterThan(10);
    expect(refusedCount).toBeLessThan(60);
  });
});
