/**
 * OVSDB value notation (RFC 7047 section 5.1) as typed TypeScript values.
 *
 * The wire form is kept as-is (no conversion layer on the hot path): an atom is a
 * string, number, boolean, `["uuid", ...]` or `["named-uuid", ...]`; a set is
 * `["set", [atoms]]` or, when it has exactly one element, the bare atom; a map is
 * `["map", [[key, value], ...]]`. The encoders always emit the tagged forms; the
 * decoders accept both set forms, because the server sends a one-element set bare.
 */

/** A row UUID on the wire: `["uuid", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"]`. */
export type Uuid = ['uuid', string];
/** A reference to a row inserted earlier in the same transaction (by its uuid-name). */
export type NamedUuid = ['named-uuid', string];
/** One OVSDB atom. Integers above 2^53 lose precision in JSON.parse (only counters get there). */
export type Atom = string | number | boolean | Uuid | NamedUuid;
/** A set: the tagged form. A one-element set may also arrive as the bare atom. */
export type OvsSet = ['set', Atom[]];
/** A map: the tagged form with `[key, value]` pairs. */
export type OvsMap = ['map', [Atom, Atom][]];
/** Any column value. */
export type Value = Atom | OvsSet | OvsMap;
/** A row: column name to value (only the columns present). */
export type Row = Record<string, Value>;

/** Condition functions (RFC 7047 5.1 plus `includes`/`excludes`). */
export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';
/** `[column, function, value]`; OVS also accepts a literal `true`/`false` (in monitor_cond). */
export type Condition = [string, ConditionFunction, Value] | boolean;
/** Mutators: arithmetic on numbers, insert/delete on sets and maps. */
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';
/** `[column, mutator, value]`. */
export type Mutation = [string, Mutator, Value];

/** The all-zero UUID (what `monitor_cond_since` sends as "no transaction id"). */
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** The server's id syntax for uuid-names (`lib/ovsdb-parser.c` ovsdb_parser_is_id). */
const UUID_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True for a 36-character textual UUID. */
export function isUuidString(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}

/** True when `name` is a valid uuid-name: `[A-Za-z_][A-Za-z0-9_]*` (no `-`, no `.`). */
export function isValidUuidName(name: unknown): name is string {
  return typeof name === 'string' && UUID_NAME_RE.test(name);
}

/**
 * A uuid-name derived from a UUID the way OVS's IDL does (`row` + uuid with `_`),
 * always valid whatever the interface name looks like.
 */
export function uuidNameFromUuid(u: string): string {
  return `row${u.replace(/-/g, '_')}`;
}

/** Encodes a row UUID. Throws TypeError on a malformed UUID. */
export function uuid(u: string): Uuid {
  if (!isUuidString(u)) throw new TypeError(`invalid UUID "${u}"`);
  return ['uuid', u];
}

/** Encodes a reference to a uuid-name. Throws TypeError on an invalid name. */
export function namedUuid(name: string): NamedUuid {
  if (!isValidUuidName(name)) {
    throw new TypeError(`invalid uuid-name "${name}": must match [A-Za-z_][A-Za-z0-9_]*`);
  }
  return ['named-uuid', name];
}

/** Encodes a set (always the tagged form; `set()` is the empty set, i.e. an unset optional column). */
export function set(...atoms: Atom[]): OvsSet {
  return ['set', atoms];
}

/** Encodes a map from a plain object, a `Map` or `[key, value]` pairs. */
export function map(entries: Record<string, Atom> | Map<Atom, Atom> | Iterable<[Atom, Atom]>): OvsMap {
  if (entries instanceof Map) return ['map', [...entries.entries()]];
  if (Symbol.iterator in (entries as object)) return ['map', [...(entries as Iterable<[Atom, Atom]>)]];
  return ['map', Object.entries(entries as Record<string, Atom>)];
}

/** Builds a condition `[column, function, value]`. */
export function cond(column: string, fn: ConditionFunction, value: Value): Condition {
  return [column, fn, value];
}

/** Builds a mutation `[column, mutator, value]`. */
export function mutation(column: string, mutator: Mutator, value: Value): Mutation {
  return [column, mutator, value];
}

/** True for `["uuid", ...]`. */
export function isUuid(v: unknown): v is Uuid {
  return Array.isArray(v) && v.length === 2 && v[0] === 'uuid' && typeof v[1] === 'string';
}

/** True for `["named-uuid", ...]`. */
export function isNamedUuid(v: unknown): v is NamedUuid {
  return Array.isArray(v) && v.length === 2 && v[0] === 'named-uuid' && typeof v[1] === 'string';
}

/** True for the tagged set form. */
export function isSet(v: unknown): v is OvsSet {
  return Array.isArray(v) && v.length === 2 && v[0] === 'set' && Array.isArray(v[1]);
}

/** True for the tagged map form. */
export function isMap(v: unknown): v is OvsMap {
  return Array.isArray(v) && v.length === 2 && v[0] === 'map' && Array.isArray(v[1]);
}

/** True for any atom form (scalars, uuid, named-uuid). */
export function isAtom(v: unknown): v is Atom {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || isUuid(v) || isNamedUuid(v);
}

/** The elements of a set value, accepting both the bare-atom and the `["set", [...]]` forms. */
export function decodeSet(v: Value | undefined): Atom[] {
  if (v === undefined) return [];
  if (isSet(v)) return v[1];
  if (isMap(v)) throw new TypeError('expected an OVSDB set, got a map');
  return [v as Atom];
}

/**
 * The single value of an optional scalar column (set of 0 or 1), or `undefined` when empty.
 * Accepts the bare atom as well.
 */
