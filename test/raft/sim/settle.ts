// Drives the event loop until the work an action started has run as far as it can. Hosts progress
// through promise chains (microtasks); a macrotask boundary runs only after every microtask queued
// before it, so a few boundaries let everything settle that is not waiting on the simulator itself
// (an fsync, a frame). Nothing here waits on real time.

const SETTLE_ROUNDS = 3;

const macrotaskBoundary = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const settle = async (): Promise<void> => {
  for (let round = 0; round < SETTLE_ROUNDS; round += 1) await macrotaskBoundary();
};
