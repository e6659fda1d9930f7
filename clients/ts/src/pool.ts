// At most `limit` tasks at once; the first failure stops new tasks.

export class Pool {
  readonly #limit: number;
  readonly #running = new Set<Promise<void>>();
  #failure: { error: unknown } | undefined;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`in flight must be a positive integer, not ${limit}`);
    this.#limit = limit;
  }

  get running(): number {
    return this.#running.size;
  }

  /** Waits for a free place; throws the first failure of a task. */
  async slot(): Promise<void> {
    while (this.#running.size >= this.#limit && !this.#failure) {
      await Promise.race(this.#running);
    }
    if (this.#failure) throw this.#failure.error;
  }

  /** Starts `task` (call after `slot()`). */
  run(task: () => Promise<void>): void {
    const p: Promise<void> = task()
      .catch((error: unknown) => {
        this.#failure ??= { error };
      })
      .finally(() => this.#running.delete(p));
    this.#running.add(p);
  }

  /** Waits for every task; throws the first failure. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure.error;
  }

  /** Waits for every task, ignoring failures (after an abort). */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
  }
}
