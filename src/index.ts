/**
 * vhostplug: vhost-user and veth ports for Kubernetes pods on Open vSwitch.
 * The package root re-exports the public API on purpose (no `export *` of internals).
 */
export { native } from './native';
