// The TLS directory (tls.crt, tls.key, ca.crt) is read and checked at start-up, so a wrong file is
// one configuration error naming the option, not a failed handshake later.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { loadNodeTls } from '../../src/node/tls-files.js';
import { configErrorOf, useTempDirs } from './helpers.js';

/** A self-signed certificate and its key in `dir`, as tls.crt and tls.key. */
const selfSigned = (dir: string, name: string): string => {
  mkdirSync(dir, { recursive: true });
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'].concat([
      '-subj',
      `/CN=${name}`,
      '-keyout',
      join(dir, 'tls.key'),
      '-out',
      join(dir, 'tls.crt'),
    ]),
    { stdio: 'pipe' },
  );
  return dir;
};

describe('the TLS directory', () => {
  const tempDir = useTempDirs();

  it('reads a certificate, its key and the CA; without ca.crt, HTTPS only (a single node)', () => {
    const dir = selfSigned(join(tempDir(), 'tls'), 'node');
    expect(loadNodeTls(undefined, true)).toBe(undefined);
    const alone = loadNodeTls(dir, false);
    expect(alone).toEqual({
      http: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
      peer: undefined,
    });
    copyFileSync(join(dir, 'tls.crt'), join(dir, 'ca.crt'));
    expect(loadNodeTls(dir, true)?.peer?.ca.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('names the option and the file when a file is missing, malformed or mismatched, or a cluster lacks the CA', () => {
    const root = tempDir();
    const dir = selfSigned(join(root, 'node'), 'node');
    const other = selfSigned(join(root, 'other'), 'other');
    const noCa = configErrorOf(() => loadNodeTls(dir, true));
    expect(noCa.option).toBe('tlsDir');
    expect(noCa.message).toContain('ca.crt is missing');

    const missing = configErrorOf(() => loadNodeTls(join(root, 'nowhere'), false));
    expect(missing.option).toBe('tlsDir');
    expect(missing.message).toContain('tls.crt cannot be read (ENOENT)');

    copyFileSync(join(other, 'tls.key'), join(dir, 'tls.key'));
    expect(configErrorOf(() => loadNodeTls(dir, false)).message).toContain('is not the private key of');
    writeFileSync(join(dir, 'tls.key'), 'not a key');
    expect(configErrorOf(() => loadNodeTls(dir, false)).message).toContain(
      'tls.key is not a PEM private key',
    );
  });
});
