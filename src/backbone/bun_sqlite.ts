/**
 * The SQLite driver on Bun: the built-in `bun:sqlite` module. It is imported by name at run time,
 * so that Deno, which type-checks this file but cannot resolve `bun:` specifiers, never loads it.
 *
 * @module
 */

import type { SqliteDatabase, SqliteRow, SqliteValue } from "./sqlite_driver.ts";

/** The part of `bun:sqlite` used here. */
interface BunSqliteModule {
  Database: new (path: string, options: { create: boolean; strict: boolean }) => {
    exec(sql: string): void;
    prepare(sql: string): {
      run(...parameters: SqliteValue[]): unknown;
      all(...parameters: SqliteValue[]): SqliteRow[];
      finalize(): void;
    };
    close(): void;
  };
}

const BUN_SQLITE = "bun:sqlite";

/** Opens the database file at `path` with `bun:sqlite`, creating it if needed (Bun only). */
export async function openBunSqlite(path: string): Promise<SqliteDatabase> {
  const { Database }: BunSqliteModule = await import(BUN_SQLITE);
  const database = new Database(path, { create: true, strict: true });
  // A statement left unfinalized keeps the file open (and locked) after close.
  const statements: { finalize(): void }[] = [];
  return {
    exec: (sql) => database.exec(sql),
    prepare(sql) {
      const statement = database.prepare(sql);
      statements.push(statement);
      return {
        run: (...parameters) => void statement.run(...parameters),
        all: (...parameters) => statement.all(...parameters),
      };
    },
    close() {
      for (const statement of statements) statement.finalize();
      database.close();
    },
  };
}
