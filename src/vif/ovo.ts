/**
 * The oslo.versionedobjects primitive codec for os-vif VIFs.
 *
 * Wire shape (`obj_to_primitive()`), which Kuryr stores in `KuryrPort.status.vifs[ifname].vif`
 * and in the legacy `openstack.org/kuryr-vif` pod annotation:
 *
 *     { "versioned_object.name": "VIFVHostUser", "versioned_object.namespace": "os_vif",
 *       "versioned_object.version": "1.1", "versioned_object.data": { ...set fields... },
 *       "versioned_object.changes": [ ...changed field names... ] }
 *
 * Invariants (checked against golden files made by os-vif 3.0, test/fixtures/vif/):
 * - `data` holds only the fields that are set, in the class's field order (subclass
 *   fields first, then VIFBase's); a nullable field set to None is `null`.
 * - SubnetList, FixedIPList and RouteList are objects whose data is `{objects: [...]}`.
 * - Values are coerced as the o.vo field types coerce them on assignment: MACs to
 *   lower-case colon form, IP addresses and networks to netaddr's text form.
 * - `changes` lists the changed fields; os-vif emits it in Python set order, so only its
 *   membership is meaningful. An object os-vif just constructed reports every set field;
 *   objects we decode keep the list they came with (see {@link encodeVIF}).
 *
 * Deliberate differences from os-vif, all on the refusing or tolerating side:
 * - decoding is strict on JSON types (o.vo would `str()`/`bool()` anything) and on IPv4
 *   text (netaddr reads `010.0.0.1` as octal; we refuse leading zeros);
 * - a newer minor version of a known class is accepted (os-vif 3.0 raises
 *   IncompatibleObjectVersion); its unknown fields are kept and written back unchanged,
 *   so a VIF written by a newer kuryr-controller survives the round trip.
 */
import { VhostplugError } from '../core/errors';
import { validateIfName, isValidationError } from '../core/validate';
import { canonicalCidr, canonicalIp, canonicalMac } from '../core/net';
import type { Network, PodVIF, VIF, VIFPortProfileOpenVSwitch } from './model';
import { DEFAULT_IFNAME, networkDefaults } from './model';

/** The o.vo project namespace of every os-vif object (and of Kuryr's PodState). */
export const OVO_NAMESPACE = 'os_vif';

/** The keys of a versioned-object primitive. */
export const OVO_KEYS = {
  name: 'versioned_object.name',
  namespace: 'versioned_object.namespace',
  version: 'versioned_object.version',
  data: 'versioned_object.data',
  changes: 'versioned_object.changes',
} as const;

/** A versioned-object primitive (`obj_to_primitive()` output). */
export interface OvoPrimitive {
  'versioned_object.name': string;
  'versioned_object.namespace': string;
  'versioned_object.version': string;
  'versioned_object.data': Record<string, unknown>;
  'versioned_object.changes'?: string[];
}

/** The class versions os-vif 3.0 (Debian 12, our parity reference) writes. */
export const OSVIF_VERSIONS = {
  VIFVHostUser: '1.1',
  VIFOpenVSwitch: '1.0',
  VIFBridge: '1.0',
  VIFPortProfileOpenVSwitch: '1.3',
  DatapathOffloadRepresentor: '1.0',
  Network: '1.1',
  SubnetList: '1.0',
  Subnet: '1.0',
  FixedIPList: '1.0',
  FixedIP: '1.0',
  RouteList: '1.0',
  Route: '1.0',
  PodState: '1.0',
} as const;

/** The classes this codec knows. */
export type OvoClassName = keyof typeof OSVIF_VERSIONS;

/** Why a primitive was refused. */
export type VIFFormatErrorCode =
  | 'EOVO_NOT_OBJECT'
  | 'EOVO_UNKNOWN_NAME'
  | 'EOVO_NAMESPACE'
  | 'EOVO_VERSION'
  | 'EOVO_MISSING_FIELD'
  | 'EOVO_FIELD_TYPE'
  | 'EOVO_BAD_MAC'
  | 'EOVO_BAD_MODE'
  | 'EOVO_BAD_IP'
  | 'EOVO_BAD_VALUE';

/**
 * A primitive (or a model object being encoded) that is not a valid os-vif object: the
 * ValueError / IncompatibleObjectVersion of o.vo, with a stable `code` and the dotted
 * `field` path inside the object (e.g. `VIFVHostUser.network.subnets[0].cidr`).
 */
