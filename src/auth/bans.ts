/**
 * Bans: client ids, user names and addresses (single addresses or CIDR ranges) refused at CONNECT
 * until a time, or until removed. The list is bounded and held in memory (a restart forgets it);
 * the admin API adds, lists and removes bans, and a kick may ban for a duration.
 *
 * {@linkcode withBans} puts the check in front of the `authenticate` hook and of every MQTT 5
 * enhanced-authentication method, so a banned client gets CONNACK 0x8A Banned (MQTT 3.1.1: return
 * code 5, not authorized) however it authenticates.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_codes.ts";
import type { AuthenticateRequest, AuthResult, BrokerHooks, ClientInfo } from "../hooks/hooks.ts";
import {
  type AddressMatcher,
  addressMatcher,
  isAddressOrRange,
  normalizeAddress,
} from "../util/address_match.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import type { AuthStep, EnhancedAuthenticator, EnhancedAuthMethods } from "./enhanced.ts";

/** What a ban matches on. */
export type BanKind = "clientId" | "username" | "address";

/** The kinds of ban, in the words of the API. */
export const BAN_KINDS: readonly BanKind[] = ["clientId", "username", "address"];

/** One ban. */
export interface Ban {
  kind: BanKind;
  /** The client id, user name, address or CIDR range (addresses as the broker writes them). */
  value: string;
  /** Epoch ms the ban ends; undefined: until removed. */
  until: number | undefined;
  /** Why, for the log and the API. */
  reason: string | undefined;
  /** Epoch ms the ban was made. */
  createdAt: number;
  /** Who made it (an API token's name or user). */
  createdBy: string;
}

/** Thrown by {@linkcode BanList.add} when the list is full of bans still in force. */
export class BanListFullError extends Error {
  override name = "BanListFullError";
}

/** Who is connecting, as a ban sees it. */
export type BanSubject = Pick<ClientInfo, "clientId" | "username" | "remoteAddress">;

/** The bans in force, bounded. */
export class BanList {
  readonly maxBans: number;
  /** CONNECTs refused for a ban since start. */
  refused = 0;
  #clock: Pick<Clock, "now">;
  /** By `kind` NUL `value`. */
  #bans = new Map<string, Ban>();
  /** The address bans that are ranges, with their matchers (checked one by one). */
  #ranges = new Map<string, AddressMatcher>();

  constructor(options: { clock: Pick<Clock, "now">; maxBans: number }) {
    this.#clock = options.clock;
    this.maxBans = options.maxBans;
  }

