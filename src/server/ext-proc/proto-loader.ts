/**
 * Loads the vendored Envoy ext_proc proto subset (`proto/`, from Envoy v1.40.0) with
 * `@grpc/proto-loader`. The .proto files are read from the package's source tree
 * (`src/server/ext-proc/proto`, listed in package.json "files"), found relative to this module,
 * so the same path works from `src/` (ts) and `dist/src/` (compiled).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync, type PackageDefinition, type Options } from '@grpc/proto-loader';
import { KvrError } from '../../core/errors.js';

/** The fully-qualified ext_proc service name (also a gRPC health service name). */
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/** proto-loader options: snake_case fields, Buffers for bytes, enum names, the oneof name as a field. */
export const PROTO_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

/** The folder holding the vendored `envoy/...` proto tree. */
export function extProcProtoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/server/ext-proc (ts) or dist/src/server/ext-proc (compiled): find the package root.
  const candidates = [join(here, 'proto'), resolve(here, '../../../../src/server/ext-proc/proto')];
  for (const c of candidates) if (existsSync(join(c, 'envoy/service/ext_proc/v3/external_processor.proto'))) return c;
  throw new KvrError('KVR_ERR_CONFIG', `the Envoy ext_proc protos are missing (looked in ${candidates.join(', ')}); reinstall kvroute`);
}

let cached: PackageDefinition | undefined;

/** The package definition of `envoy/service/ext_proc/v3/external_processor.proto` (loaded once). */
export function loadExtProcPackage(): PackageDefinition {
  cached ??= loadSync('envoy/service/ext_proc/v3/external_processor.proto', { ...PROTO_OPTIONS, includeDirs: [extProcProtoDir()] });
  return cached;
}
