/**
 * Who may connect (docs/security.md [S-1], [S-2]): a device's first connection registers its id with
 * the password it presents (policy `open`), or waits for approval (`approve`), or is refused unless
 * provisioned (`closed`). After that the password must match. Guessing is throttled.
 */
import type { Logger } from '../log/logger.js';
import type { AccountStore } from '../store/account-store.js';
import { isReservedDeviceId } from '../core/topic.js';
import { mqttAccountNameProblem, type AccountRole } from './access-policy.js';
import { AuthThrottle } from './auth-throttle.js';
import { hashPassword, verifyPassword } from './password-hash.js';

export const REGISTRATION_POLICIES = ['open', 'closed', 'approve'] as const;
export type RegistrationPolicy = (typeof REGISTRATION_POLICIES)[number];

/** A device generates its password; anything shorter is a default or a typo, not a secret. */
export const MIN_PASSWORD_LENGTH = 8;

/** MQTT 3.1.1 CONNACK return codes. */
export const IDENTIFIER_REJECTED = 2;
export const BAD_CREDENTIALS = 4;
export const NOT_AUTHORIZED = 5;
type RefusalCode = typeof IDENTIFIER_REJECTED | typeof BAD_CREDENTIALS | typeof NOT_AUTHORIZED;

export type AuthOutcome = { ok: true; role: AccountRole } | { ok: false; returnCode: RefusalCode; reason: string };

export class Registration {
  constructor(
    private readonly accounts: AccountStore,
    private readonly policy: RegistrationPolicy,
    private readonly log: Logger,
    private readonly throttle = new AuthThrottle(),
  ) {}

  async authenticate(name: string | undefined, password: string | undefined, address: string | undefined): Promise<AuthOutcome> {
    const refuse = (returnCode: RefusalCode, reason: string): AuthOutcome => {
      // Never the password: only who, from where, and why.
      this.log.warn({ client: name, address }, `connection refused: ${reason}`);
      return { ok: false, returnCode, reason };
    };
    if (!name) return refuse(BAD_CREDENTIALS, 'no username: a device logs in with its device id as username');
    const problem = mqttAccountNameProblem(name);
    // [P-2] A reserved id is refused at every login, so an account made before the reservation cannot use it either.
    if (problem) return refuse(isReservedDeviceId(name) ? IDENTIFIER_REJECTED : BAD_CREDENTIALS, `username ${problem}`);
    if (!password) return refuse(BAD_CREDENTIALS, 'no password: a device must present the password it generated');

    let outcome: AuthOutcome | undefined;
    await this.throttle.run(
      [`id:${name}`],
      async () => {
        const result = await this.#check(name, password);
        outcome = result.outcome;
        return !result.penalize;
      },
      [`address:${address ?? '?'}`],
    );
    if (!outcome!.ok) return refuse(outcome!.returnCode, outcome!.reason);
    this.accounts.recordLogin(name, address);
    return outcome!;
  }

  async #check(name: string, password: string): Promise<{ outcome: AuthOutcome; penalize: boolean }> {
    const refused = (returnCode: 4 | 5, reason: string, penalize: boolean) => ({ outcome: { ok: false as const, returnCode, reason }, penalize });
    const account = this.accounts.get(name);
    if (!account) {
      if (this.policy === 'closed') return refused(NOT_AUTHORIZED, `unknown device ${name} (registration is closed): add it with 'mqttkit device add ${name}'`, true);
      if (password.length < MIN_PASSWORD_LENGTH) return refused(BAD_CREDENTIALS, `a new device's password must have at least ${MIN_PASSWORD_LENGTH} characters`, true);
      const secret = await hashPassword(password);
      if (this.policy === 'approve') {
        if (this.accounts.create(name, 'device', 'pending', secret)) this.log.info({ device: name }, `new device waits for approval: run 'mqttkit device approve ${name}'`);
        return refused(NOT_AUTHORIZED, `device ${name} waits for approval ('mqttkit device approve ${name}')`, false);
      }
      if (!this.accounts.create(name, 'device', 'active', secret)) return this.#check(name, password); // lost a race with itself
      this.log.info({ device: name }, 'new device registered (trust on first use)');
      return { outcome: { ok: true, role: 'device' }, penalize: false };
    }
    if (account.status === 'pending') return refused(NOT_AUTHORIZED, `device ${name} waits for approval ('mqttkit device approve ${name}')`, false);
    if (account.secret === null) {
      if (password.length < MIN_PASSWORD_LENGTH) return refused(BAD_CREDENTIALS, `a new password must have at least ${MIN_PASSWORD_LENGTH} characters`, true);
      this.accounts.setSecret(name, await hashPassword(password));
      this.log.info({ device: name }, 'device registered a new password after a reset');
      return { outcome: { ok: true, role: account.role }, penalize: false };
    }
    if (await verifyPassword(password, account.secret)) return { outcome: { ok: true, role: account.role }, penalize: false };
    return refused(BAD_CREDENTIALS, `wrong password for ${name} (a reflashed device needs 'mqttkit device reset ${name}')`, true);
  }
}
