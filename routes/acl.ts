/**
 * `/api/v1/acl`: the ACL rules in the order they are checked (first match wins): the rules of
 * `acl.rules` in the config (read-only here), then those of the rules file `acl.file`, which the
 * API edits. Those live in the backbone's config store, so a change made through any node applies
 * to the next check of every client on every node, connected ones included, without a restart;
 * the node that made it then writes the rules file as an export.
 *
 * @module
 */

import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type Acl,
  type AclRule,
  type Logger,
  RuleIndexError,
  type SharedAclRules,
  validateAclRule,
} from "../src/mod.ts";
import {
  authErrors,
  errors,
  fieldProblem,
  json,
  jsonBody,
  problem,
  resourceApp,
} from "./_common.ts";
import type { SerialQueue } from "./_serial.ts";

const names = (what: string) =>
  z.array(z.string({ error: `expected ${what}` }), { error: `expected a list of ${what}s` })
    .min(1, { error: `expected at least one ${what}` });

const AclRuleSchema = z.object({
  permission: z.enum(["allow", "deny"], { error: 'expected "allow" or "deny"' }),
  action: z.enum(["publish", "subscribe", "both"], {
    error: 'expected "publish", "subscribe" or "both"',
  }),
  topic: z.string({ error: "expected a topic filter" }).openapi({
    description: "Topic filter; %u is the user name, %c the client id",
    example: "devices/%c/#",
  }),
  users: names("user name").optional(),
  clients: names("client id").optional(),
}).strict().openapi("AclRule");

const AclRuleViewSchema = AclRuleSchema.extend({
  source: z.enum(["config", "file"]),
  /** Position within its source; file rules are addressed by it. */
  index: z.number().int(),
}).openapi("AclRuleView");

const AclSchema = z.object({
  default: z.enum(["allow", "deny"]),
  /** Where the default comes from: the rules file's `default` when it sets one, else the config. */
  defaultSource: z.enum(["config", "file"]),
  /** The rules file, null when none is configured (then the rules cannot be edited). */
  file: z.string().nullable(),
  rules: z.array(AclRuleViewSchema),
}).openapi("Acl");

const IndexParam = z.object({
  index: z.coerce.number({ error: "expected a rule index" }).int({ error: "expected a rule index" })
    .min(0, { error: "expected a rule index" })
    .openapi({ param: { name: "index", in: "path" }, example: 0 }),
});

const getAcl = createRoute({
  method: "get",
  path: "/",
  tags: ["acl"],
  summary: "The ACL: default decision and every rule in check order",
  responses: { 200: { description: "The ACL", content: json(AclSchema) }, ...authErrors },
});

