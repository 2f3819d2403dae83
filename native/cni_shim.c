/* STUB: replaced by the vhostplug-cni shim. */
int main(void) { return 0; }
