// The one root pino logger. Module loggers are children ({ module }); request loggers add { reqId }.
// Never log credentials: redaction covers Authorization, cookies and any password/secret field.
// Distribution's log.formatter: json (pino's own lines), logstash (its field names: @timestamp, @version,
// message, level as a name) or text (logrus' logfmt: time="…" level=info msg="…" key=value); log.fields are
// static fields on every line.
import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  '*.password', '*.secret', 'password', 'secret',
];

export type LogFormatter = 'json' | 'logstash' | 'text';

export interface LoggerConfig {
  level?: string;
  destination?: NodeJS.WritableStream;
  mixin?: LoggerOptions['mixin'];
  formatter?: LogFormatter;
  /** Static fields on every line (Distribution's log.fields). */
  fields?: Readonly<Record<string, unknown>>;
}

export function createLogger(opts: LoggerConfig = {}): Logger {
  const formatter = opts.formatter ?? 'json';
  const options: LoggerOptions = {
    ...(opts.mixin ? { mixin: opts.mixin } : {}),   // e.g. the gateway's request id for module loggers
    level: opts.level ?? 'info',
    base: { service: 'gateway', ...opts.fields },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (formatter === 'logstash') {
    Object.assign(options, {
      base: { service: 'gateway', ...opts.fields, '@version': '1' },
      messageKey: 'message',
      timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
      formatters: { level: (label: string) => ({ level: label }) },
    } satisfies LoggerOptions);
  }
  if (formatter === 'text') return pino(options, logfmt(opts.destination ?? process.stdout) as DestinationStream);
  return opts.destination ? pino(options, opts.destination as DestinationStream) : pino(options);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

/** pino's JSON lines → logrus' text format: time="…" level=info msg="…" then the other fields, key=value. */
function logfmt(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString('utf8');
      const lines = text.split('\n').filter(Boolean).map((line) => {
        let o: Record<string, unknown>;
        try { o = JSON.parse(line); } catch { return line; }
        const { time, level, msg, ...rest } = o;
        const head = [`time=${quote(String(time ?? ''))}`, `level=${LEVELS[level as number] ?? String(level)}`, `msg=${quote(String(msg ?? ''))}`];
        return [...head, ...Object.entries(rest).map(([k, v]) => `${k}=${quote(typeof v === 'string' ? v : JSON.stringify(v))}`)].join(' ');
      });
      out.write(`${lines.join('\n')}\n`);
      done();
    },
  });
}

function quote(v: string): string {
  return /^[A-Za-z0-9._\/@:+-]+$/.test(v) ? v : JSON.stringify(v);
}