export function decodeOptional(v: Value | undefined): Atom | undefined {
  const s = decodeSet(v);
  if (s.length > 1) throw new TypeError(`expected at most one element, got ${s.length}`);
  return s[0];
}

/** The pairs of a map value as a JS `Map` (keys compared by identity of the scalar; uuids by text). */
export function decodeMap(v: Value | undefined): Map<string | number | boolean, Atom> {
  const out = new Map<string | number | boolean, Atom>();
  if (v === undefined) return out;
  if (!isMap(v)) throw new TypeError('expected an OVSDB map');
  for (const [k, val] of v[1]) out.set(isUuid(k) || isNamedUuid(k) ? k[1] : (k as string | number | boolean), val);
  return out;
}

/** A `string -> string` map (external_ids, other_config, options, status) as a plain object. */
export function decodeStringMap(v: Value | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  if (!isMap(v)) throw new TypeError('expected an OVSDB map');
  for (const [k, val] of v[1]) out[String(k)] = typeof val === 'string' ? val : atomText(val);
  return out;
}

/** The UUID text of a `["uuid", x]` atom. Throws TypeError otherwise. */
export function decodeUuid(v: Value | undefined): string {
  if (!isUuid(v)) throw new TypeError(`expected an OVSDB uuid, got ${JSON.stringify(v)}`);
  return v[1];
}

/** The UUID texts of a set of uuids (e.g. Bridge.ports), either set form. */
export function decodeUuidSet(v: Value | undefined): string[] {
  return decodeSet(v).map((a) => decodeUuid(a));
}

/** A stable text key of an atom, used for set/map membership (uuid and string never collide). */
export function atomKey(a: Atom): string {
  switch (typeof a) {
    case 'string':
      return `s${a}`;
    case 'number':
      return `n${a}`;
    case 'boolean':
      return a ? 'bt' : 'bf';
    default:
      return a[0] === 'uuid' ? `u${a[1]}` : `N${a[1]}`;
  }
}

/** Human text of an atom (uuids as their text), for messages and string maps. */
export function atomText(a: Atom): string {
  return typeof a === 'object' ? a[1] : String(a);
}

/** Structural equality of two values, treating a bare atom and a one-element set as equal and ignoring set/map order. */
export function valuesEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (isMap(a) || isMap(b)) {
    if (!isMap(a) || !isMap(b) || a[1].length !== b[1].length) return false;
    const m = new Map<string, string>();
    for (const [k, v] of a[1]) m.set(atomKey(k), atomKey(v));
    for (const [k, v] of b[1]) if (m.get(atomKey(k)) !== atomKey(v)) return false;
    return true;
  }
  const sa = decodeSet(a);
  const sb = decodeSet(b);
  if (sa.length !== sb.length) return false;
  const keys = new Set(sa.map(atomKey));
  return sb.every((x) => keys.has(atomKey(x)));
}

// ---- Schema (RFC 7047 section 3.2), the parts a client needs ----

/** A base type: an atomic type name or an object with constraints. */
export type BaseTypeSchema =
  | 'integer'
  | 'real'
  | 'boolean'
  | 'string'
  | 'uuid'
  | {
      type: 'integer' | 'real' | 'boolean' | 'string' | 'uuid';
      enum?: Value;
      refTable?: string;
      refType?: 'strong' | 'weak';
      [k: string]: unknown;
    };

/** A column type: an atomic type name, or key/value/min/max. */
export interface ColumnTypeSchema {
  key: BaseTypeSchema;
  value?: BaseTypeSchema;
  min?: number;
  max?: number | 'unlimited';
}

export interface ColumnSchema {
  type: BaseTypeSchema | ColumnTypeSchema;
  ephemeral?: boolean;
  mutable?: boolean;
}

export interface TableSchema {
  columns: Record<string, ColumnSchema>;
  maxRows?: number;
  isRoot?: boolean;
  indexes?: string[][];
}

/** A database schema as `get_schema` returns it. */
export interface DatabaseSchema {
  name: string;
  version: string;
  cksum?: string;
  tables: Record<string, TableSchema>;
}

/**
 * How a column behaves in `update2` modify diffs (verified against ovsdb-server 3.1):
 * - `scalar`: exactly one value; the diff is the new value.
 * - `optional`: a set of 0 or 1 (`ofport`); the diff is the new value too.
 * - `set`: max > 1; the diff is the symmetric difference.
 * - `map`: the diff holds added pairs, removed pairs (same key and value) and changed pairs (new value).
 */
export type ColumnKind = 'scalar' | 'optional' | 'set' | 'map';

/** Classifies a column type (see {@link ColumnKind}). */
export function columnKind(type: ColumnSchema['type']): ColumnKind {
  if (typeof type === 'string' || !('key' in type)) return 'scalar';
  const t = type as ColumnTypeSchema;
  if (t.value !== undefined) return 'map';
  const min = t.min ?? 1;
  const max = t.max ?? 1;
  if (max === 1) return min === 0 ? 'optional' : 'scalar';
  return 'set';
}

function baseTypeName(b: BaseTypeSchema): string {
  return typeof b === 'string' ? b : b.type;
}

/** The value the server omits from `initial`/`insert` rows: the type's default. */
export function defaultValue(type: ColumnSchema['type']): Value {
  const kind = columnKind(type);
  if (kind === 'map') return ['map', []];
  if (kind === 'optional' || kind === 'set') return ['set', []];
  const base = typeof type === 'string' || !('key' in type) ? (type as BaseTypeSchema) : (type as ColumnTypeSchema).key;
  switch (baseTypeName(base)) {
    case 'integer':
    case 'real':
      return 0;
    case 'boolean':
      return false;
    case 'uuid':
      return ['uuid', ZERO_UUID];
    default:
      return '';
  }
}
