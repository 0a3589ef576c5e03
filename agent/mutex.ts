// A promise-chain mutex: one critical section at a time, in call order.
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #held = false;

  get held(): boolean {
    return this.#held;
  }

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(async () => {
      this.#held = true;
      try {
        return await work();
      } finally {
        this.#held = false;
      }
    });
    this.#tail = next.catch(() => undefined);
    return next;
  }
}
