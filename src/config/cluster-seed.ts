// FASTPACA_CLUSTER_SEED: how a node finds its peers. A comma-separated list of `host:port` entries
// naming peers' HTTP ports; an entry without a port uses this node's own HTTP port. Discovery
// resolves every host to *all* of its addresses, so one DNS name that resolves to every node
// (a Kubernetes headless service, `fastpaca.internal:4000`) is a complete seed on its own.
import { Type } from '@sinclair/typebox';
import { splitList, type OptionKind } from './option-kinds.js';

export interface SeedPeer {
  readonly host: string;
  readonly port: number;
}

const seedSchema = () =>
  Type.Array(
    Type.Object({
      host: Type.String({ minLength: 1, maxLength: 253 }),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
    }),
    { maxItems: 128 },
  );

// RFC 1123 host names (labels of letters, digits and inner hyphens) and dotted IPv4 addresses.
const hostnamePattern =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const bracketedIpv6Pattern = /^\[([0-9A-Fa-f:.]+)\]$/;
const portPattern = /^\d{1,5}$/;

/** Parses `host`, `host:port`, `[v6]` or `[v6]:port`; undefined when the entry is not one of these. */
export const parseSeedEntry = (entry: string, defaultPort: number): SeedPeer | undefined => {
  const { hostPart, portPart } = splitHostPort(entry.trim());
  const port = portPart === undefined ? defaultPort : portPattern.test(portPart) ? Number(portPart) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const v6 = bracketedIpv6Pattern.exec(hostPart);
  if (v6?.[1] !== undefined) return { host: v6[1], port };
  return hostnamePattern.test(hostPart) ? { host: hostPart, port } : undefined;
};

const splitHostPort = (entry: string): { hostPart: string; portPart: string | undefined } => {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0 || close === entry.length - 1) return { hostPart: entry, portPart: undefined };
    return entry[close + 1] === ':'
      ? { hostPart: entry.slice(0, close + 1), portPart: entry.slice(close + 2) }
      : { hostPart: entry, portPart: '' };
  }
  const colon = entry.lastIndexOf(':');
  return colon < 0
    ? { hostPart: entry, portPart: undefined }
    : { hostPart: entry.slice(0, colon), portPart: entry.slice(colon + 1) };
};

const parseEntries = (entries: readonly unknown[], defaultPort: number): SeedPeer[] | undefined => {
  const peers: SeedPeer[] = [];
  for (const entry of entries) {
    const peer = typeof entry === 'string' ? parseSeedEntry(entry, defaultPort) : undefined;
    if (peer === undefined) return undefined;
    peers.push(peer);
  }
  return peers;
};

export const clusterSeed = (): OptionKind<ReturnType<typeof seedSchema>> => ({
  schema: seedSchema(),
  expect: 'a comma-separated list of host:port (or one DNS name resolving to every node)',
  coerce: (raw, context) => {
    const entries =
      typeof raw === 'string' ? splitList(raw) : Array.isArray(raw) ? (raw as unknown[]) : undefined;
    if (entries === undefined) return raw;
    return parseEntries(entries, context.port) ?? raw;
  },
});

/** The seed in its documented text form, for logs and `fastpaca config check`. */
export const formatSeed = (peers: readonly SeedPeer[]): string =>
  peers
    .map((peer) => (peer.host.includes(':') ? `[${peer.host}]:${peer.port}` : `${peer.host}:${peer.port}`))
    .join(',');
