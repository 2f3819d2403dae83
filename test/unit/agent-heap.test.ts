/**
 * The daemon's V8 heap settings (src/agent/heap.ts) as shipped, the warning when they are
 * missing, and the memory gauges on /metrics.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DAEMON_V8_FLAGS, heapLimitMiB, heapPolicyWarning, KURYR_V8_FLAGS, nodeOptions } from '../../src/agent/heap';
import { CniMetrics, Gauge } from '../../src/agent/metrics';

type Container = { name: string; env?: { name: string; value?: string }[] };

describe('daemon heap policy', () => {
  it('the DaemonSet starts the daemon with exactly the flags the benchmark uses', () => {
    // Parsed, not matched as text: quoting and layout are the formatter's business.
    const docs = parseAllDocuments(fs.readFileSync(path.resolve(__dirname, '../../deploy/daemonset.yaml'), 'utf8')).map(
      (d) => d.toJS() as { kind?: string; spec?: { template: { spec: { containers: Container[] } } } },
    );
    const ds = docs.find((d) => d.kind === 'DaemonSet')!;
    const env = ds.spec!.template.spec.containers.flatMap((c) => c.env ?? []);
    expect(env.find((e) => e.name === 'NODE_OPTIONS')?.value).toBe(nodeOptions(DAEMON_V8_FLAGS));
    expect(nodeOptions(DAEMON_V8_FLAGS)).toBe('--max-old-space-size=64 --max-semi-space-size=2');
  });

  it('warns only when the heap was sized by Node from the machine, naming the flags for the mode', () => {
    expect(heapPolicyWarning(false, 70)).toBeUndefined();
    expect(heapPolicyWarning(true, 200)).toBeUndefined();
    expect(heapPolicyWarning(false, 4144)).toContain(`NODE_OPTIONS="${nodeOptions(DAEMON_V8_FLAGS)}"`);
    expect(heapPolicyWarning(true, 4144)).toContain(nodeOptions(KURYR_V8_FLAGS));
    expect(heapLimitMiB()).toBeGreaterThan(0);
  });
});

describe('memory gauges', () => {
  it('a gauge reads its value when scraped, one line per label set, sorted', () => {
    let n = 1;
    const g = new Gauge('t_gauge', 'a "test" gauge', ['k'], () => [
      [{ k: 'b' }, n],
      [{ k: 'a' }, 2.5],
    ]);
    expect(g.expose()).toBe(
      '# HELP t_gauge a "test" gauge\n# TYPE t_gauge gauge\nt_gauge{k="a"} 2.5\nt_gauge{k="b"} 1\n',
    );
    n = 7;
    expect(g.expose()).toContain('t_gauge{k="b"} 7');
    expect(() => new Gauge('bad name', 'x', [], () => [])).toThrow(TypeError);
  });

  it('every metrics page carries the RSS and the V8 heap', () => {
    const text = new CniMetrics().expose();
    const rss = /^vhostplug_process_resident_memory_bytes (\d+)$/m.exec(text);
    expect(Number(rss?.[1])).toBeGreaterThan(10 * 2 ** 20);
    for (const kind of ['used', 'total', 'limit'])
      expect(text).toMatch(new RegExp(`^vhostplug_nodejs_heap_bytes\\{kind="${kind}"\\} \\d+`, 'm'));
  });
});
