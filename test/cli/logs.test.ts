import type { ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createLogger, readableMessage } from '../../src/cli/logging.ts';
import { sluiceChild, writeContactsConfig } from '../support/cli.ts';
import { tempDir } from '../support/tmp.ts';

/** `sluice serve --port 0 …` until its stdout has a line matching `until`; the process is killed after. */
async function serveUntil(dir: string, until: RegExp, ...args: string[]): Promise<string> {
  const child: ChildProcess = sluiceChild(dir, 'serve', '--port', '0', ...args);
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (until.test(out)) resolve(out);
    });
    child.on('exit', () => reject(new Error(`serve exited: ${out}`)));
  });
}

describe('serve logs', () => {
  it('are JSON lines when piped, with the chosen port in the listening line', async () => {
    const dir = tempDir();
    writeContactsConfig(dir);
    const out = await serveUntil(dir, /runtime started/);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const listening = lines.find((l) => l.url);
    expect(listening.msg).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
    expect(listening.msg).toBe(`listening on ${listening.url}`);
    expect(listening.url).not.toMatch(/:0$/);
  });

  it('are readable lines with --log-format pretty: time, level, message, and the port once', async () => {
    const dir = tempDir();
    writeContactsConfig(dir);
    const out = await serveUntil(dir, /runtime started/, '--log-format', 'pretty');
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on http:\/\/127\.0\.0\.1:\d+\n/m);
    expect(out).toMatch(/INFO: runtime started syncs=1\n/);
    expect(out).not.toContain('{"');
  });

  it('refuses a format it does not know', async () => {
    const dir = tempDir();
    writeContactsConfig(dir);
    await expect(serveUntil(dir, /never/, '--log-format', 'xml')).rejects.toThrow(/serve exited/);
  });
});

describe('readable log lines', () => {
  it('put the sync first and the other fields after the message', () => {
    expect(
      readableMessage({
        level: 30,
        time: 1,
        sync: 'contacts',
        msg: 'run ended',
        run: 7,
        status: 'succeeded',
        error: 'a b',
      }),
    ).toBe('contacts: run ended run=7 status=succeeded error="a b"');
    expect(readableMessage({ msg: 'listening on http://x:1', url: 'http://x:1' })).toBe(
      'listening on http://x:1',
    );
  });

  it('are the default on a terminal; JSON is the default otherwise', async () => {
    const collect = async (isTTY: boolean) => {
      const stream = Object.assign(new PassThrough(), { isTTY });
      let text = '';
      stream.on('data', (c: Buffer) => {
        text += c.toString();
      });
      const log = await createLogger({ level: 'info', stream });
      log.info({ sync: 'contacts', run: 3 }, 'run started');
      await new Promise((r) => setImmediate(r));
      return text;
    };
    expect(await collect(true)).toMatch(/INFO.*contacts: run started run=3/);
    expect(JSON.parse(await collect(false))).toMatchObject({ sync: 'contacts', run: 3, msg: 'run started' });
  });
});
