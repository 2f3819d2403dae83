/** dpdk-testpmd, the pod's DPDK application in tests (src/sandbox/testpmd.ts). */
export * from '../../src/sandbox/testpmd';
