/** Built-in Postgres type OIDs (pg_type.dat) the masking engine knows by name. */
export const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [16, 'bool'], [17, 'bytea'], [18, 'char'], [19, 'name'], [20, 'int8'], [21, 'int2'], [23, 'int4'], [25, 'text'],
  [26, 'oid'], [114, 'json'], [142, 'xml'], [199, '_json'], [650, 'cidr'], [700, 'float4'], [701, 'float8'],
  [705, 'unknown'], [790, 'money'], [829, 'macaddr'], [869, 'inet'], [1000, '_bool'], [1003, '_name'], [1005, '_int2'],
  [1007, '_int4'], [1009, '_text'], [1014, '_bpchar'], [1015, '_varchar'], [1016, '_int8'], [1042, 'bpchar'],
  [1043, 'varchar'], [1082, 'date'], [1083, 'time'], [1114, 'timestamp'], [1184, 'timestamptz'], [1186, 'interval'],
  [1266, 'timetz'], [1560, 'bit'], [1562, 'varbit'], [1700, 'numeric'], [2950, 'uuid'], [3802, 'jsonb'], [3807, '_jsonb'],
]);

/** Other spellings of type names an admin may write in `types`. */
const ALIASES: Record<string, string> = {
  boolean: 'bool', 'character varying': 'varchar', character: 'bpchar', 'char varying': 'varchar', integer: 'int4',
  int: 'int4', smallint: 'int2', bigint: 'int8', real: 'float4', 'double precision': 'float8', decimal: 'numeric',
  'timestamp without time zone': 'timestamp', 'timestamp with time zone': 'timestamptz', 'time without time zone': 'time',
  'time with time zone': 'timetz', 'text[]': '_text', 'varchar[]': '_varchar', 'jsonb[]': '_jsonb', 'json[]': '_json',
};

export function canonicalTypeName(name: string): string {
  const n = name.trim().toLowerCase().replace(/\s+/g, ' ');
  return ALIASES[n] ?? n;
}

/** Text-like scalar types: their text and binary forms are both the UTF-8 text (jsonb binary adds a version byte). */
export const TEXT_LIKE_OIDS: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 705, 114, 3802, 142, 18]);
export const JSON_OIDS: ReadonlySet<number> = new Set([114, 3802]);
/** Arrays whose elements are text-like: element type by array type. */
export const TEXT_ARRAY_ELEMENT: ReadonlyMap<number, number> = new Map([[1009, 25], [1015, 1043], [1014, 1042], [1003, 19], [199, 114], [3807, 3802]]);
export const JSONB_OID = 3802;
/** The first OID of user-defined objects; types at or above it (citext, enums, domains) are scanned in text format. */
export const FIRST_NORMAL_OID = 16384;
