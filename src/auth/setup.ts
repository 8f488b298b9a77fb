/**
 * Builds the security parts from settings shaped like the `auth` and `acl` config sections:
 * the provider chain, the ACL with its optional rules file, file watching and reload.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { type FSWatcher, watch } from "node:fs";
import type { ConfigStore } from "../backbone/backbone.ts";
import type { BrokerHooks } from "../hooks/hooks.ts";
import { isLoopbackAddress } from "../util/address.ts";
import type { Clock } from "../util/clock.ts";
import type { Logger } from "../util/logger.ts";
import { Acl, type AclDefault, type AclRule } from "./acl.ts";
import { AclRuleFile } from "./acl_file.ts";
import { type AnonymousPolicy, AuthChain } from "./chain.ts";
import { CertificateAuthProvider } from "./certificate.ts";
import { type FailPolicy, HttpAuthProvider } from "./http.ts";
import { JwtAuthProvider, type JwtPublicKeyAlgorithm } from "./jwt.ts";
import { PasswordFileProvider } from "./password_file.ts";
import type { AuthProvider } from "./provider.ts";
import { createSecurityHooks } from "./security_hooks.ts";
import { SharedAclRules } from "./shared_acl.ts";
import { SharedUsers } from "./shared_users.ts";

/** The `auth` config section, as this module needs it (durations in ms). */
export interface AuthSettings {
  anonymous: AnonymousPolicy;
  chain: readonly ("certificate" | "passwordFile" | "jwt" | "http")[];
  passwordFile: { path?: string; watch: boolean };
  http: {
    url?: string;
    timeout: number;
    cacheSize: number;
    cacheTtl: number;
    failPolicy: FailPolicy;
  };
  jwt: {
    secret?: string;
    publicKeyFile?: string;
    publicKeyAlgorithm: JwtPublicKeyAlgorithm;
    jwksFile?: string;
    issuer?: string;
    audience?: string;
    clockSkew: number;
    requireExpiry: boolean;
    usernameClaim: string;
    aclClaim: string;
  };
  certificate: { usernameFromCommonName: boolean };
}

/** The `acl` config section. */
export interface AclSettings {
  default: AclDefault;
  rules: readonly AclRule[];
  file?: string;
  watch: boolean;
}

/** What building the security parts needs. */
export interface SecurityDeps {
  clock: Clock;
  logger: Logger;
  /** Where the users and the rules file's ACL rules live for every node: the backbone's. */
  config: ConfigStore;
}

/** Time to let a burst of file events settle before reloading. */
const RELOAD_DEBOUNCE_MS = 100;

/** The running security parts of one broker. */
export class Security {
  readonly chain: AuthChain;
  readonly acl: Acl;
  /** The users of every node, when the chain has a password file. */
  readonly users: SharedUsers | undefined;
  /** The rules file's rules of every node, when `acl.file` is set. */
  readonly aclRules: SharedAclRules | undefined;
  readonly hooks: BrokerHooks;
  /** `acl.default` of the configuration; the rules file's `default`, when it sets one, wins. */
  readonly configDefault: AclDefault;
  #logger: Logger;
  #watchers: FSWatcher[] = [];
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #reloadWaiters: (() => void)[] = [];

  constructor(parts: {
    chain: AuthChain;
    acl: Acl;
    users: SharedUsers | undefined;
    aclRules: SharedAclRules | undefined;
    configDefault: AclDefault;
    logger: Logger;
  }) {
    this.configDefault = parts.configDefault;
    this.chain = parts.chain;
    this.acl = parts.acl;
    this.users = parts.users;
    this.aclRules = parts.aclRules;
    this.#logger = parts.logger;
    this.hooks = createSecurityHooks({ chain: this.chain, acl: this.acl });
  }

