import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CHUNK_BYTES, destinationMetadata, headerMutation, readHeaderMap, streamedBodyReplies } from './ext-proc-messages.js';
import { readSubsetHint, readMetadataString } from './subset-hint.js';
import { fromProtoStruct, toProtoStruct } from './struct-value.js';

test('streamedBodyReplies: chunks of at most 62,000 B, end_of_stream only on the last, bytes preserved', () => {
  for (const size of [1, MAX_CHUNK_BYTES, MAX_CHUNK_BYTES + 1, 3 * MAX_CHUNK_BYTES + 17]) {
    const body = Buffer.alloc(size, 7);
    body[size - 1] = 9;
    const replies = streamedBodyReplies('request_body', body, true);
    assert.equal(replies.length, Math.ceil(size / MAX_CHUNK_BYTES));
    const parts = replies.map((r) => r.request_body!.response.body_mutation!.streamed_response!);
    assert.ok(parts.every((p) => p.body.length > 0 && p.body.length <= MAX_CHUNK_BYTES));
    assert.deepEqual(parts.map((p) => p.end_of_stream), parts.map((_, i) => i === parts.length - 1));
    assert.ok(Buffer.concat(parts.map((p) => p.body)).equals(body));
  }
  assert.equal(streamedBodyReplies('response_body', Buffer.alloc(10), false).at(-1)!.response_body!.response.body_mutation!.streamed_response!.end_of_stream, false);
});

test('streamedBodyReplies: an empty body gives one empty end_of_stream chunk, or nothing when not the end (never an empty non-final reply)', () => {
  const eos = streamedBodyReplies('response_body', Buffer.alloc(0), true);
  assert.equal(eos.length, 1);
  assert.equal(eos[0].response_body!.response.body_mutation!.streamed_response!.end_of_stream, true);
  assert.equal(streamedBodyReplies('response_body', Buffer.alloc(0), false).length, 0);
});

test('readHeaderMap: lower-cased keys, raw_value before value, repeats joined, keyless entries skipped', () => {
  const m = readHeaderMap({ headers: [{ key: 'X-A', raw_value: Buffer.from('1') }, { key: 'x-a', value: '2' }, { key: 'b', value: 'v', raw_value: Buffer.alloc(0) }, { key: undefined as unknown as string, value: 'x' }] });
  assert.equal(m.get('x-a'), '1, 2');
  assert.equal(m.get('b'), 'v');
  assert.equal(m.size, 2);
});

test('headerMutation overwrites (OVERWRITE_IF_EXISTS_OR_ADD) with raw_value and lists removals', () => {
  const h = headerMutation({ 'content-length': '12' }, ['x-gateway-destination-endpoint-subset']);
  assert.equal(h.set_headers![0].append_action, 'OVERWRITE_IF_EXISTS_OR_ADD');
  assert.equal(h.set_headers![0].header.raw_value!.toString(), '12');
  assert.deepEqual(h.remove_headers, ['x-gateway-destination-endpoint-subset']);
});

test('destination metadata round-trips through Struct: envoy.lb -> x-gateway-destination-endpoint', () => {
  assert.deepEqual(fromProtoStruct(destinationMetadata('10.0.0.1:8000,10.0.0.2:8000')), { 'envoy.lb': { 'x-gateway-destination-endpoint': '10.0.0.1:8000,10.0.0.2:8000' } });
});

test('readSubsetHint: list, CSV with spaces, empty list = none qualifies, absent = no hint, junk ignored', () => {
  const md = (v: unknown) => ({ 'envoy.lb.subset_hint': toProtoStruct({ 'x-gateway-destination-endpoint-subset': v }) });
  assert.deepEqual([...readSubsetHint(md(['a:1', 'b:2']))!], ['a:1', 'b:2']);
  assert.deepEqual([...readSubsetHint(md(' a:1 , b:2,,'))!], ['a:1', 'b:2']);
  assert.equal(readSubsetHint(md([]))!.size, 0);
  assert.equal(readSubsetHint(md(42))!.size, 0);
  assert.deepEqual([...readSubsetHint(md(['a:1', 7, null]))!], ['a:1']);
  assert.equal(readSubsetHint(undefined), undefined);
  assert.equal(readSubsetHint({ other: toProtoStruct({}) }), undefined);
  assert.equal(readMetadataString({ 'envoy.lb': toProtoStruct({ 'x-gateway-destination-endpoint-served': '1.2.3.4:5' }) }, 'envoy.lb', 'x-gateway-destination-endpoint-served'), '1.2.3.4:5');
});
