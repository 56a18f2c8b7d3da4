/** The progress line: its figures, in-place redraws on a terminal, sparse plain lines elsewhere. */
import { describe, expect, test, vi } from 'vitest';
import { ProgressBar, consoleStream, formatDuration } from '@transfuse/core';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { stream: { isTTY, write: (s: string) => chunks.push(s) }, chunks };
}

describe('ProgressBar', () => {
  test('shows steps, percent, steps/s, the latest figures and the ETA', () => {
    let now = 0;
    const { stream } = capture(false);
    const bar = new ProgressBar(200, { label: 'train', stream, now: () => now });
    now = 10_000;
    bar.update(50, { loss: 0.123456 });
    // 50 steps in 10 s: 5 steps/s, 150 left: 30 s.
    expect(bar.line()).toBe('train 50/200 [#####---------------]  25% | 5.00 steps/s | loss 0.1235 | ETA 30s');
    now = 40_000;
    bar.update(200, { loss: 2e-5 });
    expect(bar.line()).toBe('train 200/200 [####################] 100% | 5.00 steps/s | loss 2.000e-5 | took 40s');
  });

  test('not a terminal: one plain line per 10% (or 30 s), and the final line once', () => {
    let now = 0;
    const { stream, chunks } = capture(false);
    const bar = new ProgressBar(100, { stream, now: () => now });
    for (let s = 1; s <= 100; s++) {
      now += 100;
      bar.update(s, { loss: 1 / s });
    }
    bar.done();
    expect(chunks).toHaveLength(10);
    expect(chunks.every((c) => c.endsWith('\n') && !c.includes('\r'))).toBe(true);
    expect(chunks[0]).toMatch(/^10\/100 /);
    expect(chunks[9]).toMatch(/^100\/100 .* took 10s\n$/);
    // A slow run prints on time too: 40 s without reaching the next 10%.
    const slow = capture(false);
    const bar2 = new ProgressBar(1000, { stream: slow.stream, now: () => now });
    now += 40_000;
    bar2.update(3);
    expect(slow.chunks).toHaveLength(1);
  });

  test('terminal: redraws one line in place at most 10 times a second, ends it on done()', () => {
    let now = 0;
    const { stream, chunks } = capture(true);
    const bar = new ProgressBar(1000, { stream, now: () => now });
    for (let s = 1; s <= 1000; s++) {
      now += 1; // 1 ms per step: 1 s in all
      bar.update(s);
    }
    bar.done();
    expect(chunks.length).toBeGreaterThanOrEqual(10);
    expect(chunks.length).toBeLessThanOrEqual(12);
    expect(chunks.every((c) => c.startsWith('\r'))).toBe(true);
    expect(chunks.at(-1)).toMatch(/^\r1000\/1000 .*\x1b\[K\n$/);
  });

  test('durations and bad totals', () => {
    expect([5, 65, 3725, Infinity].map(formatDuration)).toEqual(['5s', '1m05s', '1h02m', '?']);
    expect(() => new ProgressBar(0)).toThrow(/ProgressBar: total must be a positive integer, got 0/);
  });

  test('without a stream: process.stderr where Node has one, else plain console lines', () => {
    const stderr = (globalThis as { process?: { stderr?: { write?: unknown } } }).process?.stderr;
    const target = typeof stderr?.write === 'function' ? vi.spyOn(stderr as { write: (s: string) => boolean }, 'write').mockReturnValue(true) : vi.spyOn(console, 'log').mockReturnValue();
    try {
      const bar = new ProgressBar(2, { label: 'fallback', tty: false });
      bar.update(2);
      bar.done();
      expect(target).toHaveBeenCalledTimes(1);
      expect(String(target.mock.calls[0][0])).toMatch(/^fallback 2\/2 \[#+\] 100%/);
    } finally {
      target.mockRestore();
    }
  });

  test('consoleStream prints each line once, without the trailing newline', () => {
    const log = vi.spyOn(console, 'log').mockReturnValue();
    try {
      consoleStream.write('a line\n');
      consoleStream.write('\n');
      expect(log.mock.calls).toEqual([['a line']]);
    } finally {
      log.mockRestore();
    }
  });
});