  /** The bans in force, by kind then value (copies). */
  list(): Ban[] {
    this.#purge();
    return [...this.#bans.values()].map((ban) => ({ ...ban }))
      .sort((a, b) => a.kind === b.kind ? compare(a.value, b.value) : compare(a.kind, b.kind));
  }

  /**
   * Adds a ban, or replaces the one of the same kind and value.
   *
   * @returns The ban as stored, and whether it replaced one
   * @throws {TypeError} for an address ban whose value is neither an address nor a CIDR range
   * @throws {BanListFullError} when `maxBans` bans are in force and this one is new
   */
  add(ban: Ban): { ban: Ban; replaced: boolean } {
    if (ban.kind === "address" && !isAddressOrRange(ban.value)) {
      throw new TypeError(`not an IP address or CIDR range: ${JSON.stringify(ban.value)}`);
    }
    const stored: Ban = { ...ban, value: canonical(ban.kind, ban.value) };
    const id = key(stored.kind, stored.value);
    const replaced = this.#bans.has(id);
    if (!replaced && this.#bans.size >= this.maxBans) {
      this.#purge();
      if (this.#bans.size >= this.maxBans) {
        throw new BanListFullError(`The ban list is full (${this.maxBans} bans, admin.maxBans)`);
      }
    }
    this.#bans.set(id, stored);
    if (stored.kind === "address" && stored.value.includes("/")) {
      this.#ranges.set(id, addressMatcher([stored.value]));
    }
    return { ban: { ...stored }, replaced };
  }

  /** Removes a ban; false when there was none in force. */
  remove(kind: BanKind, value: string): boolean {
    const id = key(kind, canonical(kind, value));
    const ban = this.#bans.get(id);
    if (!ban) return false;
    this.#delete(id);
    return this.#live(ban);
  }

  /** The ban in force that matches a client, if any. */
  find(subject: BanSubject): Ban | undefined {
    if (this.#bans.size === 0) return undefined;
    const address = normalizeAddress(subject.remoteAddress);
    const candidates = [key("clientId", subject.clientId), key("address", address)];
    if (subject.username !== undefined) candidates.push(key("username", subject.username));
    for (const id of candidates) {
      const ban = this.#bans.get(id);
      if (ban && this.#live(ban)) return ban;
    }
    for (const [id, matches] of this.#ranges) {
      const ban = this.#bans.get(id)!;
      if (matches(address) && this.#live(ban)) return ban;
    }
    return undefined;
  }

  /** Whether a ban is still in force; an expired one is dropped. */
  #live(ban: Ban): boolean {
    if (ban.until === undefined || ban.until > this.#clock.now()) return true;
    this.#delete(key(ban.kind, ban.value));
    return false;
  }

  #purge(): void {
    for (const ban of [...this.#bans.values()]) this.#live(ban);
  }

  #delete(id: string): void {
    this.#bans.delete(id);
    this.#ranges.delete(id);
  }
}

function key(kind: BanKind, value: string): string {
  return `${kind}\u0000${value}`;
}

/** Addresses the way the broker reports them (`::ffff:10.0.0.1` is `10.0.0.1`). */
function canonical(kind: BanKind, value: string): string {
  return kind === "address" && !value.includes("/") ? normalizeAddress(value) : value;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The CONNACK refusal for a ban, with a Reason String saying until when. */
export function banRefusal(ban: Ban): { reasonCode: number; reason: string } {
  const until = ban.until === undefined ? "" : ` until ${new Date(ban.until).toISOString()}`;
  return { reasonCode: ReasonCode.Banned, reason: `Banned${until}` };
}

/**
 * Puts the ban check in front of `authenticate` (before the provider chain, and again on the user
 * name a provider settled on) and of every enhanced-authentication method.
 *
 * @returns The hooks and methods to give the broker
 */
export function withBans(
  bans: BanList,
  hooks: BrokerHooks,
  methods: EnhancedAuthMethods,
  logger: Logger,
): { hooks: BrokerHooks; authMethods: EnhancedAuthMethods } {
  const refuse = (subject: BanSubject, ban: Ban) => {
    bans.refused++;
    logger.info("banned client refused", {
      clientId: subject.clientId,
      username: subject.username,
      remote: subject.remoteAddress,
      ban: `${ban.kind} ${ban.value}`,
    });
    return banRefusal(ban);
  };
  const authenticate = hooks.authenticate;
  const checked = async (request: AuthenticateRequest): Promise<AuthResult> => {
    const before = bans.find(request);
    if (before) return { ok: false, ...refuse(request, before) };
    const result = authenticate ? await authenticate(request) : { ok: true as const };
    if (!result.ok || result.username === undefined) return result;
    const after = bans.find({ ...request, username: result.username });
    return after ? { ok: false, ...refuse(request, after) } : result;
  };
  // Clients whose CONNECT exchange succeeded: a later exchange with them is a re-authentication,
  // refused by DISCONNECT, which cannot carry 0x8A (section 3.14.2.1): 0x87 Not authorized then.
  const connected = new WeakSet<ClientInfo>();
  const enhanced = (client: ClientInfo, ban: Ban): AuthStep => {
    const refusal = refuse(client, ban);
    if (connected.has(client)) refusal.reasonCode = ReasonCode.NotAuthorized;
    return { kind: "failure", ...refusal };
  };
  const authMethods = new Map(
    [...methods].map(([name, make]) => [name, () => banChecked(make(), bans, enhanced, connected)]),
  );
  return { hooks: { ...hooks, authenticate: checked }, authMethods };
}

/** An enhanced-authentication exchange that fails for a banned client, before and after. */
function banChecked(
  inner: EnhancedAuthenticator,
  bans: BanList,
  refuse: (client: ClientInfo, ban: Ban) => AuthStep,
  connected: WeakSet<ClientInfo>,
): EnhancedAuthenticator {
  let client: ClientInfo;
  const after = async (step: AuthStep | Promise<AuthStep>): Promise<AuthStep> => {
    const result = await step;
    if (result.kind !== "success") return result;
    const ban = result.username === undefined
      ? undefined
      : bans.find({ ...client, username: result.username });
    if (ban) return refuse(client, ban);
    connected.add(client);
    return result;
  };
  return {
    start(initialData, info) {
      client = info;
      const ban = bans.find(info);
      if (ban) return refuse(info, ban);
      return after(inner.start(initialData, info));
    },
    continue: (data) => after(inner.continue(data)),
  };
}