export class VIFFormatError extends VhostplugError {
  declare readonly code: VIFFormatErrorCode;
  readonly field: string;
  readonly value: unknown;

  constructor(code: VIFFormatErrorCode, field: string, value: unknown, message: string, options?: { cause?: unknown }) {
    super(code, `${field}: ${message}`, options);
    this.field = field;
    this.value = value;
  }
}

// ---------------------------------------------------------------------------------------
// Addresses, as netaddr prints them (src/core/net.ts: glibc inet_ntop's text).

/** An IP address in netaddr's text form (IPv4 dotted quad, IPv6 compressed lower case), or undefined. */
export const canonicalIPAddress = (s: string): string | undefined => canonicalIp(s);

/**
 * An IP network `ADDR[/PREFIX]` in netaddr's `str(IPNetwork)` form: host bits are kept,
 * a missing prefix means /32 or /128. Undefined if malformed.
 */
export const canonicalIPNetwork = (s: string): string | undefined => canonicalCidr(s, { defaultPrefix: true });

// ---------------------------------------------------------------------------------------
// Per-object codec metadata: what a decoded primitive carried that the model does not
// (its version, its `changes` list, fields of a newer minor version). Kept off the model
// objects so they stay plain data; a copy of a decoded object encodes as a fresh one.

interface OvoMeta {
  version: string;
  /** null: the primitive had no `changes` key. */
  changes: string[] | null;
  extra: Record<string, unknown>;
}

const meta = new WeakMap<object, OvoMeta>();

type Json = Record<string, unknown>;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

const isPlainObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------
// Field types: decode (primitive value -> model value) and encode (model -> primitive),
// both coercing as o.vo does on assignment.

interface FieldType {
  nullable?: boolean;
  decode(v: unknown, field: string): unknown;
  encode(v: unknown, field: string): unknown;
}

function wrongType(field: string, v: unknown, want: string): VIFFormatError {
  return new VIFFormatError('EOVO_FIELD_TYPE', field, v, `expected ${want}, got ${typeName(v)}`);
}

function scalar(want: string, ok: (v: unknown) => boolean, nullable = false): FieldType {
  const check = (v: unknown, field: string): unknown => {
    if (!ok(v)) throw wrongType(field, v, want);
    return v;
  };
  return { nullable, decode: check, encode: check };
}

const isString = (v: unknown): boolean => typeof v === 'string';
const STRING = scalar('a string', isString);
const NULLABLE_STRING = scalar('a string', isString, true);
const NONEMPTY_STRING = scalar('a non-empty string', (v) => typeof v === 'string' && v.length > 0);
const BOOLEAN = scalar('a boolean', (v) => typeof v === 'boolean');
const NULLABLE_INTEGER = scalar('an integer', (v) => Number.isSafeInteger(v), true);

function coerced(
  code: VIFFormatErrorCode,
  want: string,
  fn: (s: string) => string | undefined,
  nullable = false,
): FieldType {
  const run = (v: unknown, field: string): unknown => {
    if (typeof v !== 'string') throw wrongType(field, v, want);
    const out = fn(v);
    if (out === undefined) throw new VIFFormatError(code, field, v, `${JSON.stringify(v)} is not ${want}`);
    return out;
  };
  return { nullable, decode: run, encode: run };
}

const MAC = coerced('EOVO_BAD_MAC', 'a MAC address (six hex octets separated by ":" or "-")', canonicalMac, true);
const IP = coerced('EOVO_BAD_IP', 'an IP address', canonicalIPAddress);
const CIDR = coerced('EOVO_BAD_IP', 'an IP network (ADDRESS/PREFIX)', canonicalIPNetwork);
const MODE: FieldType = (() => {
  const run = (v: unknown, field: string): unknown => {
    if (v === 'client' || v === 'server') return v;
    throw new VIFFormatError(
      'EOVO_BAD_MODE',
      field,
      v,
      `${JSON.stringify(v)} is not a vhost-user mode (expected "client" or "server")`,
    );
  };
  return { decode: run, encode: run };
})();

function listOf(item: FieldType, want: string): FieldType {
  const run =
    (dir: 'decode' | 'encode') =>
    (v: unknown, field: string): unknown => {
      if (!Array.isArray(v)) throw wrongType(field, v, `a list of ${want}`);
      return v.map((x, i) => item[dir](x, `${field}[${i}]`));
    };
  return { decode: run('decode'), encode: run('encode') };
}

