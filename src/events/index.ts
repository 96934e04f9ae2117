/** Public API of KV-cache event ingestion (vLLM's ZeroMQ KV events). */
export type {
  KvEvent,
  KvEventBatch,
  KvEventSink,
  BlockStoredEvent,
  BlockRemovedEvent,
  AllBlocksClearedEvent,
  EventIngestStats,
  EndpointEventStats,
} from './types.js';
export { encodeEventBatch, decodeEventBatch, decodeEvent, normalizeHash, type EventEncoding, type EncodeOptions, type DecodedBatch } from './codec.js';
export { EventIngestor, ingestEndpointOf, type EventIngestorOptions, type IngestEndpoint } from './event-ingestor.js';
export { fetchReplay, type ReplayedBatch, type ReplayOptions } from './replay-client.js';
export { END_SEQ, encodeSeq, decodeSeq, isEndSeq, formatTopic, parseTopic, vllmBinds } from './wire.js';
export { RecordingSink, type RecordedBatch } from './recording-sink.js';
