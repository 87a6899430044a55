// Cluster-secret authentication of inter-node calls. An open Raft port is a write path into every
// context, so every call carries the shared secret in metadata and the server refuses calls
// without it. Digests of equal length are compared in constant time so response timing reveals
// nothing about how much of a guessed secret was right (nor its length).

import { createHash, timingSafeEqual } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';

export const SECRET_METADATA_KEY = 'x-fastpaca-cluster-secret';

/** Decides whether a call's metadata carries the cluster secret. */
export type SecretCheck = (metadata: Metadata) => boolean;

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** True when `offered` is the secret (always, with no secret): for secrets not sent as gRPC metadata. */
export const secretMatches = (secret: string | undefined, offered: string): boolean =>
  secret === undefined || timingSafeEqual(digest(offered), digest(secret));

/** With no secret (an explicitly insecure transport) every call is accepted. */
export const createSecretCheck = (secret: string | undefined): SecretCheck => {
  if (secret === undefined) return () => true;
  const expected = digest(secret);
  return (metadata) => {
    const values = metadata.get(SECRET_METADATA_KEY);
    const offered = values.length === 1 ? values[0] : undefined;
    if (typeof offered !== 'string') return false;
    return timingSafeEqual(digest(offered), expected);
  };
};

/** Metadata for an outgoing call: a fresh object per call, since grpc-js may mutate it. */
export const secretMetadata = (secret: string | undefined): Metadata => {
  const metadata = new Metadata();
  if (secret !== undefined) metadata.set(SECRET_METADATA_KEY, secret);
  return metadata;
};
