// `fastpaca cluster remove <node>`: drains a node before it is switched off. It marks the node
// leaving (the membership group's leader commits it), then watches every member's status until no
// group's leader counts the node as a replica any more (the groups' leaders move the replicas:
// learner, catch-up, promote, remove), then drops the node from the member list and waits until
// the membership group has let it go too. Every wait is bounded by --timeout.

import { setTimeout as sleep } from 'node:timers/promises';

import {
  clusterSecretHeader,
  forgetPath,
  leavePath,
  statusPath,
} from '../cluster/membership/internal-protocol.js';
import type { NodeStatusLike } from '../cluster/membership/removal-progress.js';
import { removalProgress } from '../cluster/membership/removal-progress.js';
import { exitCodes } from './exit-codes.js';

export interface RemoveIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export interface RemoveOptions {
  readonly url: string;
  readonly node: string;
  readonly secret: string | undefined;
  /** The whole command's budget. */
  readonly timeoutMs: number;
  /** Between two looks at the cluster. */
  readonly pollMs: number;
  /** One HTTP request's budget. */
  readonly requestTimeoutMs?: number;
}

interface StatusMember {
  readonly node_id: string;
  readonly http_address?: string;
  readonly state?: string;
  readonly incarnation?: string;
}

interface Status extends NodeStatusLike {
  readonly members: readonly StatusMember[];
}

class RemoveError extends Error {}

/** fetch hides the socket error (ECONNREFUSED, timeout) in `cause`; that is what an operator needs. */
const describeFailure = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError') return 'no answer in time';
  const cause = (error as { cause?: unknown }).cause;
  if (!(cause instanceof Error)) return error.message;
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' ? `${code} (${cause.message})` : cause.message;
};

export const clusterRemove = async (options: RemoveOptions, io: RemoveIo): Promise<number> => {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    io.stderr(`fastpaca: --url ${options.url} is not a URL\n`);
    return exitCodes.usage;
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
  const deadline = Date.now() + options.timeoutMs;
  const headers: Record<string, string> =
    options.secret === undefined ? {} : { [clusterSecretHeader]: options.secret };

  const request = async (url: URL, method: 'GET' | 'POST'): Promise<{ status: number; text: string }> => {
    const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(requestTimeoutMs) });
    return { status: response.status, text: await response.text() };
  };
  const statusOf = async (url: URL): Promise<Status> => {
    const answer = await request(new URL(statusPath, url), 'GET');
    if (answer.status === 401) throw new RemoveError('the cluster secret is missing or wrong');
    if (answer.status !== 200)
      throw new RemoveError(`${url.origin} answered status with HTTP ${answer.status}`);
    return JSON.parse(answer.text) as Status;
  };
  const change = async (path: string, what: string): Promise<void> => {
    // A change can race a leader election: retried (it is idempotent) until the deadline.
    for (;;) {
      const target = new URL(path, base);
      target.searchParams.set('node_id', options.node);
      let answer: { status: number; text: string } | undefined;
      try {
        answer = await request(target, 'POST');
      } catch {
        answer = undefined;
      }
      if (answer?.status === 200) return;
      if (answer !== undefined && answer.status !== 503) {
        const message = (() => {
          try {
            return (JSON.parse(answer.text) as { message?: string }).message ?? answer.text;
          } catch {
            return answer.text;
          }
        })();
        throw new RemoveError(`${what} refused (HTTP ${answer.status}): ${message}`);
      }
      if (Date.now() > deadline) throw new RemoveError(`${what}: no answer before the timeout`);
      await sleep(options.pollMs);
    }
  };
  /** Every member's status that answers (the node at --url first). */
  const everyStatus = async (): Promise<Status[]> => {
    const first = await statusOf(base);
    const others = first.members
      .filter((member) => member.node_id !== first.node_id && member.http_address !== undefined)
      // The other members speak the scheme of the node at --url (TLS is all nodes or none).
      .map((member) => new URL(`${base.protocol}//${member.http_address ?? ''}`));
    const answers = await Promise.allSettled(others.map((url) => statusOf(url)));
    return [first, ...answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []))];
  };

  try {
    const first = await statusOf(base);
    const member = first.members.find((entry) => entry.node_id === options.node);
    if (member === undefined) throw new RemoveError(`${options.node} is not a member of the cluster`);
    if (member.state === 'removed') {
      io.stdout(`${options.node} removed already: it hosts no replicas and can be switched off\n`);
      return exitCodes.ok;
    }
    if (member.state !== 'leaving') {
      await change(leavePath, `marking ${options.node} leaving`);
      io.stdout(`${options.node} is leaving; moving its replicas away\n`);
    }
    let lastLine = '';
    let lastPrintAt = 0;
    for (;;) {
      let line: string;
      let done = false;
      try {
        const progress = removalProgress(await everyStatus(), options.node);
        done = progress.hosting.length === 0 && progress.unknown.length === 0;
        line =
          `${progress.hosting.length} groups still have a replica on ${options.node}` +
          (progress.unknown.length > 0
            ? ` (${progress.unknown.length} groups without a reachable leader)`
            : '');
      } catch (error) {
        if (error instanceof RemoveError) throw error;
        line = `cluster not reachable: ${(error as Error).message}`;
      }
      if (done) break;
      if (line !== lastLine || Date.now() - lastPrintAt > 5_000) {
        io.stdout(`${line}\n`);
        lastLine = line;
        lastPrintAt = Date.now();
      }
      if (Date.now() > deadline) throw new RemoveError(`timed out: ${line}`);
      await sleep(options.pollMs);
    }
    io.stdout(`no group has a replica on ${options.node} any more; dropping it from the member list\n`);
    await change(forgetPath, `forgetting ${options.node}`);
    for (;;) {
      let metaHosting: boolean | undefined;
      let rejoined = false;
      try {
        const statuses = await everyStatus();
        metaHosting = removalProgress(statuses, options.node).metaHosting;
        // A new incarnation joined under the name, which the cluster allows only once the meta group
        // let the old one go (membership.ts).
        const listed = statuses[0]?.members.find((entry) => entry.node_id === options.node);
        rejoined =
          listed?.state === 'active' &&
          listed.incarnation !== undefined &&
          listed.incarnation !== member.incarnation;
      } catch (error) {
        if (error instanceof RemoveError) throw error;
        metaHosting = undefined;
      }
      if (metaHosting === false || rejoined) break;
      if (Date.now() > deadline)
        throw new RemoveError('timed out waiting for the membership group to let the node go');
      await sleep(options.pollMs);
    }
    io.stdout(`${options.node} removed: it hosts no replicas and can be switched off\n`);
    return exitCodes.ok;
  } catch (error) {
    const message =
      error instanceof RemoveError ? error.message : `cannot reach ${options.url}: ${describeFailure(error)}`;
    io.stderr(`fastpaca: cluster remove ${options.node}: ${message}\n`);
    return exitCodes.failure;
  }
};
