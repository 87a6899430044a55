// Bearer-key authentication of /v1 routes. Keys are compared as SHA-256 digests with
// crypto.timingSafeEqual, so neither the content nor the length of a key leaks through timing, and
// every configured key is compared on every request (no early exit reveals which key matched or
// how many are configured). Several keys are allowed so operators can rotate without downtime.
//
// Protected mode (as Redis has it): a node without an API key serves /v1 to clients on this
// machine only, so starting one on a public address does not expose an open write API by accident.
// Setting a key, or turning protected mode off, serves the network.

import { createHash, timingSafeEqual } from 'node:crypto';

/** The index of the configured key an Authorization header value carries, or -1. */
export type Authenticator = (authorizationHeader: string) => number;

const bearerPrefix = 'bearer ';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Undefined when no keys are configured: authentication is then off. */
export const createAuthenticator = (apiKeys: readonly string[]): Authenticator | undefined => {
  const keyDigests = apiKeys.filter((key) => key.length > 0).map(digest);
  if (keyDigests.length === 0) return undefined;
  return (authorizationHeader) => {
    // The auth scheme is case-insensitive (RFC 9110 §11.1); the key is not.
    if (authorizationHeader.slice(0, bearerPrefix.length).toLowerCase() !== bearerPrefix) return -1;
    const presented = digest(authorizationHeader.slice(bearerPrefix.length).trim());
    let matched = -1;
    keyDigests.forEach((keyDigest, index) => {
      if (timingSafeEqual(presented, keyDigest)) matched = index;
    });
    return matched;
  };
};

/**
 * Whether a client at `remoteAddress` (as uWS reports it: "127.0.0.1", "::1", "::ffff:127.0.0.1")
 * may use an API that has no key. Only loopback addresses may, while protected mode is on.
 */
export const allowedWithoutKey = (remoteAddress: string, protectedMode: boolean): boolean =>
  !protectedMode || isLoopbackAddress(remoteAddress);

const isLoopbackAddress = (address: string): boolean => {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return (
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) ||
    /^(0{0,4}:){2,7}0{0,3}1$/.test(address) ||
    address === '::1'
  );
};
