import { describe, expect, it } from 'vitest';

import { createBodyChecks } from '../../src/api/body-checks.js';
import type { AppendRequest } from '../../src/api/domain.js';
import { ServiceError } from '../../src/api/errors.js';
import { defaultRequestLimits } from '../../src/api/schemas.js';

const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof ServiceError ? error.code : 'not a ServiceError';
  }
};

describe('body checks: one set of rules, applied once', () => {
  const gateway = createBodyChecks(defaultRequestLimits);
  const service = createBodyChecks(defaultRequestLimits);
  const body = { message: { role: 'user', parts: [{ type: 'text', text: 'hi' }], extra: 1 }, if_version: 0 };

  it('passes a value the gateway built straight through the service (the same object)', () => {
    const request = gateway.append(body, 'key-1');
    expect(request).toEqual({
      message: { role: 'user', parts: [{ type: 'text', text: 'hi' }] },
      if_version: 0,
      idempotency_key: 'key-1',
    });
    expect(service.ensureAppend(request)).toBe(request);
    const put = gateway.contextPut({ token_budget: 10 });
    expect(service.ensureContextPut(put)).toBe(put);
  });

  it('checks a value from any other caller by the same rules as the gateway', () => {
    const longName = 'r'.repeat(defaultRequestLimits.nameLengthMax + 1);
    const lying: AppendRequest = { message: { role: longName, parts: [{ type: 'text' }] } };
    expect(codeOf(() => gateway.append({ message: lying.message }, undefined))).toBe('invalid_message');
    expect(codeOf(() => service.ensureAppend(lying))).toBe('invalid_message');
    expect(
      codeOf(() =>
        service.ensureAppend({ message: { role: 'u', parts: [{ type: 't' }] }, idempotency_key: '' }),
      ),
    ).toBe('invalid_message');
    expect(codeOf(() => service.ensureMetadataPatch([] as unknown as Record<string, never>))).toBe(
      'invalid_metadata',
    );
    expect(codeOf(() => service.ensureCompact({ replacement: [{ role: '', parts: [{ type: 't' }] }] }))).toBe(
      'invalid_replacement',
    );
    expect(codeOf(() => service.ensureContextPut({ token_budget: 0 }))).toBe('invalid_context_config');
  });

  it('rebuilds an unchecked value without its unknown fields, as the gateway does', () => {
    const unchecked = {
      message: { role: 'u', parts: [{ type: 't' }], stray: true },
    } as unknown as AppendRequest;
    expect(service.ensureAppend(unchecked)).toEqual({ message: { role: 'u', parts: [{ type: 't' }] } });
  });
});
