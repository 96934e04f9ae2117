/**
 * Prints a {@link DoctorReport}: one line per finding (`[OK]`, `[WARN]`, `[FAIL]`, `[SKIP]`), the
 * fix indented under each warning and failure, and a summary line. `--json` prints the report
 * object itself ({@link doctorJson}).
 */
import type { DoctorReport, FindingLevel } from './doctor-types.js';

const TAG: Record<FindingLevel, string> = { ok: '[OK]  ', warn: '[WARN]', fail: '[FAIL]', skip: '[SKIP]' };

/** Human-readable report. `verbose` also lists ok and skipped findings (default: yes). */
export function formatDoctorReport(r: DoctorReport, opts: { verbose?: boolean } = {}): string {
  const verbose = opts.verbose ?? true;
  const lines: string[] = [];
  lines.push(`kvroute doctor: ${r.endpoints.length} endpoint(s)${r.router ? ', router inspected' : ''}${r.windowMs > 0 ? `, ${r.windowMs} ms sampling window` : ''}${r.probes.length > 0 ? `, ${r.probes.length} probe(s)` : ''}`);
  for (const f of r.findings) {
    if (!verbose && (f.level === 'ok' || f.level === 'skip')) continue;
    lines.push(`${TAG[f.level]} ${f.check}${f.endpoint ? ` [${f.endpoint}]` : ''}: ${f.message}`);
    if (f.fix && (f.level === 'warn' || f.level === 'fail')) lines.push(`       fix: ${f.fix}`);
  }
  lines.push(`${r.counts.fail} failed, ${r.counts.warn} warnings, ${r.counts.ok} ok, ${r.counts.skip} skipped`);
  return lines.join('\n');
}

/** The machine-readable report. */
export function doctorJson(r: DoctorReport): string {
  return JSON.stringify(r, null, 2);
}
