import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real ovsdb-server / DPDK ovs-vswitchd sandboxes; the
    // machines have two cores, so run files one at a time to keep timings sane.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
