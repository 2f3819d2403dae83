/**
 * The CLI reaches the development tools (src/bench) lazily, so the published package,
 * which leaves them out, still starts and says clearly why `bench`/`demo` are missing.
 */
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands';
import { toolCommand } from '../../src/cli/tools';
import { UsageError } from '../../src/core/errors';

describe('development tools in the CLI', () => {
  it('lists bench and demo, and loads them on first use with the summary they declare', async () => {
    for (const name of ['bench', 'demo']) {
      const listed = commands.find((c) => c.name === name)!;
      expect(listed, name).toBeDefined();
      expect(await listed.loadUsage!([])).toContain(`vhostplug ${name}`);
      const mod =
        name === 'bench'
          ? (await import('../../src/bench/command')).benchCommand
          : (await import('../../src/bench/demo')).demoCommand;
      expect(listed.summary).toBe(mod.summary);
    }
  });

  it("`bench <scenario> --help` is the scenario's own usage; an unknown scenario gets the bench usage", async () => {
    const bench = commands.find((c) => c.name === 'bench')!;
    expect(await bench.loadUsage!(['churn', '--help'])).toMatch(/^\s*usage: vhostplug bench churn /);
    expect(await bench.loadUsage!(['faults', '--help'])).toMatch(/^\s*usage: vhostplug bench faults /);
    expect(await bench.loadUsage!(['nope', '--help'])).toMatch(/^\s*usage: vhostplug bench <scenario>/);
  });

  it('a tool missing from the install is a usage error naming the command, not a crash', async () => {
    const missing = toolCommand('bench', 'measure', async () => {
      throw Object.assign(
        new Error(
          "Cannot find module '../bench/command'\nRequire stack:\n- /usr/lib/node_modules/vhostplug/dist/cli/commands.js",
        ),
        { code: 'MODULE_NOT_FOUND' },
      );
    });
    const err = await missing.run([]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({
      code: 'EUSAGE',
      exitCode: 1,
      message: expect.stringContaining('"vhostplug bench" is a development tool'),
    });
    await expect(missing.loadUsage!([])).rejects.toThrow(UsageError);
    // Any other failure to load is not disguised.
    const broken = toolCommand('demo', 'x', async () => {
      throw new TypeError('boom');
    });
    await expect(broken.run([])).rejects.toThrow('boom');
  });
});
