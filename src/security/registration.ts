/**
 * Who may connect (docs/security.md [S-1], [S-2]): a device's first connection registers its id with
 * the password it presents (policy `open`), or waits for approval (`approve`), or is refused unless
 * provisioned (`closed`). After that the password must match. Guessing is throttled by address, a
 * password that verified before gets in at once, and registrations in flight are capped, so a device
 * with the right password gets in whatever others do.
 */
import { isReservedDeviceId } from '../core/topic.js';
import type { Logger } from '../log/logger.js';
import { OncePerKey } from '../log/once.js';
import type { AccountStore } from '../store/account-store.js';
import { type AccountRole, mqttAccountNameProblem } from './access-policy.js';
import { KnownPasswords } from './known-passwords.js';
import { LoginThrottle } from './login-throttle.js';
import { hashPassword, verifyPassword } from './password-hash.js';

export const REGISTRATION_POLICIES = ['open', 'closed', 'approve'] as const;
export type RegistrationPolicy = (typeof REGISTRATION_POLICIES)[number];

/** A device generates its password; anything shorter is a default or a typo, not a secret. */
export const MIN_PASSWORD_LENGTH = 8;

/** MQTT 3.1.1 CONNACK return codes. */
export const IDENTIFIER_REJECTED = 2;
export const SERVER_UNAVAILABLE = 3;
export const BAD_CREDENTIALS = 4;
export const NOT_AUTHORIZED = 5;
type RefusalCode = typeof IDENTIFIER_REJECTED | typeof SERVER_UNAVAILABLE | typeof BAD_CREDENTIALS | typeof NOT_AUTHORIZED;

export type AuthOutcome = { ok: true; role: AccountRole } | { ok: false; returnCode: RefusalCode; reason: string };

/**
 * [S-2] New passwords being hashed at once (registrations, and re-registrations after a reset). Each
 * costs a scrypt run; a device retries a refusal, so a storm of new ids waits its turn instead of
 * queueing thousands of hashes. `total` binds addresses that have one in flight already: an address
 * with none always gets its first.
 */
export interface RegistrationLimits {
  perAddress: number;
  total: number;
}
export const DEFAULT_REGISTRATION_LIMITS: RegistrationLimits = { perAddress: 16, total: 32 };

const STRICTNESS: Record<RegistrationPolicy, number> = { open: 0, approve: 1, closed: 2 };
const stricter = (a: RegistrationPolicy, b: RegistrationPolicy): RegistrationPolicy => (STRICTNESS[a] >= STRICTNESS[b] ? a : b);

export class Registration {
  readonly #known = new KnownPasswords();
  readonly #registering = new Map<string, number>();
  #registeringTotal = 0;
  readonly #once = new OncePerKey(60_000);

  constructor(
    private readonly accounts: AccountStore,
    private policy: RegistrationPolicy,
    private readonly log: Logger,
    private readonly throttle = new LoginThrottle(),
    private readonly limits: RegistrationLimits = DEFAULT_REGISTRATION_LIMITS,
  ) {}

  /** The policy in force (`--registration`, or as the dashboard switched it since the start). */
  get currentPolicy(): RegistrationPolicy {
    return this.policy;
  }

  /** Switches the policy for the next connections (the dashboard's Security page); accounts stay as they are. */
  setPolicy(policy: RegistrationPolicy): void {
    if (policy === this.policy) return;
    this.log.info({ from: this.policy, to: policy }, 'registration policy switched');
    this.policy = policy;
  }

