/** Endpoint discovery: static list, llm-d file-discovery file, DNS, Kubernetes. */
export * from './types.js';
export { StaticDiscovery } from './static-discovery.js';
export { FileDiscovery, parseDiscoveryFile, MAX_DISCOVERY_FILE_BYTES, type FileDiscoveryOptions } from './file-discovery.js';
export { DnsDiscovery, type DnsResolver, type DnsDiscoveryOptions } from './dns-discovery.js';
export { K8sDiscovery, poolSpecOf, type K8sDiscoveryOptions } from './k8s-discovery.js';
export { ListWatcher, defaultKubeConnection, inClusterConnection, kubeconfigConnection, type KubeConnection } from './kube-client.js';
export { podEndpoints, podIsServing, parseSelector, parseTargetPorts, ACTIVE_PORTS_ANNOTATION } from './pod-endpoints.js';
export { PoolMembership, type PoolMembershipOptions } from './pool-membership.js';
export { startDiscovery, type StartDiscoveryOptions } from './start-discovery.js';
export { createDiscovery, isDynamicDiscovery, type DiscoveryFlags } from './create-discovery.js';
