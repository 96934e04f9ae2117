/**
 * glibc malloc settings the router runs with in its container image (deploy/Dockerfile `ENV`)
 * and Helm chart (the kvroute container's `env`); `npm run soak` gives the router the same.
 *
 * Why: every thread that mallocs gets its own arena (64 MiB heaps), and glibc returns an arena's
 * free memory only from its top. A KV-event flood makes libzmq's I/O thread allocate ~1 MiB
 * message buffers in its arena; after the flood that arena stayed resident (55-65 MiB of RSS
 * that never went back, measured with `npm run soak`, docs/reliability.md). One arena, a fixed
 * mmap threshold (128 KiB: glibc's initial one, which it otherwise raises to the largest block
 * freed so far, up to 32 MiB, after which 1 MiB buffers come from the arenas) and a 128 KiB trim
 * threshold bring the router's RSS after the soak back to its idle size. 64 KiB is not used: a
 * threshold at or below Node's 64 KiB socket read buffers would map and unmap one per read.
 * glibc reads these only at process start, so they must be in the environment that starts
 * Node; they are ignored on musl.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '1',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
});
