// Minimal typings for passport-openidconnect 0.1.2 (it ships none): what oidc-login.service.ts uses.
declare module 'passport-openidconnect' {
  import type { Strategy as PassportStrategy } from 'passport';

  export interface StrategyOptions {
    issuer: string;
    authorizationURL: string;
    tokenURL: string;
    userInfoURL?: string;
    clientID: string;
    clientSecret: string;
    callbackURL?: string;
    scope?: string | string[];
    nonce?: boolean;
    skipUserProfile?: boolean;
    proxy?: boolean;
    passReqToCallback?: false;
  }

  export interface Profile {
    id: string;
    displayName?: string;
    username?: string;
    emails?: { value: string }[];
    _json?: Record<string, unknown>;
  }

  export type VerifyCallback = (err: Error | null, user?: unknown, info?: unknown) => void;

  /** The 9-argument form: userinfo profile and ID-token profile apart, plus the raw ID token. */
  export type VerifyFunction = (
    issuer: string,
    uiProfile: Profile | undefined,
    idProfile: Profile,
    context: unknown,
    idToken: string,
    accessToken: string,
    refreshToken: string | undefined,
    params: Record<string, unknown>,
    done: VerifyCallback,
  ) => void;

  export class Strategy implements PassportStrategy {
    constructor(options: StrategyOptions, verify: VerifyFunction);
    name: string;
    authenticate(req: unknown, options?: Record<string, unknown>): void;
  }
  export default Strategy;
}
