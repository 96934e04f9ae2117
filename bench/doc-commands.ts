/**
 * The shell commands shown in README.md and docs/*.md, and a check that every `kvroute` command
 * among them only uses flags its subcommand has (read from `kvroute <sub> --help`), so a renamed
 * or removed flag cannot linger in the docs. Used by bench/check-doc-commands.ts (which also runs
 * the commands that can run offline) and by test/integration/doc-commands.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** One command from a fenced shell block. */
export interface DocCommand {
  /** File relative to the repository root. */
  file: string;
  /** 1-based line of the command's first line. */
  line: number;
  /** The command, continuation lines joined, trailing comment removed. */
  text: string;
}

/** Removes a trailing `# comment` that is outside quotes. */
export function stripComment(line: string): string {
  let q: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q !== undefined) {
      if (c === q) q = undefined;
    } else if (c === "'" || c === '"') q = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** The commands in the ```bash / ```sh / ```shell blocks of a Markdown text. */
export function extractCommands(markdown: string, file: string): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  let pending: DocCommand | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (/^```/.test(raw)) {
      inBlock = !inBlock && /^```(bash|sh|shell)\s*$/.test(raw);
      pending = undefined;
      continue;
    }
    if (!inBlock) continue;
    const line = stripComment(raw);
    if (pending !== undefined) {
      pending.text += ' ' + line.replace(/\\$/, '').trim();
      if (!line.endsWith('\\')) pending = undefined;
      continue;
    }
    if (line.trim() === '') continue;
    const cmd: DocCommand = { file, line: i + 1, text: line.replace(/\\$/, '').trim() };
    out.push(cmd);
    if (line.endsWith('\\')) pending = cmd;
  }
  for (const c of out) c.text = c.text.replace(/\s+/g, ' ').trim();
  return out;
}

/** Every command of README.md and docs/*.md under `root`. */
export function docCommands(root: string): DocCommand[] {
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
  return files.flatMap((f) => extractCommands(readFileSync(join(root, f), 'utf8'), f));
}

/** A `kvroute` invocation inside a command: its subcommand and the flags it uses. */
export interface KvrouteCall {
  subcommand: string;
  flags: string[];
}

/** Splits a shell command into words (quotes respected, not interpreted further). */
export function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let q: string | undefined;
  let has = false;
  for (const c of s) {
    if (q !== undefined) {
      if (c === q) q = undefined;
      else cur += c;
    } else if (c === "'" || c === '"') {
      q = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur !== '') words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
    }
  }
  if (has || cur !== '') words.push(cur);
  return words;
}

/** The kvroute calls of a command (`npx kvroute`, `kvroute`, `node dist/src/cli/main.js`), split at `&&`, `|`, `;`. */
export function kvrouteCalls(text: string): KvrouteCall[] {
  const calls: KvrouteCall[] = [];
  for (const seg of text.split(/&&|\|\||\||;(?=\s)/)) {
    const w = shellWords(seg.trim());
    let i = 0;
    if (w[0] === 'npx' && w[1] === 'kvroute') i = 2;
    else if (w[0] === 'kvroute') i = 1;
    else if (w[0] === 'node' && /dist\/src\/cli\/main\.js$/.test(w[1] ?? '')) i = 2;
    else continue;
    const sub = w[i];
    if (sub === undefined || sub.startsWith('-')) {
      calls.push({ subcommand: '', flags: w.slice(i).filter((x) => x.startsWith('--')).map((x) => x.split('=')[0]) });
      continue;
    }
    calls.push({ subcommand: sub, flags: w.slice(i + 1).filter((x) => x.startsWith('--')).map((x) => x.split('=')[0]) });
  }
  return calls;
}

/** The flags `kvroute <sub> --help` lists (`--x`, `--no-x`), read once per subcommand. */
export function helpFlags(cli: string, sub: string, cache = new Map<string, Set<string>>()): Set<string> {
  let flags = cache.get(sub);
  if (flags === undefined && sub !== '') {
    const top = execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
    const commands = top.slice(top.indexOf('Commands:'));
    if (!new RegExp(`^\\s+${sub.replace(/[^a-z0-9-]/gi, '')}\\b`, 'm').test(commands)) throw new Error(`no subcommand ${sub}`);
  }
  if (flags === undefined) {
    const args = sub === '' ? [cli, '--help'] : [cli, sub, '--help'];
    const text = execFileSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, KVROUTE_LOG_LEVEL: 'silent' } });
    flags = new Set(['--help', ...(text.match(/--[a-z0-9][a-z0-9-]*/g) ?? [])]);
    cache.set(sub, flags);
  }
  return flags;
}

/** Problems of one command: unknown subcommands or flags (empty when none). */
export function checkFlags(cmd: DocCommand, cli: string, cache = new Map<string, Set<string>>()): string[] {
  const problems: string[] = [];
  for (const call of kvrouteCalls(cmd.text)) {
    let known: Set<string>;
    try {
      known = helpFlags(cli, call.subcommand, cache);
    } catch {
      problems.push(`${cmd.file}:${cmd.line}: "kvroute ${call.subcommand}" is not a kvroute command`);
      continue;
    }
    for (const f of call.flags) if (!known.has(f)) problems.push(`${cmd.file}:${cmd.line}: kvroute ${call.subcommand} has no flag ${f} (${cmd.text})`);
  }
  return problems;
}
