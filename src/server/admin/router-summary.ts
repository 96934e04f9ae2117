/**
 * The router's configuration as the admin port reports it (`GET /debug/stats`, the dashboard):
 * what `kvroute doctor` compares against the endpoints (block size, whether KV events are
 * expected, the scorers in use).
 */
import type { Scheduler } from '../../scheduling/types.js';

/** One scorer of the profile in use. */
export interface ScorerSummary {
  name: string;
  type: string;
  weight: number;
}

/** Summary of the running router's configuration. */
export interface RouterSummary {
  gatewayUrl: string;
  adminUrl: string;
  profile: string | null;
  scorers: ScorerSummary[];
  picker: string | null;
  filters: string[];
  /** Token block size the router keys blocks with (precise routing); null when it does not tokenize. */
  blockSize: number | null;
  /** True when the router expects KV events (a precise prefix scorer is configured). */
  kvEventsExpected: boolean;
  endpoints: Array<{ id: string; url: string; address: string }>;
}

/** Builds the summary from the scheduler (its profile, when it exposes one) and known facts. */
export function summarizeRouter(input: {
  scheduler: Scheduler;
  gatewayUrl: string;
  adminUrl: string;
  endpoints: ReadonlyArray<{ id: string; url: string; address: string }>;
  blockSize?: number;
  kvEventsExpected?: boolean;
}): RouterSummary {
  type P = { name: string; scorers: ReadonlyArray<{ scorer: { name: string; type: string }; weight: number }>; picker: { type: string }; filters: ReadonlyArray<{ type: string }> };
  const profile = (input.scheduler as { profile?: P }).profile;
  const scorers = (profile?.scorers ?? []).map((s) => ({ name: s.scorer.name, type: s.scorer.type, weight: s.weight }));
  // Events are expected when a precise scorer has an index to feed (services attached); one
  // without services routes approximately by design (e.g. the default profile with no events).
  const precise = (profile?.scorers ?? []).some((s) => s.scorer.type === 'precise-prefix-cache-scorer' && (s.scorer as { precise?: boolean }).precise === true);
  return {
    gatewayUrl: input.gatewayUrl,
    adminUrl: input.adminUrl,
    profile: profile?.name ?? null,
    scorers,
    picker: profile?.picker.type ?? null,
    filters: (profile?.filters ?? []).map((f) => f.type),
    blockSize: input.blockSize ?? null,
    kvEventsExpected: input.kvEventsExpected ?? precise,
    endpoints: input.endpoints.map((e) => ({ id: e.id, url: e.url, address: e.address })),
  };
}