const IP_LIST = listOf(IP, 'IP addresses');

/** A field holding one versioned object of one of `classes`. */
function objectField(classes: readonly ClassName[], nullable = false): FieldType {
  return {
    nullable,
    decode: (v, field) => decodeAs(v, classes, field),
    encode: (v, field) => encodeAs(v, classes, field),
  };
}

type ListClassName = 'SubnetList' | 'FixedIPList' | 'RouteList';

/** A field holding an ObjectListBase (`{objects: [...]}`) of `item`, modelled as an array. */
function listObjectField(listClass: ListClassName, item: ClassName): FieldType {
  return {
    decode: (v, field) => {
      const { data, m } = openPrimitive(v, [listClass], field);
      // os-vif would decode a list without `objects` into one that has no contents at all
      // (it re-encodes as `data: {}`); an array cannot say that, and no writer emits it.
      if (!('objects' in data))
        throw new VIFFormatError('EOVO_MISSING_FIELD', `${field}.objects`, undefined, 'required field is missing');
      const objs = data.objects;
      if (!Array.isArray(objs)) throw wrongType(`${field}.objects`, objs, 'a list of objects');
      const arr = objs.map((o, i) => decodeAs(o, [item], `${field}[${i}]`));
      meta.set(arr, { ...m, extra: pickExtra(data, ['objects'], m.version, listClass) });
      return arr;
    },
    encode: (v, field) => {
      if (!Array.isArray(v)) throw wrongType(field, v, 'an array');
      const data: Json = { objects: v.map((o, i) => encodeAs(o, [item], `${field}[${i}]`)) };
      return envelope(listClass, v, data);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Class schemas, fields in os-vif's order (subclass fields first, then the base's).

type ClassName = Exclude<OvoClassName, ListClassName | 'PodState'>;

interface ClassSchema {
  fields: ReadonlyArray<readonly [string, FieldType]>;
  required: readonly string[];
  /** Model objects of this class carry `kind` (polymorphic os-vif classes). */
  kinded: boolean;
  /** Values the os-vif constructor gives unset fields (o.vo decodes through the constructor too). */
  defaults?: () => Record<string, unknown>;
}

const VIF_BASE_FIELDS: ReadonlyArray<readonly [string, FieldType]> = [
  ['id', NONEMPTY_STRING],
  ['address', MAC],
  ['network', objectField(['Network'], true)],
  ['plugin', STRING],
  ['active', BOOLEAN],
  ['preserve_on_delete', BOOLEAN],
  ['has_traffic_filtering', BOOLEAN],
  ['port_profile', objectField(['VIFPortProfileOpenVSwitch'])],
];

const SCHEMAS: Record<ClassName, ClassSchema> = {
  VIFVHostUser: {
    fields: [['vif_name', STRING], ['path', STRING], ['mode', MODE], ...VIF_BASE_FIELDS],
    required: ['id', 'mode'],
    kinded: true,
  },
  VIFOpenVSwitch: {
    fields: [['vif_name', NONEMPTY_STRING], ['bridge_name', NONEMPTY_STRING], ...VIF_BASE_FIELDS],
    required: ['id', 'vif_name', 'bridge_name'],
    kinded: true,
  },
  VIFBridge: {
    fields: [['vif_name', NONEMPTY_STRING], ['bridge_name', NONEMPTY_STRING], ...VIF_BASE_FIELDS],
    required: ['id', 'vif_name', 'bridge_name'],
    kinded: true,
  },
  VIFPortProfileOpenVSwitch: {
    fields: [
      ['interface_id', NONEMPTY_STRING],
      ['profile_id', STRING],
      ['datapath_type', NULLABLE_STRING],
      ['create_port', BOOLEAN],
      ['datapath_offload', objectField(['DatapathOffloadRepresentor'], true)],
    ],
    required: ['interface_id'],
    kinded: true,
  },
  DatapathOffloadRepresentor: {
    fields: [
      ['representor_name', NULLABLE_STRING],
      ['representor_address', NULLABLE_STRING],
    ],
    required: [],
    kinded: true,
  },
  Network: {
    fields: [
      ['id', NONEMPTY_STRING],
      ['bridge', STRING],
      ['label', STRING],
      ['subnets', listObjectField('SubnetList', 'Subnet')],
      ['multi_host', BOOLEAN],
      ['should_provide_bridge', BOOLEAN],
      ['should_provide_vlan', BOOLEAN],
      ['bridge_interface', NULLABLE_STRING],
      ['vlan', NULLABLE_INTEGER],
      ['mtu', NULLABLE_INTEGER],
    ],
    required: ['id'],
    kinded: false,
    defaults: networkDefaults,
  },
  Subnet: {
    fields: [
      ['cidr', CIDR],
      ['dns', IP_LIST],
      ['gateway', IP],
      ['ips', listObjectField('FixedIPList', 'FixedIP')],
      ['routes', listObjectField('RouteList', 'Route')],
      ['dhcp_server', IP],
    ],
    required: ['cidr'],
    kinded: false,
  },
  FixedIP: {
    fields: [
      ['address', IP],
      ['floating_ips', IP_LIST],
    ],
    required: ['address'],
    kinded: false,
  },
  Route: {
    fields: [
      ['cidr', CIDR],
      ['gateway', IP],
      ['interface', STRING],
    ],
    required: ['cidr'],
    kinded: false,
  },
};

const KNOWN_NAMES = new Set<string>(Object.keys(OSVIF_VERSIONS));

function versionTuple(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Checks the envelope; returns the data and the metadata to remember. */
function openPrimitive(
  v: unknown,
  expected: readonly string[],
  field: string,
): { name: string; data: Json; m: OvoMeta } {
  if (!isPlainObject(v))
    throw new VIFFormatError('EOVO_NOT_OBJECT', field, v, `expected a versioned object primitive, got ${typeName(v)}`);
  const name = v[OVO_KEYS.name];
  const ns = v[OVO_KEYS.namespace];
  const version = v[OVO_KEYS.version];
  const data = v[OVO_KEYS.data];
  if (typeof name !== 'string') {
    throw new VIFFormatError('EOVO_NOT_OBJECT', field, v, `not a versioned object primitive (no "${OVO_KEYS.name}")`);
  }
  if (!KNOWN_NAMES.has(name) || !expected.includes(name)) {
    const known = KNOWN_NAMES.has(name) ? '' : ' (not an object vhostplug supports)';
    throw new VIFFormatError(
      'EOVO_UNKNOWN_NAME',
      field,
      name,
      `unexpected object ${JSON.stringify(name)}${known}; expected ${expected.join(' or ')}`,
    );
  }
  if (ns !== OVO_NAMESPACE) {
    throw new VIFFormatError(
      'EOVO_NAMESPACE',
      field,
      ns,
      `object ${name} has namespace ${JSON.stringify(ns)}; expected "${OVO_NAMESPACE}"`,
    );
  }
  const have = typeof version === 'string' ? versionTuple(version) : undefined;
  const know = versionTuple(OSVIF_VERSIONS[name as OvoClassName])!;
  if (!have || have[0] !== know[0]) {
    throw new VIFFormatError(
      'EOVO_VERSION',
      field,
      version,
      `${name} version ${JSON.stringify(version)} is not supported (supported: ${know[0]}.x, os-vif writes ${OSVIF_VERSIONS[name as OvoClassName]})`,
    );
  }
  if (!isPlainObject(data))
    throw new VIFFormatError('EOVO_NOT_OBJECT', `${field}`, data, `"${OVO_KEYS.data}" of ${name} must be an object`);
  const changes = v[OVO_KEYS.changes];
  if (changes !== undefined && !(Array.isArray(changes) && changes.every((c) => typeof c === 'string'))) {
    throw new VIFFormatError(
      'EOVO_FIELD_TYPE',
      `${field}`,
      changes,
      `"${OVO_KEYS.changes}" of ${name} must be a list of field names`,
    );
  }
  return {
    name,
    data,
    m: { version: version as string, changes: (changes as string[] | undefined) ?? null, extra: {} },
  };
}

/** Fields of a newer minor version are kept; unknown fields of a known version are dropped, as os-vif drops them. */
function pickExtra(data: Json, known: readonly string[], version: string, name: OvoClassName): Json {
  const have = versionTuple(version)!;
  const know = versionTuple(OSVIF_VERSIONS[name])!;
  if (have[1] <= know[1]) return {};
  // fromEntries defines own properties, so even a "__proto__" key stays data.
  return Object.fromEntries(Object.entries(data).filter(([k]) => !known.includes(k)));
}

function decodeAs(v: unknown, classes: readonly ClassName[], field: string): Record<string, unknown> {
  const { name, data, m } = openPrimitive(v, classes, field);
  const cls = name as ClassName;
  const schema = SCHEMAS[cls];
  const out: Record<string, unknown> = schema.kinded ? { kind: cls } : {};
  const defaults = schema.defaults?.() ?? {};
  for (const [key, type] of schema.fields) {
    const sub = `${field}.${key}`;
    if (!(key in data)) {
      if (schema.required.includes(key))
        throw new VIFFormatError('EOVO_MISSING_FIELD', sub, undefined, `required field of ${cls} is missing`);
      if (key in defaults) out[key] = defaults[key];
      continue;
    }
    const val = data[key];
    if (val === null) {
      if (!type.nullable) throw wrongType(sub, val, `a value (${key} is not nullable)`);
      out[key] = null;
      continue;
    }
    out[key] = type.decode(val, sub);
  }
  m.extra = pickExtra(
    data,
    schema.fields.map(([k]) => k),
    m.version,
    cls,
  );
  meta.set(out, m);
  return out;
}

function envelope(name: OvoClassName, obj: object, data: Json): OvoPrimitive {
  const m = meta.get(obj);
  for (const [k, v] of Object.entries(m?.extra ?? {}))
    Object.defineProperty(data, k, { value: v, enumerable: true, writable: true, configurable: true });
  const prim: OvoPrimitive = {
    'versioned_object.name': name,
    'versioned_object.namespace': OVO_NAMESPACE,
    'versioned_object.version': m?.version ?? OSVIF_VERSIONS[name],
    'versioned_object.data': data,
  };
  // A fresh object reports every set field as changed (as a just-constructed os-vif
  // object does); a decoded one keeps its list, minus fields no longer set (as o.vo
  // filters), plus the object fields whose own object reports changes (o.vo's
  // obj_what_changed looks into child objects).
  const changes = m ? (m.changes ?? []).filter((c) => c in data) : Object.keys(data);
  for (const [k, v] of Object.entries(data)) {
    if (!changes.includes(k) && isPlainObject(v) && Array.isArray(v[OVO_KEYS.changes])) changes.push(k);
  }
  if (changes.length > 0) prim['versioned_object.changes'] = changes;
  return prim;
}

function encodeAs(v: unknown, classes: readonly ClassName[], field: string): OvoPrimitive {
  if (!isPlainObject(v))
    throw new VIFFormatError(
      'EOVO_FIELD_TYPE',
      field,
      v,
      `expected a ${classes.join(' or ')} object, got ${typeName(v)}`,
    );
  let cls = classes[0]!;
  if (SCHEMAS[cls].kinded) {
    // Polymorphic fields accept only the subclasses we model.
    const kind = v.kind;
    if (typeof kind !== 'string' || !(classes as readonly string[]).includes(kind)) {
      throw new VIFFormatError('EOVO_UNKNOWN_NAME', `${field}.kind`, kind, `expected kind ${classes.join(' or ')}`);
    }
    cls = kind as ClassName;
  }
  const schema = SCHEMAS[cls];
  const data: Json = {};
  // A model object we did not decode is encoded as os-vif would construct it.
  const defaults = meta.has(v) ? {} : (schema.defaults?.() ?? {});
  for (const [key, type] of schema.fields) {
    const val = v[key] === undefined ? defaults[key] : v[key];
    const sub = `${field}.${key}`;
    if (val === undefined) {
      if (schema.required.includes(key))
        throw new VIFFormatError('EOVO_MISSING_FIELD', sub, undefined, `required field of ${cls} is missing`);
      continue;
    }
    if (val === null) {
      if (!type.nullable) throw wrongType(sub, val, `a value (${key} is not nullable)`);
      data[key] = null;
      continue;
    }
    data[key] = type.encode(val, sub);
  }
  return envelope(cls, v, data);
}

// ---------------------------------------------------------------------------------------
// Public API.

const VIF_CLASSES: readonly ClassName[] = ['VIFVHostUser', 'VIFOpenVSwitch', 'VIFBridge'];

/** Decodes a VIF primitive (VIFVHostUser, VIFOpenVSwitch or VIFBridge). Throws {@link VIFFormatError}. */
export function decodeVIF(primitive: unknown, field?: string): VIF {
  const name =
    isPlainObject(primitive) && typeof primitive[OVO_KEYS.name] === 'string'
      ? (primitive[OVO_KEYS.name] as string)
      : 'vif';
  return decodeAs(primitive, VIF_CLASSES, field ?? name) as unknown as VIF;
}

/** Parses JSON text holding a VIF primitive (a `--vif VIF.json` file, an HTTP body). */
export function parseVIF(text: string, field = 'vif'): VIF {
  return decodeVIF(parseJson(text, field), field);
}

/**
 * Encodes a VIF as os-vif's `obj_to_primitive()` would. Values are coerced as o.vo
 * coerces them (MAC lower-cased, IPs normalised); invalid values throw
 * {@link VIFFormatError}. Objects this module decoded keep their version, their
 * `changes` list and any newer-version fields; other objects get os-vif 3.0's versions
 * and report every set field as changed, like a freshly constructed os-vif object.
 */
export function encodeVIF(vif: VIF): OvoPrimitive {
  return encodeAs(vif, VIF_CLASSES, vif?.kind ?? 'vif');
}

/** Decodes a Network primitive (used for Kuryr's subnet mapping). */
export function decodeNetwork(primitive: unknown, field = 'Network'): Network {
  return decodeAs(primitive, ['Network'], field) as unknown as Network;
}

/** Encodes a Network as os-vif would. */
export function encodeNetwork(network: Network): OvoPrimitive {
  return encodeAs(network, ['Network'], 'Network');
}

/** Decodes a VIFPortProfileOpenVSwitch primitive. */
export function decodePortProfile(primitive: unknown, field = 'VIFPortProfileOpenVSwitch'): VIFPortProfileOpenVSwitch {
  return decodeAs(primitive, ['VIFPortProfileOpenVSwitch'], field) as unknown as VIFPortProfileOpenVSwitch;
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new VIFFormatError('EOVO_NOT_OBJECT', field, text, `not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
}

function checkIfName(ifname: string, field: string): string {
  try {
    return validateIfName(ifname, field);
  } catch (err) {
    if (isValidationError(err)) throw new VIFFormatError('EOVO_BAD_VALUE', field, ifname, err.message, { cause: err });
    throw err;
  }
}

/** Orders a pod's VIFs: the default first, then the others in their given order. */
function podVifs(list: PodVIF[], field: string): PodVIF[] {
  const defaults = list.filter((p) => p.default);
  if (defaults.length > 1) {
    throw new VIFFormatError(
      'EOVO_BAD_VALUE',
      field,
      defaults.map((d) => d.ifname),
      `more than one default VIF (${defaults.map((d) => d.ifname).join(', ')})`,
    );
  }
  return [...defaults, ...list.filter((p) => !p.default)];
}

/**
 * Decodes Kuryr's PodState primitive (`openstack.org/kuryr-vif` annotation, namespace
 * os_vif, version 1.0): `default_vif` is the default interface (`eth0`), `additional_vifs`
 * maps more interface names to VIFs.
 */
export function decodePodState(primitive: unknown, field = 'PodState'): PodVIF[] {
  const { data } = openPrimitive(primitive, ['PodState'], field);
  if (!('default_vif' in data))
    throw new VIFFormatError(
      'EOVO_MISSING_FIELD',
      `${field}.default_vif`,
      undefined,
      'required field of PodState is missing',
    );
  const out: PodVIF[] = [
    { ifname: DEFAULT_IFNAME, default: true, vif: decodeVIF(data.default_vif, `${field}.default_vif`) },
  ];
  const extra = data.additional_vifs ?? {};
  if (!isPlainObject(extra))
    throw wrongType(`${field}.additional_vifs`, extra, 'an object mapping interface names to VIFs');
  for (const [ifname, prim] of Object.entries(extra)) {
    const sub = `${field}.additional_vifs[${JSON.stringify(ifname)}]`;
    checkIfName(ifname, sub);
    if (ifname === DEFAULT_IFNAME)
      throw new VIFFormatError(
        'EOVO_BAD_VALUE',
        sub,
        ifname,
        `${DEFAULT_IFNAME} is the default VIF and cannot be an additional one`,
      );
    out.push({ ifname, default: false, vif: decodeVIF(prim, sub) });
  }
  return out;
}

/**
 * Decodes the legacy `openstack.org/kuryr-vif` pod annotation (a JSON string): a PodState,
 * or, in the oldest format, a bare VIF primitive, which Kuryr read as the default VIF.
 */
export function decodeKuryrVifAnnotation(annotation: string): PodVIF[] {
  const field = 'openstack.org/kuryr-vif';
  const v = parseJson(annotation, field);
  if (isPlainObject(v) && v[OVO_KEYS.name] === 'PodState') return decodePodState(v, field);
  return [{ ifname: DEFAULT_IFNAME, default: true, vif: decodeVIF(v, field) }];
}

/**
 * The VIFs of a KuryrPort object (`openstack.org/v1`): `status.vifs[ifname] = {default, vif}`.
 * Returns [] while the controller has not filled `status.vifs` in. The entry marked
 * `default` comes first; with none marked, `eth0` is the default, as Kuryr treats it.
 */
export function decodeKuryrPortVifs(kuryrPort: unknown): PodVIF[] {
  const field = 'KuryrPort.status.vifs';
  const status = isPlainObject(kuryrPort) ? kuryrPort.status : undefined;
  const vifs = isPlainObject(status) ? status.vifs : undefined;
  if (vifs === undefined || vifs === null) return [];
  if (!isPlainObject(vifs)) throw wrongType(field, vifs, 'an object mapping interface names to {default, vif}');
  const list: PodVIF[] = [];
  for (const [ifname, entry] of Object.entries(vifs)) {
    const sub = `${field}[${JSON.stringify(ifname)}]`;
    checkIfName(ifname, sub);
    if (!isPlainObject(entry)) throw wrongType(sub, entry, 'an object {default, vif}');
    if (!('vif' in entry))
      throw new VIFFormatError('EOVO_MISSING_FIELD', `${sub}.vif`, undefined, 'required field is missing');
    const dflt = entry.default ?? false;
    if (typeof dflt !== 'boolean') throw wrongType(`${sub}.default`, dflt, 'a boolean');
    list.push({ ifname, default: dflt, vif: decodeVIF(entry.vif, `${sub}.vif`) });
  }
  if (!list.some((p) => p.default)) {
    const eth0 = list.find((p) => p.ifname === DEFAULT_IFNAME);
    if (eth0) eth0.default = true;
  }
  return podVifs(list, field);
}

/** `status.vifs` for a KuryrPort, as kuryr-controller writes it. */
export function encodeKuryrPortVifs(vifs: readonly PodVIF[]): Record<string, { default: boolean; vif: OvoPrimitive }> {
  return Object.fromEntries(
    podVifs([...vifs], 'KuryrPort.status.vifs').map((p) => [
      checkIfName(p.ifname, `KuryrPort.status.vifs[${JSON.stringify(p.ifname)}]`),
      { default: p.default, vif: encodeVIF(p.vif) },
    ]),
  );
}

/**
 * A PodState primitive, as Kuryr wrote the legacy annotation: the default VIF becomes
 * `default_vif`, the others `additional_vifs`. Kuryr's PodState resets its own changes
 * on construction, so `changes` names only `default_vif`, when that VIF reports changes.
 */
export function encodePodState(vifs: readonly PodVIF[]): OvoPrimitive {
  const ordered = podVifs([...vifs], 'PodState');
  const dflt = ordered[0];
  if (!dflt?.default)
    throw new VIFFormatError(
      'EOVO_MISSING_FIELD',
      'PodState.default_vif',
      undefined,
      'a PodState needs exactly one default VIF',
    );
  const defaultVif = encodeVIF(dflt.vif);
  const additional = Object.fromEntries(
    ordered
      .slice(1)
      .map((p) => [checkIfName(p.ifname, `PodState.additional_vifs[${JSON.stringify(p.ifname)}]`), encodeVIF(p.vif)]),
  );
  const prim: OvoPrimitive = {
    'versioned_object.name': 'PodState',
    'versioned_object.namespace': OVO_NAMESPACE,
    'versioned_object.version': OSVIF_VERSIONS.PodState,
    'versioned_object.data': { default_vif: defaultVif, additional_vifs: additional },
  };
  if (defaultVif['versioned_object.changes']) prim['versioned_object.changes'] = ['default_vif'];
  return prim;
}
