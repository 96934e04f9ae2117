/** Public API of kvroute's request tokenization (exact vLLM token ids for precise routing). */
export {
  RequestTokenizer,
  createRequestTokenizer,
  completionPrompt,
  requestTokenizerConfigSchema,
  type RequestTokenizerConfig,
  type RequestTokenizerStats,
} from './request-tokenizer.js';
export { loadEncoder, encodeFull, type EncoderSpec, type TokenEncoder, type SafeCutRule } from './encoder.js';
export { PrefixTokenCache, type PrefixCacheOptions, type PrefixCacheStats, type TokenizePlan } from './prefix-cache.js';
export { TokenizeWorkerPool, type WorkerPoolStats, type WorkerPoolOptions } from './worker-pool.js';
export { ByteLevelBpe, type FastBpeStats, type PieceSplit } from './fast-bpe.js';
export {
  ChatRenderer,
  LLAMA3_CHAT_TEMPLATE,
  chatOptionsFromBody,
  normalizeMessages,
  detectContentFormat,
  cutAfterFinalMessage,
  pickChatTemplate,
  type ChatRenderOptions,
  type ContentFormat,
  type TemplateMessage,
} from './vllm-chat.js';
