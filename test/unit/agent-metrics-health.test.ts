/**
 * Prometheus text exposition (format 0.0.4) and the health endpoints: exact histogram
 * text, escaping, a grammar check of every line, the /metrics server; health checks that
 * are evaluated per probe (so they recover), consecutive failures reset by a success,
 * a hung check bounded by its deadline, and CapEff parsing for CAP_NET_ADMIN.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import {
  CniMetrics,
  Counter,
  observeDaemon,
  resultOfCniCode,
  Histogram,
  MetricsRegistry,
  escapeLabelValue,
  startMetricsServer,
  type MetricsServer,
} from '../../src/agent/metrics';
import {
  CAP_NET_ADMIN,
  HealthState,
  hasCapability,
  memoryCheck,
  netAdminCheck,
  startHealthServer,
  type HealthServer,
} from '../../src/agent/health';

/** One exposition line: a comment, or `name{labels} value`. */
const LINE =
  /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN))$/;

describe('Prometheus exposition', () => {
  it('a histogram: cumulative buckets, +Inf, _sum and _count per label set, sorted', () => {
    const h = new Histogram('x_seconds', 'Test histogram.', ['command'], [0.1, 1]);
    h.observe({ command: 'DEL' }, 2);
    h.observe({ command: 'ADD' }, 0.05);
    h.observe({ command: 'ADD' }, 0.5);
    h.observe({ command: 'ADD' }, 0.1); // le is inclusive
    expect(h.expose()).toBe(
      [
        '# HELP x_seconds Test histogram.',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{command="ADD",le="0.1"} 2',
        'x_seconds_bucket{command="ADD",le="1"} 3',
        'x_seconds_bucket{command="ADD",le="+Inf"} 3',
        'x_seconds_sum{command="ADD"} 0.65',
        'x_seconds_count{command="ADD"} 3',
        'x_seconds_bucket{command="DEL",le="0.1"} 0',
        'x_seconds_bucket{command="DEL",le="1"} 0',
        'x_seconds_bucket{command="DEL",le="+Inf"} 1',
        'x_seconds_sum{command="DEL"} 2',
        'x_seconds_count{command="DEL"} 1',
        '',
      ].join('\n'),
    );
    expect(h.count({ command: 'ADD' })).toBe(3);
    expect(() => h.observe({}, 1)).toThrow(/label command is missing/);
    h.observe({ command: 'ADD' }, NaN); // ignored, never poisons _sum
    expect(h.count({ command: 'ADD' })).toBe(3);
  });

  it('escapes label values and help text; refuses bad names', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const c = new Counter('y_total', 'line1\nline2 \\', ['reason']);
    c.inc({ reason: 'we "quote"' });
    c.inc({ reason: 'we "quote"' }, 2);
    expect(c.expose()).toBe(
      '# HELP y_total line1\\nline2 \\\\\n# TYPE y_total counter\ny_total{reason="we \\"quote\\""} 3\n',
    );
    expect(() => new Histogram('bad-name', 'x', [])).toThrow(/invalid metric name/);
    expect(() => new Histogram('ok', 'x', ['le'])).toThrow(/invalid label name/);
    const r = new MetricsRegistry();
    r.register(c);
    expect(() => r.register(new Counter('y_total', 'again'))).toThrow(/twice/);
  });

  it('the CNI metrics: request latency by command and result, per-phase timings (phases not run are skipped); every line parses', () => {
    const m = new CniMetrics();
    m.request('ADD', 'success', 0.012);
    m.request('ADD', 'timeout', 60);
    m.request('DEL', 'success', 0.004);
    m.connectPhases('vhostuser', {
      'ovsdb-commit': 1.5,
      'vswitchd-ack': 3,
      'socket-wait': 0.4,
      rename: 0.02,
      'config-file': 0.3,
    });
    m.connectPhases('vhostuser', { 'ovsdb-commit': 1.1, 'vswitchd-ack': 2, 'config-file': 0.2, cleanup: 5 }); // server mode; a phase without a label
    m.waits.observe({ stage: 'kuryrport' }, 0.2);
    m.events.inc({ reason: 'CNIWaitingForActiveVIFs' });
    const text = m.expose();
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(LINE);
    expect(text).toContain('vhostplug_cni_request_duration_seconds_count{command="ADD",result="timeout"} 1');
    expect(text).toContain('vhostplug_plug_phase_duration_seconds_count{driver="vhostuser",phase="ovsdb_commit"} 2');
    expect(text).toContain('vhostplug_plug_phase_duration_seconds_count{driver="vhostuser",phase="socket_wait"} 1');
    expect(text).toContain('vhostplug_plug_phase_duration_seconds_sum{driver="vhostuser",phase="vswitchd_ack"} 0.005');
    expect(text).toContain('vhostplug_kuryr_events_total{reason="CNIWaitingForActiveVIFs"} 1');
  });

  it("the shim daemon's request/phase events feed the same metrics", () => {
    const m = new CniMetrics();
    const d = new EventEmitter();
    observeDaemon(d, m);
    d.emit('request', { command: 'ADD', exitCode: 0, ms: 12 });
    d.emit('request', { command: 'ADD', exitCode: 1, code: 11, ms: 5 });
    d.emit('request', { command: 'DEL', exitCode: 1, code: 4, ms: 1 });
    d.emit('phase', { command: 'ADD', phase: 'ovsdb-commit', ms: 2 });
    d.emit('phase', { command: 'ADD', phase: 'config-file', ms: 0.5 });
    d.emit('phase', { command: 'ADD', phase: 'plug', ms: 9 }); // a total, not a phase: not recorded
    expect(m.requests.count({ command: 'ADD', result: 'success' })).toBe(1);
    expect(m.requests.count({ command: 'ADD', result: 'timeout' })).toBe(1);
    expect(m.requests.count({ command: 'DEL', result: 'bad_request' })).toBe(1);
    expect(m.phases.count({ driver: 'daemon', phase: 'ovsdb_commit' })).toBe(1);
    expect(m.phases.count({ driver: 'daemon', phase: 'file_write' })).toBe(1);
    expect(m.expose()).not.toContain('phase="plug"');
    expect([0, 3, 11, 7, 5, 100].map(resultOfCniCode)).toEqual([
      'success',
      'pod_gone',
      'timeout',
      'bad_request',
      'error',
      'error',
    ]);
  });

  describe('/metrics server', () => {
    let srv: MetricsServer | undefined;
    afterEach(async () => {
      await srv?.close();
      srv = undefined;
    });
    it('GET /metrics with the exposition content type; 404 elsewhere; 405 for POST', async () => {
      const m = new CniMetrics();
      m.request('ADD', 'success', 0.01);
      srv = await startMetricsServer({ port: 0, host: '127.0.0.1', metrics: m });
      const r = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      // The memory gauges are read at each scrape: compare everything but their values.
      const stable = (t: string) => t.replace(/^(vhostplug_(?:process|nodejs)_\S+) \d+$/gm, '$1 N');
      expect(stable(await r.text())).toBe(stable(m.expose()));
      expect((await fetch(`http://127.0.0.1:${srv.port}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${srv.port}/metrics`, { method: 'POST' })).status).toBe(405);
    });
  });
});

