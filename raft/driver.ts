// Drives a host in real time: a timer ticks it, and turns run back to back while it has work, each
// in its own setImmediate so I/O callbacks (inbound frames, proposals) get in between turns. Turns
// never overlap. The simulator does not use this: it calls tick() and turn() itself.

import type { DrivableHost } from './api.js';

/** What the loop needs beyond DrivableHost: a wake-up hook and a way to report a fatal error. */
export interface LoopDrivableHost extends DrivableHost {
  onWork(listener: (() => void) | undefined): void;
  reportFatal(error: unknown): void;
}

export interface HostLoop {
  /** Stops ticking and scheduling; resolves once the turn in progress (if any) has finished. */
  stop(): Promise<void>;
}

export const startHostLoop = (host: LoopDrivableHost, options: { readonly tickMs: number }): HostLoop => {
  let stopped = false;
  let scheduled = false;
  let running: Promise<void> | undefined;

  const runOneTurn = async (): Promise<void> => {
    try {
      await host.turn();
    } catch (error) {
      stopped = true;
      host.reportFatal(error);
    }
  };

  const schedule = (): void => {
    if (stopped || scheduled || running !== undefined) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (stopped || !host.hasWork()) return;
      running = runOneTurn().finally(() => {
        running = undefined;
        if (host.hasWork()) schedule();
      });
    });
  };

  const timer = setInterval(() => {
    if (stopped) return;
    try {
      host.tick();
    } catch (error) {
      stopped = true;
      host.reportFatal(error);
      return;
    }
    schedule();
  }, options.tickMs);

  host.onWork(schedule);
  schedule();

  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      host.onWork(undefined);
      if (running !== undefined) await running;
    },
  };
};
