/**
 * glibc's `malloc_trim(0)`, called after the idle garbage collection (src/app/idle-gc.ts): it
 * hands back to the kernel every whole free page inside malloc's heap, not only at its top. What
 * `MALLOC_TRIM_THRESHOLD_` trims is the top of the heap alone, so after a burst of 200
 * connections (socket read buffers, HTTP parsers, ZeroMQ messages, all below the mmap
 * threshold) the freed chunks left between live ones stay resident for good: measured by
 * `npm run soak`, glibc's main arena stayed at 53-88 MiB after the load against 13-29 MiB before
 * it, and one `malloc_trim(0)` took the router from 137 to 108 MiB (docs/reliability.md).
 *
 * Node has no binding for it, so it is called through koffi (a foreign-function interface with
 * prebuilt binaries, no build step). Where that is not possible (not Linux, musl's libc has no
 * `malloc_trim`, koffi's binary missing) the trim is simply not done and the reason is kept for
 * the log: the idle collection still runs.
 */

/** A loaded `malloc_trim(0)`, or why there is none. */
export type MallocTrim = { trim: () => boolean } | { unavailable: string };

let loaded: Promise<MallocTrim> | undefined;

/** Loads glibc's `malloc_trim` once per process (later calls share the first result). */
export function loadMallocTrim(): Promise<MallocTrim> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<MallocTrim> {
  if (process.platform !== 'linux') return { unavailable: `no glibc on ${process.platform}` };
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  if (!report?.header?.glibcVersionRuntime) return { unavailable: 'the C library is not glibc (musl has no malloc_trim)' };
  try {
    const koffi = (await import('koffi')).default;
    const fn = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return { trim: () => fn(0) === 1 };
  } catch (err) {
    return { unavailable: `koffi could not call malloc_trim (${(err as Error).message})` };
  }
}
