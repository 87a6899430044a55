// The node's TLS material, read and checked once at start-up from one directory laid out as a
// Kubernetes TLS secret (cert-manager writes the same names): tls.crt (this node's certificate and
// chain), tls.key, and ca.crt (the CA that signed every node's certificate). A missing, unreadable or
// malformed file, or a key that does not belong to the certificate, stops the start with one line
// naming the option, as every other configuration problem does, instead of failing later inside a
// handshake.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { PeerTls } from '../../net/grpc.js';
import { ConfigError } from '../config/config-error.js';

export interface NodeTls {
  /** The HTTP port serves HTTPS with these files. */
  readonly http: { readonly certFile: string; readonly keyFile: string };
  /** Mutual TLS between nodes (gRPC and the internal HTTP calls); absent without ca.crt. */
  readonly peer: PeerTls | undefined;
}

export const tlsFileNames = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;

/**
 * Undefined without a directory. In a cluster ca.crt is required: peers are verified against it, and
 * without it the nodes could not trust each other.
 */
export const loadNodeTls = (dir: string | undefined, clustered: boolean): NodeTls | undefined => {
  if (dir === undefined) return undefined;
  const certFile = join(dir, tlsFileNames.cert);
  const keyFile = join(dir, tlsFileNames.key);
  const caFile = join(dir, tlsFileNames.ca);
  const cert = read(certFile);
  const key = read(keyFile);
  const certificate = parse(certFile, 'a PEM certificate', () => new X509Certificate(cert));
  const privateKey = parse(keyFile, 'a PEM private key', () => createPrivateKey(key));
  if (!certificate.checkPrivateKey(privateKey)) problem(`${keyFile} is not the private key of ${certFile}`);
  if (!existsSync(caFile)) {
    if (clustered)
      problem(`${caFile} is missing: a cluster needs the CA that signed every node's certificate`);
    return { http: { certFile, keyFile }, peer: undefined };
  }
  const ca = read(caFile);
  parse(caFile, 'a PEM CA certificate', () => new X509Certificate(ca));
  return { http: { certFile, keyFile }, peer: { ca, cert, key } };
};

const problem = (detail: string): never => {
  throw new ConfigError(`FASTPACA_TLS_DIR (tls.dir): ${detail}`, { option: 'tlsDir' });
};

const read = (path: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return problem(`${path} cannot be read (${reason})`);
  }
};

const parse = <T>(path: string, expected: string, build: () => T): T => {
  try {
    return build();
  } catch {
    return problem(`${path} is not ${expected}`);
  }
};