  /** `gone`: true once the client has hung up; its turn then costs no hashing and no penalty. */
  async authenticate(
    name: string | undefined,
    password: string | undefined,
    address: string | undefined,
    gone: () => boolean = () => false,
  ): Promise<AuthOutcome> {
    /** `quietKey`: a refusal that a storm repeats is logged once a minute per key. */
    const refuse = (returnCode: RefusalCode, reason: string, quietKey?: string): AuthOutcome => {
      // Never the password: only who, from where, and why.
      if (quietKey === undefined || this.#once.first(quietKey)) this.log.warn({ client: name, address }, `connection refused: ${reason}`);
      return { ok: false, returnCode, reason };
    };
    if (!name) return refuse(BAD_CREDENTIALS, 'no username: a device logs in with its device id as username');
    const problem = mqttAccountNameProblem(name);
    // [P-2] A reserved id is refused at every login, so an account made before the reservation cannot use it either.
    if (problem) return refuse(isReservedDeviceId(name) ? IDENTIFIER_REJECTED : BAD_CREDENTIALS, `username ${problem}`);
    if (!password) return refuse(BAD_CREDENTIALS, 'no password: a device must present the password it generated');

    // The policy as the login came in, before anything is awaited (an admin may switch it meanwhile).
    const arrived = this.policy;
    // [S-2] The password that verified last time: in at once, ahead of every queue.
    const account = await this.accounts.get(name);
    if (account?.status === 'active' && account.secret !== null && this.#known.matches(name, account.secret, password)) {
      await this.accounts.recordLogin(name, address);
      return { ok: true, role: account.role };
    }

    const from = address ?? '?';
    const registers = account ? account.secret === null : arrived !== 'closed';
    if (registers) {
      const full = this.#enterRegistration(from);
      if (full) return refuse(SERVER_UNAVAILABLE, `${full}: try again in a few seconds (a device retries by itself)`, `registration-cap:${full}`);
    }
    try {
      let outcome: AuthOutcome | undefined;
      const admitted = await this.throttle.run(from, async () => {
        if (gone()) {
          outcome = { ok: false, returnCode: SERVER_UNAVAILABLE, reason: 'the client hung up while waiting its turn' };
          return true;
        }
        const result = await this.#check(name, password, arrived);
        outcome = result.outcome;
        return !result.penalize;
      });
      if (!admitted) return refuse(SERVER_UNAVAILABLE, `too many logins waiting from ${from}: try again in a few seconds`, `login-queue:${from}`);
      if (!outcome!.ok) return refuse(outcome!.returnCode, outcome!.reason, gone() ? `gone:${from}` : undefined);
      await this.accounts.recordLogin(name, address);
      return outcome!;
    } finally {
      if (registers) this.#leaveRegistration(from);
    }
  }

  /** Takes a registration slot; the reason when none is free. */
  #enterRegistration(address: string): string | undefined {
    const fromAddress = this.#registering.get(address) ?? 0;
    // An address with none in flight gets one whatever the total: else a few busy addresses, each under
    // its own cap, would hold every slot and keep each other address's new device out for as long as
    // they kept at it.
    if (fromAddress > 0 && this.#registeringTotal >= this.limits.total) return `${this.#registeringTotal} new devices are registering already`;
    if (fromAddress >= this.limits.perAddress) return `${fromAddress} new devices from ${address} are registering already`;
    this.#registering.set(address, fromAddress + 1);
    this.#registeringTotal++;
    return undefined;
  }

  #leaveRegistration(address: string): void {
    const left = (this.#registering.get(address) ?? 1) - 1;
    if (left > 0) this.#registering.set(address, left);
    else this.#registering.delete(address);
    this.#registeringTotal--;
  }

  /** `arrived`: the policy when the login came in (it may wait its turn, then hash, while an admin switches it). */
  async #check(name: string, password: string, arrived: RegistrationPolicy): Promise<{ outcome: AuthOutcome; penalize: boolean }> {
    const refused = (returnCode: RefusalCode, reason: string, penalize: boolean) => ({ outcome: { ok: false as const, returnCode, reason }, penalize });
    const account = await this.accounts.get(name);
    if (!account) {
      if (this.policy === 'closed')
        return refused(NOT_AUTHORIZED, `unknown device ${name} (registration is closed): add it with 'mqttkit device add ${name}'`, true);
      if (password.length < MIN_PASSWORD_LENGTH)
        return refused(BAD_CREDENTIALS, `a new device's password must have at least ${MIN_PASSWORD_LENGTH} characters`, true);
      const secret = await hashPassword(password);
      // The dashboard switches the policy live: one switched while this password hashed must not be
      // undone by it (an admin closing registration against a flood of new ids). The stricter one holds.
      const policy = stricter(arrived, this.policy);
      if (policy === 'closed')
        return refused(NOT_AUTHORIZED, `unknown device ${name} (registration was closed while it registered): add it with 'mqttkit device add ${name}'`, true);
      if (policy === 'approve') {
        if (await this.accounts.create(name, 'device', 'pending', secret))
          this.log.info({ device: name }, `new device waits for approval: run 'mqttkit device approve ${name}'`);
        return refused(NOT_AUTHORIZED, `device ${name} waits for approval ('mqttkit device approve ${name}')`, false);
      }
      if (!(await this.accounts.create(name, 'device', 'active', secret))) return this.#check(name, password, arrived); // lost a race with itself
      this.#known.remember(name, secret, password);
      this.log.info({ device: name }, 'new device registered (trust on first use)');
      return { outcome: { ok: true, role: 'device' }, penalize: false };
    }
    if (account.status === 'pending') return refused(NOT_AUTHORIZED, `device ${name} waits for approval ('mqttkit device approve ${name}')`, false);
    if (account.secret === null) {
      if (password.length < MIN_PASSWORD_LENGTH) return refused(BAD_CREDENTIALS, `a new password must have at least ${MIN_PASSWORD_LENGTH} characters`, true);
      const secret = await hashPassword(password);
      await this.accounts.setSecret(name, secret);
      this.#known.remember(name, secret, password);
      this.log.info({ device: name }, 'device registered a new password after a reset');
      return { outcome: { ok: true, role: account.role }, penalize: false };
    }
    if (await verifyPassword(password, account.secret)) {
      this.#known.remember(name, account.secret, password);
      return { outcome: { ok: true, role: account.role }, penalize: false };
    }
    return refused(BAD_CREDENTIALS, `wrong password for ${name} (a reflashed device needs 'mqttkit device reset ${name}')`, true);
  }
}