describe('health', () => {
  it('CapEff parsing for CAP_NET_ADMIN', () => {
    expect(hasCapability('Name:\tx\nCapEff:\t000001ffffffffff\n', CAP_NET_ADMIN)).toBe(true);
    expect(hasCapability('CapEff:\t0000000000000000\n', CAP_NET_ADMIN)).toBe(false);
    expect(hasCapability('CapEff:\t0000000000001000\n', CAP_NET_ADMIN)).toBe(true);
    expect(hasCapability('no caps line', CAP_NET_ADMIN)).toBe(false);
    expect(netAdminCheck('/nonexistent/status')()).toMatch(/cannot read/);
  });

  it("checks run per probe, so health RECOVERS when the cause goes away (Kuryr's flag is sticky)", async () => {
    let broken = true;
    const h = new HealthState()
      .addCheck('alive', 'dirs', () => (broken ? 'mount_point is missing' : undefined))
      .addCheck('ready', 'api', async () => undefined);
    expect(await h.probe('alive')).toEqual({ ok: false, problems: ['dirs: mount_point is missing'] });
    expect((await h.probe('ready')).ok).toBe(true);
    broken = false;
    expect(await h.probe('alive')).toEqual({ ok: true, problems: [] });
  });

  it('failures are consecutive: the counter resets on success', async () => {
    const h = new HealthState({ failuresAllowed: 3 });
    h.recordFailure('a');
    h.recordFailure('b');
    h.recordSuccess();
    h.recordFailure('c');
    h.recordFailure('d');
    expect((await h.probe('alive')).ok).toBe(true);
    h.recordFailure('e');
    const r = await h.probe('alive');
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/3 consecutive CNI requests failed .* last: e/);
    h.recordSuccess();
    expect((await h.probe('alive')).ok).toBe(true);
  });

  it('a hung or throwing check fails the probe within its deadline', async () => {
    const h = new HealthState({ checkTimeoutMs: 50 })
      .addCheck('ready', 'hung', () => new Promise<string | undefined>(() => undefined))
      .addCheck('ready', 'throws', () => {
        throw new Error('kaput');
      });
    const t0 = performance.now();
    const r = await h.probe('ready');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.problems).toEqual(['hung: no answer within 50 ms', 'throws: kaput']);
  });

  it('memory check (max_memory_usage, -1 = off)', () => {
    expect(memoryCheck(-1, () => 1e12)()).toBeUndefined();
    expect(memoryCheck(100, () => 50 * 1024 * 1024)()).toBeUndefined();
    expect(memoryCheck(100, () => 150 * 1024 * 1024)()).toMatch(/150\.0 MiB is above .* 100 MiB/);
  });

  describe('health server', () => {
    let srv: HealthServer | undefined;
    afterEach(async () => {
      await srv?.close();
      srv = undefined;
    });
    it('/ready and /alive: 200 ok, 500 with one problem per line, and back to 200', async () => {
      let ok = false;
      const h = new HealthState()
        .addCheck('ready', 'kubernetes', () => (ok ? undefined : 'unreachable'))
        .addCheck('alive', 'x', () => undefined);
      srv = await startHealthServer({ port: 0, host: '127.0.0.1', state: h });
      const get = async (p: string) => {
        const r = await fetch(`http://127.0.0.1:${srv!.port}${p}`);
        return [r.status, await r.text()] as const;
      };
      expect(await get('/ready')).toEqual([500, 'kubernetes: unreachable\n']);
      expect(await get('/alive')).toEqual([200, 'ok\n']);
      ok = true;
      expect(await get('/ready')).toEqual([200, 'ok\n']);
      expect((await get('/other'))[0]).toBe(404);
    });
  });
});
