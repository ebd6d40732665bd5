// The demo target: a database owned by a role whose password only `.portcullis/demo-db-password` (and,
// once seeded, the gateway's sealed config) holds, with a `customers` table of obviously synthetic people.
import pg from 'pg';

const FIRST = ['Ada', 'Brook', 'Cyra', 'Dario', 'Elin', 'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Kaia', 'Luca', 'Mira',
  'Nils', 'Odile', 'Pavel', 'Quinn', 'Rosa', 'Soren', 'Tess', 'Ugo', 'Vera', 'Wren', 'Xavi', 'Yara'];
const LAST = ['Testwell', 'Sampleton', 'Fakely', 'Demoss', 'Placeholder', 'Mockridge', 'Dummer', 'Exampleby', 'Synthe', 'Fixtura'];
const NOTES = [
  'VIP customer; prefers phone contact.',
  'Asked to be contacted at {email} only.',
  'Call back on {phone} after 5pm.',
  'Paid with card {card} last time.',
  'Identity verified with SSN {ssn}.',
  'No notes.',
  'Moved from the legacy CRM.',
];

/** Luhn check digit for a string of digits (the number without its last digit). */
export function luhnCheckDigit(body) {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function luhnValid(number) {
  const digits = number.replace(/\D/g, '');
  return digits.length > 1 && luhnCheckDigit(digits.slice(0, -1)) === digits.slice(-1);
}

/** `count` synthetic customers, the same every time: test card numbers, 555-01xx phones, 9xx SSNs, example.com mail. */
export function syntheticCustomers(count = 50) {
  const rows = [];
  for (let i = 0; i < count; i++) {
    const first = FIRST[i % FIRST.length];
    const last = LAST[(i * 7) % LAST.length];
    const name = `${first} ${last}`;
    const email = `${first}.${last}${i + 1}@example.com`.toLowerCase();
    // 555-0100..0199 is reserved for fiction in the North American numbering plan.
    const phone = `+1-202-555-01${String(i % 100).padStart(2, '0')}`;
    // Variants of the well-known test card 4111 1111 1111 1111 (and 5555 4444 …), with a valid Luhn digit.
    const bin = i % 3 === 2 ? '555555' : '411111';
    const body = `${bin}111111${String(i).padStart(3, '0')}`;
    const digits = body + luhnCheckDigit(body);
    const card = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
    // Area numbers 900-999 are never issued as SSNs.
    const ssn = `9${String(10 + (i % 90)).padStart(2, '0')}-${String(10 + ((i * 3) % 89)).padStart(2, '0')}-${String(1000 + i * 37).slice(-4)}`;
    const notes = NOTES[i % NOTES.length].replace('{email}', email).replace('{phone}', phone).replace('{card}', card).replace('{ssn}', ssn);
    rows.push({ id: i + 1, name, email, phone, card_number: card, ssn, notes });
  }
  return rows;
}

const ident = (s) => `"${s.replace(/"/g, '""')}"`;
const literal = (s) => `'${s.replace(/'/g, "''")}'`;

function withDatabase(databaseUrl, name) {
  const u = new URL(databaseUrl);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.href;
}

async function withClient(url, fn) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates (or brings up to date) the demo database, its owner role with `password`, and the customers table.
 * Uses the superuser in `adminUrl` (DATABASE_URL). Safe to run again: the role's password is reset to the
 * stored one and rows are only inserted into an empty table.
 * @returns {{createdDatabase: boolean, insertedRows: number, host: string, port: number}}
 */
export async function ensureDemoDatabase(adminUrl, { database, role, password, rows = 50 }) {
  const maintenance = withDatabase(adminUrl, 'postgres');
  let createdDatabase = false;
  await withClient(maintenance, async (c) => {
    // Let the server hash it by its password_encryption setting (scram-sha-256 or md5).
    const roleExists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount > 0;
    const verb = roleExists ? 'ALTER' : 'CREATE';
    await c.query(`${verb} ROLE ${ident(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${literal(password)}`);
    const dbExists = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount > 0;
    if (!dbExists) {
      try {
        await c.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(role)}`);
        createdDatabase = true;
      } catch (err) {
        if (err?.code !== '42P04') throw err; // created concurrently
      }
    }
  });

  let insertedRows = 0;
  await withClient(withDatabase(adminUrl, database), async (c) => {
    await c.query(`CREATE TABLE IF NOT EXISTS customers (
      id integer PRIMARY KEY,
      name text NOT NULL,
      email text NOT NULL,
      phone text,
      card_number text,
      ssn text,
      notes text
    )`);
    await c.query(`ALTER TABLE customers OWNER TO ${ident(role)}`);
    const { rows: [{ n }] } = await c.query('SELECT count(*)::int AS n FROM customers');
    if (n === 0) {
      const people = syntheticCustomers(rows);
      const values = [];
      const params = [];
      for (const p of people) {
        const base = params.length;
        values.push(`(${[1, 2, 3, 4, 5, 6, 7].map((k) => `$${base + k}`).join(', ')})`);
        params.push(p.id, p.name, p.email, p.phone, p.card_number, p.ssn, p.notes);
      }
      await c.query(`INSERT INTO customers (id, name, email, phone, card_number, ssn, notes) VALUES ${values.join(', ')} ON CONFLICT (id) DO NOTHING`, params);
      insertedRows = people.length;
    }
  });
  const u = new URL(adminUrl);
  return { createdDatabase, insertedRows, host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port || 5432) };
}
