// The checks of a stream request: checkStreamable's answer arrives in a pass of the event loop of
// its own, never in the microtasks of whatever resolved the read (uWS aborts the process when a
// response is upgraded inside another socket's callback, which such a microtask can be).

import { describe, expect, it } from 'vitest';

import type { ContextService } from '../../src/api/service.js';
import { checkStreamable } from '../../src/stream/stream-request.js';

const request = { contextId: 'c', cursor: 0, includeMessages: true };

describe('checkStreamable', () => {
  it('resolves after the microtasks of the read that answered it, in a later pass of the loop', async () => {
    const order: string[] = [];
    const service = { getContext: () => Promise.resolve({}) } as unknown as ContextService;
    const checked = checkStreamable(service, request).then(() => order.push('checked'));
    // However many microtask turns pass, the answer waits for the loop's check phase.
    for (let turn = 0; turn < 20; turn++) await Promise.resolve();
    order.push('microtasks drained');
    await checked;
    expect(order).toEqual(['microtasks drained', 'checked']);
  });

  it('still refuses an unknown context with the read’s error', async () => {
    const missing = Object.assign(new Error('no such context'), { code: 'context_not_found' });
    const service = { getContext: () => Promise.reject(missing) } as unknown as ContextService;
    await expect(checkStreamable(service, request)).rejects.toBe(missing);
  });
});