  /**
   * Re-reads the password file, keys and ACL file (a changed password or rules file replaces the
   * users or rules of every node); a bad file is logged and the old data kept.
   */
  async reload(): Promise<void> {
    try {
      await this.chain.reload();
    } catch (error) {
      this.#logger.error("authentication reload failed; previous data kept", { error });
    }
    try {
      await this.aclRules?.importFile();
    } catch (error) {
      this.#logger.error("ACL reload failed; previous rules kept", { error });
    }
    this.#logger.info("security configuration reloaded", {
      users: this.users?.list().length,
      aclRules: this.acl.rules.length,
    });
    this.logAclDefault();
  }

  /**
   * Logs the ACL default in force and where it comes from: the rules file's `default` when it sets
   * one (a warning when that overrides a different `acl.default`), else `acl.default`.
   */
  logAclDefault(): void {
    const fromFile = this.aclRules?.defaultPolicy;
    const fields = {
      default: this.acl.defaultPolicy,
      source: fromFile === undefined ? "acl.default" : "acl.file",
      ...(this.aclRules ? { file: this.aclRules.path } : {}),
    };
    if (fromFile !== undefined && fromFile !== this.configDefault) {
      this.#logger.warn(
        `ACL default "${fromFile}" of acl.file overrides acl.default "${this.configDefault}"`,
        fields,
      );
    } else this.#logger.info("ACL default in force", fields);
  }

  /** Resolves after the next reload that a file change triggered (for tests and tooling). */
  nextFileReload(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#reloadWaiters.push(resolve);
    return promise;
  }

  /** Reloads `path` whenever it changes (editors replace files, so its folder is watched). */
  watch(path: string, reload: () => Promise<void>): void {
    const folder = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    const name = path.slice(path.lastIndexOf("/") + 1);
    let pending: ReturnType<typeof setTimeout> | undefined;
    const changed = (_event: string, file: string | Buffer | null) => {
      // Some platforms do not name the file: then any change in the folder counts.
      if (file !== null && String(file) !== name && !String(file).endsWith(`/${name}`)) return;
      if (pending !== undefined) {
        clearTimeout(pending);
        this.#timers.delete(pending);
      }
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        pending = undefined;
        reload().then(
          () => this.#logger.info("reloaded after a file change", { file: path }),
          (error) =>
            this.#logger.error("reload after a file change failed; previous data kept", {
              file: path,
              error,
            }),
        ).finally(() => {
          for (const resolve of this.#reloadWaiters.splice(0)) resolve();
        });
      }, RELOAD_DEBOUNCE_MS);
      pending = timer;
      this.#timers.add(timer);
    };
    const watcher = watch(folder, { recursive: false }, changed);
    watcher.on("error", (error) => this.#logger.warn("file watch stopped", { file: path, error }));
    this.#watchers.push(watcher);
  }

  close(): void {
    for (const watcher of this.#watchers) watcher.close();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#watchers = [];
    this.#timers.clear();
    this.chain.close();
    this.users?.close();
    this.aclRules?.close();
  }
}

/**
 * Builds the provider chain and the ACL, reading their files: a password file and a rules file
 * seed the config store when it has no users or rules yet, and the users and rules in force are
 * the store's from then on.
 *
 * @throws when a configured file cannot be read or is invalid (the broker must not start then)
 */
export async function createSecurity(
  auth: AuthSettings,
  acl: AclSettings,
  deps: SecurityDeps,
): Promise<Security> {
  const providers: AuthProvider[] = [];
  let users: SharedUsers | undefined;
  let aclRules: SharedAclRules | undefined;
  try {
    for (const kind of auth.chain) {
      switch (kind) {
        case "passwordFile": {
          users = await SharedUsers.open(auth.passwordFile.path!, deps.config, deps.logger);
          providers.push(new PasswordFileProvider(users));
          break;
        }
        case "http":
          providers.push(
            new HttpAuthProvider({ ...auth.http, url: auth.http.url!, ...deps }),
          );
          break;
        case "jwt":
          providers.push(await JwtAuthProvider.create({ ...auth.jwt, clock: deps.clock }));
          break;
        case "certificate":
          providers.push(new CertificateAuthProvider(auth.certificate));
          break;
      }
    }
    const rules = new Acl({ rules: acl.rules, default: acl.default });
    if (acl.file !== undefined) {
      aclRules = await SharedAclRules.open(
        new AclRuleFile(acl.file),
        deps.config,
        (document) =>
          rules.replace([...acl.rules, ...document.rules], document.defaultPolicy ?? acl.default),
        deps.logger,
      );
    }
    const chain = new AuthChain({ providers, anonymous: auth.anonymous, logger: deps.logger });
    const security = new Security({
      chain,
      acl: rules,
      users,
      aclRules,
      configDefault: acl.default,
      logger: deps.logger,
    });
    const sharedUsers = users;
    if (sharedUsers && auth.passwordFile.watch) {
      security.watch(sharedUsers.path, async () => {
        await sharedUsers.importFile();
      });
    }
    const sharedRules = aclRules;
    if (sharedRules && acl.watch) {
      security.watch(sharedRules.path, async () => {
        await sharedRules.importFile();
        security.logAclDefault();
      });
    }
    security.logAclDefault();
    return security;
  } catch (error) {
    users?.close();
    aclRules?.close();
    throw error;
  }
}

/**
 * The start-up notice about anonymous access for the listeners' bind addresses: a warning when
 * anonymous clients are allowed from other machines, a note when only from this one.
 *
 * @returns The level and message to log, or undefined when there is nothing to say
 */
export function anonymousNotice(
  policy: AnonymousPolicy,
  listenHosts: readonly string[],
): { level: "warn" | "info"; message: string } | undefined {
  const exposed = listenHosts.filter((host) => !isLoopbackAddress(host));
  if (policy === "always" && exposed.length > 0) {
    return {
      level: "warn",
      message: `ANONYMOUS ACCESS IS ALLOWED FROM THE NETWORK: any client reaching ${
        exposed.join(", ")
      } may connect without credentials (auth.anonymous: always)`,
    };
  }
  if (policy === "loopback" && exposed.length > 0) {
    return {
      level: "info",
      message:
        "anonymous clients are accepted from this machine only; clients from other machines need credentials (auth.anonymous: loopback)",
    };
  }
  return undefined;
}
