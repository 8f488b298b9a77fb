/**
 * The SQLite driver on Deno (and Node.js): the built-in `node:sqlite` module, which Deno supports
 * from 2.2.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { SqliteDatabase } from "./sqlite_driver.ts";

/** Opens the database file at `path` with `node:sqlite`, creating it if needed. */
export function openNodeSqlite(path: string): SqliteDatabase {
  const database = new DatabaseSync(path);
  return {
    exec: (sql) => database.exec(sql),
    prepare(sql) {
      const statement = database.prepare(sql);
      return {
        run: (...parameters) => void statement.run(...parameters),
        all: (...parameters) => statement.all(...parameters) as Record<string, never>[],
      };
    },
    close: () => database.close(),
  };
}