const addRule = createRoute({
  method: "post",
  path: "/rules",
  tags: ["acl"],
  summary: "Add a rule to the rules file (at `position`, default the end)",
  request: {
    body: jsonBody(
      AclRuleSchema.extend({
        position: z.number({ error: "expected a position in the rules file" }).int({
          error: "expected a position in the rules file",
        }).min(0, { error: "expected a position in the rules file" }).optional(),
      }),
    ),
  },
  responses: {
    201: { description: "Added", content: json(AclRuleViewSchema) },
    400: errors[400],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const replaceRule = createRoute({
  method: "put",
  path: "/rules/{index}",
  tags: ["acl"],
  summary: "Replace a rule of the rules file",
  request: { params: IndexParam, body: jsonBody(AclRuleSchema) },
  responses: {
    200: { description: "Replaced", content: json(AclRuleViewSchema) },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const deleteRule = createRoute({
  method: "delete",
  path: "/rules/{index}",
  tags: ["acl"],
  summary: "Remove a rule of the rules file",
  request: { params: IndexParam },
  responses: {
    204: { description: "Removed" },
    400: errors[400],
    404: errors[404],
    409: errors[409],
    500: errors[500],
    ...authErrors,
  },
});

const NOT_CONFIGURED = "ACL rules are edited in a rules file: set acl.file";

/** What the ACL resource works on. */
export interface AclDeps {
  /** The live rule set (config rules, then the rules file's). */
  acl: Acl;
  /** The rules file's rules of every node, when `acl.file` is set. */
  rules: SharedAclRules | undefined;
  /** Serializes this node's changes and their exports. */
  changes: SerialQueue;
  logger: Logger;
}

type RuleInput = z.infer<typeof AclRuleSchema>;

function toRule(input: RuleInput): AclRule {
  const rule: AclRule = { permission: input.permission, action: input.action, topic: input.topic };
  if (input.users) rule.users = input.users;
  if (input.clients) rule.clients = input.clients;
  return rule;
}

function ruleView(rule: AclRule, source: "config" | "file", index: number) {
  return {
    permission: rule.permission,
    action: rule.action,
    topic: rule.topic,
    ...(rule.users ? { users: [...rule.users] } : {}),
    ...(rule.clients ? { clients: [...rule.clients] } : {}),
    source,
    index,
  };
}

/** The ACL resource. */
export function aclRoutes(deps: AclDeps) {
  const app = resourceApp();
  const { acl, rules: shared, changes, logger } = deps;

  /** A 400 naming the topic when the rule's filter is not valid. */
  const invalidRule = (c: Context, rule: AclRule) => {
    const invalid = validateAclRule(rule);
    if (!invalid) return undefined;
    const field = invalid.slice(0, invalid.indexOf(":"));
    const message = invalid.slice(invalid.indexOf(":") + 1).trim();
    return fieldProblem(c, field, message);
  };
  /**
   * Writes the rules file after a change. The change is in force on every node whatever happens
   * here, so a file that cannot be written is logged, not answered as a failure.
   */
  const exportFile = async (rules: SharedAclRules) => {
    try {
      await rules.export();
    } catch (error) {
      logger.error("cannot write the ACL file; the change is in force on every node", {
        file: rules.path,
        error,
      });
    }
  };
  const noSuchRule = (c: Context, error: RuleIndexError) =>
    problem(c, 404, `No rule ${error.index} in the rules file (it has ${error.size})`);

  app.openapi(getAcl, (c) => {
    const fileRules = shared?.list() ?? [];
    const configCount = acl.rules.length - fileRules.length;
    const rules = acl.rules.map((rule, i) =>
      i < configCount ? ruleView(rule, "config", i) : ruleView(rule, "file", i - configCount)
    );
    const defaultSource = shared?.defaultPolicy === undefined ? "config" as const : "file" as const;
    return c.json(
      { default: acl.defaultPolicy, defaultSource, file: shared?.path ?? null, rules },
      200,
    );
  });
  app.openapi(addRule, (c) => {
    if (!shared) return problem(c, 409, NOT_CONFIGURED);
    const { position, ...input } = c.req.valid("json");
    const rule = toRule(input);
    const invalid = invalidRule(c, rule);
    if (invalid) return invalid;
    return changes.run(async () => {
      let index: number;
      try {
        index = await shared.add(rule, position);
      } catch (error) {
        if (!(error instanceof RuleIndexError)) throw error;
        return fieldProblem(c, "position", `expected 0 to ${error.size}`);
      }
      await exportFile(shared);
      logger.info("ACL rule added through the admin API", { index, topic: rule.topic });
      return c.json(ruleView(rule, "file", index), 201);
    });
  });
  app.openapi(replaceRule, (c) => {
    if (!shared) return problem(c, 409, NOT_CONFIGURED);
    const { index } = c.req.valid("param");
    const rule = toRule(c.req.valid("json"));
    const invalid = invalidRule(c, rule);
    if (invalid) return invalid;
    return changes.run(async () => {
      try {
        await shared.update(index, rule);
      } catch (error) {
        if (!(error instanceof RuleIndexError)) throw error;
        return noSuchRule(c, error);
      }
      await exportFile(shared);
      logger.info("ACL rule replaced through the admin API", { index, topic: rule.topic });
      return c.json(ruleView(rule, "file", index), 200);
    });
  });
  app.openapi(deleteRule, (c) => {
    if (!shared) return problem(c, 409, NOT_CONFIGURED);
    const { index } = c.req.valid("param");
    return changes.run(async () => {
      try {
        await shared.remove(index);
      } catch (error) {
        if (!(error instanceof RuleIndexError)) throw error;
        return noSuchRule(c, error);
      }
      await exportFile(shared);
      logger.info("ACL rule removed through the admin API", { index });
      return c.body(null, 204);
    });
  });
  return app;
}
