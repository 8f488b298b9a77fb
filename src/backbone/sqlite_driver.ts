/**
 * The little of SQLite the SQLite backbone uses, so that each runtime can plug in its built-in
 * module: `node:sqlite` on Deno (`node_sqlite.ts`), `bun:sqlite` on Bun (`bun_sqlite.ts`).
 *
 * @module
 */

/** A value bound to a parameter or read from a column. */
export type SqliteValue = null | number | bigint | string | Uint8Array;

/** A row read by a query, by column name. */
export type SqliteRow = Record<string, SqliteValue>;

/** A prepared statement with positional (`?`) parameters. */
export interface SqliteStatement {
  /** Runs it for its effect. */
  run(...parameters: SqliteValue[]): void;
  /** Runs it and returns every row (integers as numbers, blobs as `Uint8Array`). */
  all(...parameters: SqliteValue[]): SqliteRow[];
}

/** An open database file. */
export interface SqliteDatabase {
  /** Runs one statement without parameters or results (a pragma, DDL, BEGIN, COMMIT). */
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

/** Opens (creating if needed) the database file at `path`; throws when it cannot. */
export type OpenSqlite = (path: string) => SqliteDatabase | Promise<SqliteDatabase>;
