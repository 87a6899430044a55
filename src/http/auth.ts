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
 * Whether a client at `remoteAddress` (as uWS's getRemoteAddress gives it: 4 bytes for IPv4, 16 for
 * IPv6) may use an API that has no key. Only loopback addresses may, while protected mode is on:
 * 127.0.0.0/8, ::1 and 127.0.0.0/8 mapped into IPv6 (::ffff:127.x.x.x). The bytes, not the text: this
 * runs on every request of a node without a key, and formatting the address as text cost about 4 % of
 * a loaded node's main thread.
 */
export const allowedWithoutKey = (remoteAddress: Uint8Array, protectedMode: boolean): boolean =>
  !protectedMode || isLoopbackAddress(remoteAddress);

const isLoopbackAddress = (address: Uint8Array): boolean => {
  if (address.length === 4) return address[0] === 127;
  if (address.length !== 16) return false;
  for (let i = 0; i < 10; i += 1) if (address[i] !== 0) return false;
  const mapped = address[10] === 0xff && address[11] === 0xff;
  if (mapped) return address[12] === 127;
  if (address[10] !== 0 || address[11] !== 0) return false;
  // ::1
  return address[12] === 0 && address[13] === 0 && address[14] === 0 && address[15] === 1;
};
