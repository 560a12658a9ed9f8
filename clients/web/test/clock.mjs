// A manual clock with timers, for the web client's tests: `advance(ms)` fires due timers in order,
// letting promises settle between them.

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A clock at `start` ms whose timers fire only when `advance` passes them. */
export function manualClock(start = 0) {
  let now = start;
  let timers = [];
  let nextId = 1;
  return {
    now: () => now,
    setTimeout: (f, ms) => {
      const id = nextId++;
      timers.push({ id, at: now + ms, f });
      return id;
    },
    clearTimeout: (id) => {
      timers = timers.filter((t) => t.id !== id);
    },
    /** Timers not yet fired. */
    pending: () => timers.length,
    /** Moves the clock by `ms`, firing due timers in order (and letting work settle). */
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await settle();
        timers.sort((a, b) => a.at - b.at);
        const due = timers[0];
        if (!due || due.at > end) break;
        timers.shift();
        now = due.at;
        due.f();
      }
      now = end;
      await settle();
    },
  };
}
