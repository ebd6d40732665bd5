/** Base class of every error this library throws. */
export class PortcullisError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A message on a wire or a bus did not match its schema. */
export class SchemaError extends PortcullisError {
  constructor(
    readonly what: string,
    readonly issues: string[],
    options?: { cause?: unknown },
  ) {
    super(`invalid ${what}: ${issues.join('; ')}`, options);
  }
}

/** A sealed secret could not be opened (wrong key, tampered ciphertext). */
export class SealError extends PortcullisError {}

/** An app's environment failed its schema at boot; `issues` has one `KEY: message` line per bad key. */
export class EnvError extends PortcullisError {
  constructor(
    readonly app: string,
    readonly issues: string[],
    options?: { cause?: unknown },
  ) {
    super(`invalid ${app} environment: ${issues.join('; ')}`, options);
  }
}
