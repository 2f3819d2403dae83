/** Process helpers for tests (src/sandbox/proc.ts). */
export * from '../../src/sandbox/proc';
