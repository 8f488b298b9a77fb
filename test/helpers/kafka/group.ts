/**
 * The group coordinator: Kafka's classic consumer-group protocol for the members that join through
 * this broker, and the offsets groups commit.
 *
 * A JoinGroup starts a rebalance (PreparingRebalance); it completes once every member has joined
 * again, or when the longest rebalance timeout has passed, and then drops the members that did not
 * rejoin. The generation goes up, the first member's first protocol that every member supports is
 * chosen, the leader gets the members' metadata (CompletingRebalance), and the leader's SyncGroup
 * hands every member its assignment (Stable). Heartbeats answer REBALANCE_IN_PROGRESS while a
 * rebalance waits for members; a member silent for its session timeout is removed, as is one
 * that leaves, and either starts a rebalance for the rest.
 *
 * @module
 */

import { ErrorCode } from "./protocol.ts";

type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable";

/** A JoinGroup request's fields. */
export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: { name: string; metadata: Uint8Array }[];
}

/** A JoinGroup response's fields (members only for the leader). */
export interface JoinResponse {
  errorCode: number;
  generationId: number;
  protocolName: string;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Uint8Array }[];
}

export interface SyncResponse {
  errorCode: number;
  assignment: Uint8Array;
}

interface Member {
  id: string;
  instanceId: string | null;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: { name: string; metadata: Uint8Array }[];
  assignment: Uint8Array;
  join: ((response: JoinResponse) => void) | undefined;
  sync: ((response: SyncResponse) => void) | undefined;
  session: ReturnType<typeof setTimeout> | undefined;
}

interface Group {
  id: string;
  state: GroupState;
  generation: number;
  protocol: string;
  leader: string;
  members: Map<string, Member>;
  rebalance: ReturnType<typeof setTimeout> | undefined;
  /** topic -> partition -> committed offset and metadata */
  offsets: Map<string, Map<number, { offset: number; metadata: string | null }>>;
}

const NO_ASSIGNMENT = new Uint8Array();

function joinError(errorCode: number, memberId = ""): JoinResponse {
  return { errorCode, generationId: -1, protocolName: "", leader: "", memberId, members: [] };
}

/** Every group of the server, with its members and committed offsets. */
export class GroupCoordinator {
  #groups = new Map<string, Group>();

