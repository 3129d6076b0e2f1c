import { ConfigError } from '#common';

/** What decides whether the sandbox runs (API.md §9); gathered by main.ts, judged by one pure function. */
export interface SandboxModeInput {
  /** The `pays/` folder in effect (PAYS_DIR or the default `./pays`). */
  readonly paysDir: string;
  /** PAYS_DIR was given explicitly (a mistyped one must not fall back to the sandbox). */
  readonly paysDirSet: boolean;
  readonly paysDirExists: boolean;
  /** Channel instances read from the folder. */
  readonly configuredInstances: number;
  /** PAY_SANDBOX: undefined when unset (auto). */
  readonly paySandbox: boolean | undefined;
  readonly nodeEnv: string;
  readonly host: string;
  readonly apiKeysSet: boolean;
  readonly publicBaseUrlSet: boolean;
}

export interface SandboxMode {
  readonly sandbox: boolean;
  /** Why, in a few words (logged at start). */
  readonly reason: string;
}

/** Loopback listen addresses: only this machine can reach the server. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * Decides sandbox mode or refuses to start (ConfigError). The sandbox's cashier lets anyone mark an
 * order paid for free, so it runs only where nothing says this is a real deployment, or when
 * PAY_SANDBOX=true says so explicitly (never with NODE_ENV=production).
 */
export function decideSandboxMode(input: SandboxModeInput): SandboxMode {
  if (input.paysDirSet && !input.paysDirExists) {
    throw new ConfigError(
      `PAYS_DIR is set to "${input.paysDir}", which does not exist: fix the path (or unset PAYS_DIR for the sandbox)`,
    );
  }
  const production = input.nodeEnv === 'production';
  if (input.paySandbox === true) {
    if (production) {
      throw new ConfigError(
        'PAY_SANDBOX=true with NODE_ENV=production: the sandbox never runs in production; configure channels in pays/',
      );
    }
    return { sandbox: true, reason: 'PAY_SANDBOX=true' };
  }
  if (input.paySandbox === false) return { sandbox: false, reason: 'PAY_SANDBOX=false' };
  if (input.configuredInstances > 0) return { sandbox: false, reason: `channels configured in ${input.paysDir}` };

  const signals: string[] = [];
  if (input.apiKeysSet) signals.push('API_KEYS is set');
  if (input.publicBaseUrlSet) signals.push('PUBLIC_BASE_URL is set');
  if (production) signals.push('NODE_ENV=production');
  if (!isLoopbackHost(input.host)) signals.push(`HOST=${input.host} is not a loopback address`);
  if (signals.length > 0) {
    throw new ConfigError(
      `no channel instance in ${input.paysDir}, and this looks like a real deployment (${signals.join(', ')}): ` +
        'configure channels in pays/, or set PAY_SANDBOX=true to run the simulators on purpose',
    );
  }
  return { sandbox: true, reason: `no channel instance in ${input.paysDir}` };
}
