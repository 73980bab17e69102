// The one root pino logger. Module loggers are children ({ module }); request loggers add { reqId }.
// Never log credentials: redaction covers Authorization, cookies and any password/secret field.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  '*.password', '*.secret', 'password', 'secret',
];

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream; mixin?: LoggerOptions['mixin'] } = {}): Logger {
  const options: LoggerOptions = {
    ...(opts.mixin ? { mixin: opts.mixin } : {}),   // e.g. the gateway's request id for module loggers
    level: opts.level ?? 'info',
    base: { service: 'gateway' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