  #group(id: string): Group {
    let group = this.#groups.get(id);
    if (!group) {
      group = {
        id,
        state: "Empty",
        generation: 0,
        protocol: "",
        leader: "",
        members: new Map(),
        rebalance: undefined,
        offsets: new Map(),
      };
      this.#groups.set(id, group);
    }
    return group;
  }

  /** Joins (or rejoins) a member; resolves when the rebalance it takes part in completes. */
  join(request: JoinRequest): Promise<JoinResponse> {
    if (request.groupId === "") return Promise.resolve(joinError(ErrorCode.INVALID_GROUP_ID));
    const group = this.#group(request.groupId);
    if (request.memberId !== "" && !group.members.has(request.memberId)) {
      return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, request.memberId));
    }
    const others = [...group.members.values()].filter((m) => m.id !== request.memberId);
    const compatible = others.every((m) =>
      m.protocolType === request.protocolType &&
      request.protocols.some((p) => m.protocols.some((q) => q.name === p.name))
    );
    if (!compatible || request.protocols.length === 0) {
      return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, request.memberId));
    }
    const id = request.memberId || `${request.clientId}-${crypto.randomUUID()}`;
    const member: Member = group.members.get(id) ?? {
      id,
      instanceId: request.groupInstanceId,
      sessionTimeoutMs: 0,
      rebalanceTimeoutMs: 0,
      protocolType: "",
      protocols: [],
      assignment: NO_ASSIGNMENT,
      join: undefined,
      sync: undefined,
      session: undefined,
    };
    Object.assign(member, {
      sessionTimeoutMs: request.sessionTimeoutMs,
      rebalanceTimeoutMs: request.rebalanceTimeoutMs,
      protocolType: request.protocolType,
      protocols: request.protocols,
    });
    group.members.set(id, member);
    member.join?.(joinError(ErrorCode.UNKNOWN_MEMBER_ID, id)); // a join it sent before this one
    const joined = new Promise<JoinResponse>((resolve) => member.join = resolve);
    this.#touch(group, member);
    if (group.state === "PreparingRebalance") this.#maybeCompleteJoin(group);
    else this.#prepareRebalance(group);
    return joined;
  }

  /** The leader's SyncGroup sets every assignment; the others wait for it. */
  sync(
    groupId: string,
    generation: number,
    memberId: string,
    assignments: Map<string, Uint8Array>,
  ): Promise<SyncResponse> {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    const error = (errorCode: number) => Promise.resolve({ errorCode, assignment: NO_ASSIGNMENT });
    if (!group || !member) return error(ErrorCode.UNKNOWN_MEMBER_ID);
    if (generation !== group.generation) return error(ErrorCode.ILLEGAL_GENERATION);
    if (group.state === "PreparingRebalance") return error(ErrorCode.REBALANCE_IN_PROGRESS);
    this.#touch(group, member);
    if (group.state === "CompletingRebalance" && memberId === group.leader) {
      for (const m of group.members.values()) m.assignment = assignments.get(m.id) ?? NO_ASSIGNMENT;
      group.state = "Stable";
      for (const m of group.members.values()) {
        m.sync?.({ errorCode: ErrorCode.NONE, assignment: m.assignment });
        m.sync = undefined;
      }
    }
    if (group.state === "Stable") {
      return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment });
    }
    return new Promise((resolve) => member.sync = resolve);
  }

  heartbeat(groupId: string, generation: number, memberId: string): number {
    const group = this.#groups.get(groupId);
    const member = group?.members.get(memberId);
    if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generation !== group.generation) return ErrorCode.ILLEGAL_GENERATION;
    this.#touch(group, member);
    return group.state === "PreparingRebalance" ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE;
  }

  /** Removes members that leave; the error code for each. */
  leave(groupId: string, memberIds: string[]): number[] {
    const group = this.#groups.get(groupId);
    return memberIds.map((id) => {
      const member = group?.members.get(id);
      if (!group || !member) return ErrorCode.UNKNOWN_MEMBER_ID;
      this.#remove(group, member);
      return ErrorCode.NONE;
    });
  }

  /**
   * Checks that a commit comes from the current generation (a generation of -1 is a commit from
   * outside any group, allowed while the group has no members) and stores the offsets.
   */
  commit(
    groupId: string,
    generation: number,
    memberId: string,
    offsets: { topic: string; partition: number; offset: number; metadata: string | null }[],
  ): number {
    if (groupId === "") return ErrorCode.INVALID_GROUP_ID;
    const group = this.#group(groupId);
    if (generation < 0) {
      if (group.members.size > 0) return ErrorCode.ILLEGAL_GENERATION;
    } else {
      const member = group.members.get(memberId);
      if (!member) return ErrorCode.UNKNOWN_MEMBER_ID;
      if (generation !== group.generation) return ErrorCode.ILLEGAL_GENERATION;
      if (group.state !== "Stable") return ErrorCode.REBALANCE_IN_PROGRESS;
      this.#touch(group, member);
    }
    for (const { topic, partition, offset, metadata } of offsets) {
      const partitions = group.offsets.get(topic) ?? new Map();
      partitions.set(partition, { offset, metadata });
      group.offsets.set(topic, partitions);
    }
    return ErrorCode.NONE;
  }

  /** A group's committed offsets: of the topics named, or of every topic when null. */
  committed(
    groupId: string,
    topics: { name: string; partitions: number[] }[] | null,
  ): { name: string; partitions: { partition: number; offset: number; metadata: string }[] }[] {
    const offsets = this.#groups.get(groupId)?.offsets ?? new Map();
    const asked = topics ??
      [...offsets].map(([name, partitions]) => ({ name, partitions: [...partitions.keys()] }));
    return asked.map(({ name, partitions }) => ({
      name,
      partitions: partitions.map((partition) => {
        const found = offsets.get(name)?.get(partition);
        return { partition, offset: found?.offset ?? -1, metadata: found?.metadata ?? "" };
      }),
    }));
  }

  /**
   * Ends every membership, as when a broker restarts and the sessions lapse: waiting joins and
   * syncs are answered NOT_COORDINATOR, timers stop. Committed offsets are kept.
   */
  reset(): void {
    for (const group of this.#groups.values()) {
      clearTimeout(group.rebalance);
      for (const member of group.members.values()) {
        clearTimeout(member.session);
        member.join?.(joinError(ErrorCode.NOT_COORDINATOR, member.id));
        member.sync?.({ errorCode: ErrorCode.NOT_COORDINATOR, assignment: NO_ASSIGNMENT });
      }
      group.members.clear();
      group.state = "Empty";
    }
  }

  #prepareRebalance(group: Group): void {
    for (const member of group.members.values()) {
      member.sync?.({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: NO_ASSIGNMENT });
      member.sync = undefined;
    }
    group.state = "PreparingRebalance";
    const timeout = Math.max(...[...group.members.values()].map((m) => m.rebalanceTimeoutMs));
    clearTimeout(group.rebalance);
    group.rebalance = setTimeout(() => this.#completeJoin(group), timeout);
    this.#maybeCompleteJoin(group);
  }

  #maybeCompleteJoin(group: Group): void {
    if ([...group.members.values()].every((m) => m.join)) this.#completeJoin(group);
  }

  /** Ends the join phase: members that did not rejoin are dropped, the rest get the generation. */
  #completeJoin(group: Group): void {
    clearTimeout(group.rebalance);
    group.rebalance = undefined;
    for (const member of [...group.members.values()]) {
      if (!member.join) {
        clearTimeout(member.session);
        group.members.delete(member.id);
      }
    }
    group.generation++;
    const members = [...group.members.values()];
    if (members.length === 0) {
      group.state = "Empty";
      return;
    }
    group.protocol =
      members[0].protocols.find((p) =>
        members.every((m) => m.protocols.some((q) => q.name === p.name))
      )!.name;
    if (!group.members.has(group.leader)) group.leader = members[0].id;
    group.state = "CompletingRebalance";
    const all = members.map((m) => ({
      memberId: m.id,
      groupInstanceId: m.instanceId,
      metadata: m.protocols.find((p) => p.name === group.protocol)!.metadata,
    }));
    for (const member of members) {
      const join = member.join!;
      member.join = undefined;
      this.#touch(group, member);
      join({
        errorCode: ErrorCode.NONE,
        generationId: group.generation,
        protocolName: group.protocol,
        leader: group.leader,
        memberId: member.id,
        members: member.id === group.leader ? all : [],
      });
    }
  }

  #remove(group: Group, member: Member): void {
    clearTimeout(member.session);
    group.members.delete(member.id);
    member.join?.(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.id));
    member.sync?.({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: NO_ASSIGNMENT });
    if (group.members.size === 0) {
      clearTimeout(group.rebalance);
      group.rebalance = undefined;
      group.state = "Empty";
    } else if (group.state === "PreparingRebalance") this.#maybeCompleteJoin(group);
    else this.#prepareRebalance(group);
  }

  /** Restarts a member's session timer: silent that long, it is removed. */
  #touch(group: Group, member: Member): void {
    clearTimeout(member.session);
    member.session = setTimeout(() => {
      if (member.join || member.sync) this.#touch(group, member); // it is waiting on us
      else this.#remove(group, member);
    }, member.sessionTimeoutMs);
  }
}
