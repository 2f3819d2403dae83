/**
 * Test-side helpers around the private OVS sandbox (src/sandbox/ovs-sandbox.ts).
 */
import { afterAll, beforeAll } from 'vitest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/ovs-sandbox';

export * from '../../src/sandbox/ovs-sandbox';

/**
 * One sandbox for a whole `describe` block: started in beforeAll, stopped in afterAll.
 * Returns a getter to call inside tests.
 */
export function useSandbox(opts: SandboxOptions = {}): () => Sandbox {
  let sb: Sandbox | undefined;
  beforeAll(async () => {
    sb = await startSandbox(opts);
  });
  afterAll(async () => {
    await sb?.stop();
  });
  return () => {
    if (!sb) throw new Error('useSandbox: the sandbox is not started (use the getter inside tests)');
    return sb;
  };
}
