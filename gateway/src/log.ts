// Structured JSON logs, one object per line on stdout.

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(base: Record<string, unknown> = {}, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const emit = (level: string, msg: string, fields?: Record<string, unknown>) =>
    out(JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields }) + '\n');
  return {
    info: (msg, fields) => emit('info', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}

export const silentLogger: Logger = { info() {}, error() {} };
