/**
 * A session's outbound QoS 1/2 messages by packet id: a direct-mapped table (slot = id & mask)
 * that the packet id allocator keeps free of collisions, so lookups need no hashing and the table
 * never rehashes. A `Map` with one insert and one delete per message rehashes every few messages,
 * and its dropped tables, promoted to the old generation, keep deleted entries (and the messages
 * they hold) alive through young-generation collections: at 5,000 QoS 1 msg/s that made every
 * scavenge copy about 1 MB and pause 5-9 ms, the cause of Perch's p99 latency.
 *
 * @module
 */

/** What the table needs of an entry. */
export interface InflightEntry {
  /** The packet identifier, 1 to 65,535. */
  readonly packetId: number;
}

/** Largest table: one slot per packet identifier (slot 0 stays empty). */
const MAX_CAPACITY = 0x10000;
const INITIAL_CAPACITY = 8;

/** Entries by packet id, iterable in the order they were added. */
export class InflightTable<T extends InflightEntry> {
  #slots: (T | undefined)[] = new Array(INITIAL_CAPACITY).fill(undefined);
  /** Order of addition of the entry in the same slot. */
  #order: number[] = new Array(INITIAL_CAPACITY).fill(0);
  #mask = INITIAL_CAPACITY - 1;
  #size = 0;
  #added = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The entry with this packet id, if any. */
  get(packetId: number): T | undefined {
    const entry = this.#slots[packetId & this.#mask];
    return entry !== undefined && entry.packetId === packetId ? entry : undefined;
  }

  /** Whether an entry has this packet id. */
  has(packetId: number): boolean {
    return this.get(packetId) !== undefined;
  }

  /** Adds an entry, replacing one with the same packet id. */
  set(entry: T): void {
    let slot = entry.packetId & this.#mask;
    let current = this.#slots[slot];
    while (current !== undefined && current.packetId !== entry.packetId) {
      // Another id in this slot (an id not from freeId()): a larger table separates them.
      this.#grow();
      slot = entry.packetId & this.#mask;
      current = this.#slots[slot];
    }
    if (current === undefined) this.#size++;
    this.#slots[slot] = entry;
    this.#order[slot] = this.#added++;
    if (this.#size === this.#slots.length - 1 && this.#slots.length < MAX_CAPACITY) this.#grow();
  }

  /** Removes the entry with this packet id; returns whether there was one. */
  delete(packetId: number): boolean {
    const slot = packetId & this.#mask;
    const entry = this.#slots[slot];
    if (entry === undefined || entry.packetId !== packetId) return false;
    this.#slots[slot] = undefined;
    this.#size--;
    return true;
  }

  /** The entries in the order they were added (a snapshot). */
  values(): T[] {
    const slots: number[] = [];
    for (let slot = 0; slot < this.#slots.length; slot++) {
      if (this.#slots[slot] !== undefined) slots.push(slot);
    }
    slots.sort((a, b) => this.#order[a] - this.#order[b]);
    return slots.map((slot) => this.#slots[slot]!);
  }

  /**
   * The first packet id from `start` on (wrapping from 65,535 to 1) whose slot is free. The table
   * always keeps a free slot below its largest size; at the largest size the caller keeps fewer
   * than 65,535 entries.
   *
   * @param start A packet id, 1 to 65,535.
   * @returns A packet id no entry has.
   */
  freeId(start: number): number {
    let id = start;
    while (this.#slots[id & this.#mask] !== undefined) id = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Doubles the table; ids in distinct slots stay in distinct slots. */
  #grow(): void {
    const capacity = this.#slots.length * 2;
    if (capacity > MAX_CAPACITY) throw new RangeError("Cannot grow the inflight table further");
    const slots: (T | undefined)[] = new Array(capacity).fill(undefined);
    const order: number[] = new Array(capacity).fill(0);
    const mask = capacity - 1;
    for (let slot = 0; slot < this.#slots.length; slot++) {
      const entry = this.#slots[slot];
      if (entry === undefined) continue;
      slots[entry.packetId & mask] = entry;
      order[entry.packetId & mask] = this.#order[slot];
    }
    this.#slots = slots;
    this.#order = order;
    this.#mask = mask;
  }
}
