// Proves the cluster-secret check accepts exactly the configured secret (not a prefix, a longer
// string, a second value or no value), and that a transport without a secret accepts anything.

import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { createSecretCheck, SECRET_METADATA_KEY, secretMetadata } from '../../net/auth.js';

const withValues = (...values: string[]): Metadata => {
  const metadata = new Metadata();
  for (const value of values) metadata.add(SECRET_METADATA_KEY, value);
  return metadata;
};

describe('createSecretCheck', () => {
  const check = createSecretCheck('correct horse');

  it('accepts the secret as sent by secretMetadata', () => {
    expect(check(secretMetadata('correct horse'))).toBe(true);
  });

  it('refuses missing, wrong, prefixed, extended and duplicated secrets', () => {
    expect(check(new Metadata())).toBe(false);
    expect(check(secretMetadata(undefined))).toBe(false);
    expect(check(withValues('correct'))).toBe(false);
    expect(check(withValues('correct horse '))).toBe(false);
    expect(check(withValues('wrong'))).toBe(false);
    expect(check(withValues('correct horse', 'correct horse'))).toBe(false);
  });

  it('accepts everything when no secret is configured (explicitly insecure transports)', () => {
    expect(createSecretCheck(undefined)(new Metadata())).toBe(true);
  });
});
