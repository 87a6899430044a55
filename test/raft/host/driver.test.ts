// Proves the real-time loop's contract with a scripted host: it runs turns while there is work and
// wakes on new input, never overlaps two turns, routes a thrown error to reportFatal, and stop()
// waits for the turn in progress. Waits are bounded polls, never timing assertions.

import { describe, expect, it } from 'vitest';
import { startHostLoop, type LoopDrivableHost } from '../../../raft/driver.js';

const waitFor = async (done: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
};

/** A host whose only behaviour is counting: `work` turns are pending; each turn takes a few ms. */
class ScriptedHost {
  work = 0;
  turns = 0;
  ticks = 0;
  active = 0;
  overlapped = false;
  fatal: unknown[] = [];
  throwOnTurn: Error | undefined;
  /** While set, a turn waits for it: lets a test hold a turn in progress. */
  gate: Promise<void> | undefined;
  listener: (() => void) | undefined;

  hasWork(): boolean {
    return this.work > 0;
  }
  tick(): void {
    this.ticks += 1;
  }
  async turn(): Promise<void> {
    if (this.throwOnTurn !== undefined) throw this.throwOnTurn;
    this.active += 1;
    if (this.active > 1) this.overlapped = true;
    await (this.gate ?? new Promise((resolve) => setTimeout(resolve, 1)));
    this.work -= 1;
    this.turns += 1;
    this.active -= 1;
  }
  onWork(listener: (() => void) | undefined): void {
    this.listener = listener;
  }
  reportFatal(error: unknown): void {
    this.fatal.push(error);
  }
  /** New input arrives, as a propose() or inbound frame would signal it. */
  input(turns: number): void {
    this.work += turns;
    this.listener?.();
  }
}

const asLoopHost = (host: ScriptedHost): LoopDrivableHost => host as unknown as LoopDrivableHost;

describe('startHostLoop', () => {
  it('runs turns back to back while there is work, wakes on input, and never overlaps', async () => {
    const host = new ScriptedHost();
    // A long tick interval: only the wake-up hook can explain turns running.
    const loop = startHostLoop(asLoopHost(host), { tickMs: 60_000 });
    host.input(5);
    host.input(5);
    await waitFor(() => host.turns === 10, 'ten turns');
    expect(host.overlapped).toBe(false);
    host.input(3);
    await waitFor(() => host.turns === 13, 'three more turns');
    await loop.stop();
    expect(host.listener).toBeUndefined();
  });

  it('ticks on its timer', async () => {
    const host = new ScriptedHost();
    const loop = startHostLoop(asLoopHost(host), { tickMs: 1 });
    await waitFor(() => host.ticks >= 3, 'three ticks');
    await loop.stop();
    const ticks = host.ticks;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(host.ticks).toBe(ticks);
  });

  it('routes an error thrown by a turn to reportFatal and stops turning', async () => {
    const host = new ScriptedHost();
    host.throwOnTurn = new Error('broken invariant');
    const loop = startHostLoop(asLoopHost(host), { tickMs: 60_000 });
    host.input(2);
    await waitFor(() => host.fatal.length === 1, 'a fatal report');
    host.throwOnTurn = undefined;
    host.input(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(host.turns).toBe(0);
    await loop.stop();
  });

  it('stop() waits for the turn in progress', async () => {
    const host = new ScriptedHost();
    let release: () => void = () => undefined;
    host.gate = new Promise<void>((resolve) => (release = resolve));
    const loop = startHostLoop(asLoopHost(host), { tickMs: 60_000 });
    host.input(1);
    await waitFor(() => host.active === 1, 'a turn in progress');
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(host.active).toBe(0);
    expect(host.turns).toBe(1);
  });
});
