/**
 * The demo's prompts. Three topics (AI, ML, Cloud) as in the seeds' demo script, each with a
 * long system prompt (a document the assistant must use), so a prefix hit saves real prefill;
 * and new topics for the miss phase. Everything is deterministic. (The multi-client comparison's
 * workload is the bench's shared-prefix workload, run in simulated time: run-demo.ts.)
 */

export const SEED_TOPICS = ['Artificial Intelligence', 'Machine Learning', 'Cloud Computing'] as const;
export const NEW_TOPICS = ['Quantum Physics', 'Marine Biology', 'Medieval History'] as const;

const VOCAB = [
  'system', 'model', 'latency', 'cache', 'replica', 'token', 'request', 'gradient', 'cluster', 'network', 'storage',
  'compute', 'memory', 'policy', 'schedule', 'batch', 'stream', 'vector', 'matrix', 'kernel', 'service', 'region',
  'dataset', 'feature', 'signal', 'theory', 'experiment', 'history', 'protocol', 'energy', 'structure', 'function',
  'pattern', 'process', 'resource', 'balance', 'design', 'measure', 'result', 'method', 'example', 'detail',
];

/** A deterministic document of about `words` words about `topic`. */
export function topicDocument(topic: string, words: number): string {
  let h = 2166136261;
  for (let i = 0; i < topic.length; i++) h = Math.imul(h ^ topic.charCodeAt(i), 16777619) >>> 0;
  const out: string[] = [`Reference document on ${topic}.`];
  for (let i = 0; i < words; i++) {
    h = Math.imul(h ^ (i + 1), 2654435761) >>> 0;
    out.push(VOCAB[h % VOCAB.length]);
    if (i % 12 === 11) out.push(`(${topic}, section ${Math.floor(i / 12) + 1}).`);
  }
  return out.join(' ');
}

export interface DemoMessage {
  role: 'system' | 'user';
  content: string;
}

/** A chat request body about `topic` asking `question`. */
export function topicRequest(model: string, topic: string, question: string, docWords: number, maxTokens: number): Record<string, unknown> {
  const messages: DemoMessage[] = [
    { role: 'system', content: `You are an expert on ${topic}. Answer using this document.\n${topicDocument(topic, docWords)}` },
    { role: 'user', content: question },
  ];
  return { model, messages, max_tokens: maxTokens, temperature: 0, seed: 42 };
}

export const QUESTIONS = [
  'Summarise the key ideas in three sentences.',
  'What are the main trade-offs discussed?',
  'Give two practical examples.',
  'Which part matters most for production systems?',
  'Explain it to a new engineer.',
  'What are common mistakes?',
];
