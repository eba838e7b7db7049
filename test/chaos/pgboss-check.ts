import type { PgRun, WorkerProcess } from './pgboss-fleet.ts';

/*
 * What the pg-boss chaos test reads from the run history after the fact, beside serve-check.ts's
 * `checkLanes` (which applies as it is): how each kill ended, and how long its lane waited.
 */

/** One worker SIGKILLed and started again later in its place. */
export type Kill = {
  n: number;
  victim: WorkerProcess;
  /** When the SIGKILL was sent (epoch ms). */
  at: number;
  /** The runs it held in the store when it was killed. */
  held: { id: number; sync: string; lane: string | null }[];
  /** The newest run id when it was killed: the lane's next run has a greater one. */
  lastRunId: number;
  /** How long its place stayed empty before the restart was spawned. */
  downMs: number;
  aimed: boolean;
  /** Its place stayed empty until its lane ran again (or long past the bound): only live workers could take it. */
  long: boolean;
  /** The process started in its place; null until then. */
  restart: WorkerProcess | null;
};

export type Takeover = {
  kill: number;
  lane: string;
  /** The run the kill cut short. */
  runId: number;
  /** From the SIGKILL, and from the dead run's last heartbeat, to the lane's next run starting. */
  fromKillMs: number | null;
  fromHeartbeatMs: number | null;
  /** The kill left the victim's place empty until the lane ran again. */
  long: boolean;
  /** Whose run was next: the process restarted in the victim's place, or another worker. */
  by: 'restarted' | 'other' | 'none';
  nextRunId: number | null;
};

/** Up to three examples of a finding, so a failure shows what went wrong without a dump. */
export const examples = (items: string[]): string =>
  `${items.slice(0, 3).join('; ')}${items.length > 3 ? `; … ${items.length - 3} more` : ''}`;

const ms = (iso: string | null): number => (iso === null ? Number.POSITIVE_INFINITY : Date.parse(iso));
export const showRun = (r: PgRun): string =>
  `run ${r.id} ${r.sync} ${r.status} [${r.startedAt} – ${r.endedAt ?? '…'}] by ${r.holder}`;

/**
 * Every run ended `succeeded`, except those a kill cut short: each of these ended `abandoned`, at its
 * last heartbeat, no later than the SIGKILL. Nothing is left running once every worker stopped.
 */
export function checkEnds(runs: PgRun[], kills: Kill[]): string[] {
  const findings: string[] = [];
  const struck = new Map(kills.flatMap((k) => k.held.map((r) => [r.id, k] as const)));
  const bad = runs.filter((r) => r.status !== 'succeeded' && !(r.status === 'abandoned' && struck.has(r.id)));
  if (bad.length)
    findings.push(
      `runs: ${bad.length} runs neither succeeded nor abandoned by a kill: ${examples(
        bad.map((r) => `${showRun(r)}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}`),
      )}`,
    );
  const byId = new Map(runs.map((r) => [r.id, r]));
  const notAbandoned = [...struck.keys()].filter((id) => byId.get(id)?.status !== 'abandoned');
  if (notAbandoned.length)
    findings.push(
      `runs: ${notAbandoned.length} runs a kill cut short did not end abandoned: ${examples(
        notAbandoned.map((id) => (byId.get(id) ? showRun(byId.get(id)!) : `run ${id} (gone)`)),
      )}`,
    );
  const late = [...struck].filter(([id, k]) => {
    const r = byId.get(id);
    return r?.status === 'abandoned' && (ms(r.endedAt) > k.at + 2 || r.endedAt !== r.renewedAt);
  });
  if (late.length)
    findings.push(
      `runs: ${late.length} abandoned runs do not end at their last heartbeat before the kill: ${examples(
        late.map(
          ([id, k]) =>
            `${showRun(byId.get(id)!)} (last heartbeat ${byId.get(id)!.renewedAt}), killed at ${new Date(k.at).toISOString()}`,
        ),
      )}`,
    );
  return findings;
}

/**
 * For every run a kill cut short: when its lane's next run started, and in which worker. Each lane
 * must run again within `boundMs` of the kill, whoever takes it.
 */
export function checkTakeovers(
  kills: Kill[],
  runs: PgRun[],
  boundMs: number,
): { findings: string[]; takeovers: Takeover[] } {
  const takeovers: Takeover[] = [];
  const failures: string[] = [];
  const byId = new Map(runs.map((r) => [r.id, r]));
  for (const k of kills) {
    for (const held of k.held) {
      if (held.lane === null) continue;
      const next = runs.find((r) => r.id > k.lastRunId && r.lane === held.lane);
      const heartbeat = byId.get(held.id)?.renewedAt ?? null;
      const takeover: Takeover = {
        kill: k.n,
        lane: held.lane,
        runId: held.id,
        long: k.long,
        fromKillMs: next ? ms(next.startedAt) - k.at : null,
        fromHeartbeatMs: next && heartbeat ? ms(next.startedAt) - ms(heartbeat) : null,
        by: !next ? 'none' : next.holder === k.restart?.holder ? 'restarted' : 'other',
        nextRunId: next?.id ?? null,
      };
      takeovers.push(takeover);
      if (!next || takeover.fromKillMs! > boundMs || takeover.fromKillMs! < 0)
        failures.push(
          `kill ${k.n} (pid ${k.victim.pid}, run ${held.id} ${held.sync}): lane ${held.lane} ${
            next
              ? `next ran ${takeover.fromKillMs} ms after the kill, run ${next.id} by ${next.holder}`
              : 'never ran again'
          }`,
        );
    }
  }
  const findings: string[] = [];
  if (failures.length)
    findings.push(
      `takeover: ${failures.length} of ${takeovers.length} lanes a killed worker held did not run again within ${boundMs} ms: ${examples(failures)}`,
    );
  if (takeovers.length === 0)
    findings.push('takeover: no kill hit a worker inside a run, so no takeover was tested');
  return { findings, takeovers };
}

export function describeTakeovers(takeovers: Takeover[]): string {
  const stats = (values: number[]): string => {
    const sorted = [...values].sort((a, b) => a - b);
    if (!sorted.length) return 'none';
    const median = sorted[Math.floor(sorted.length / 2)];
    return `min ${sorted[0]}, median ${median}, max ${sorted.at(-1)}`;
  };
  const count = (by: Takeover['by']) => takeovers.filter((t) => t.by === by).length;
  return `${takeovers.length} lanes taken over (restarted worker ${count('restarted')}, another ${count(
    'other',
  )}, none ${count('none')}); ms to the lane's next run from the kill: ${stats(
    takeovers.flatMap((t) => (t.fromKillMs === null ? [] : [t.fromKillMs])),
  )}; from the dead run's last heartbeat: ${stats(
    takeovers.flatMap((t) => (t.fromHeartbeatMs === null ? [] : [t.fromHeartbeatMs])),
  )}; each: ${takeovers
    .map(
      (t) =>
        `#${t.kill} ${t.long ? 'long' : 'short'} run ${t.runId} → ${t.nextRunId ?? '-'} ${t.fromKillMs ?? '-'} ms ${t.by}`,
    )
    .join(', ')}`;
}

/**
 * The design's bound: every lane a long kill left held (the victim's place empty meanwhile) was taken
 * over by a live worker within `boundMs` of the kill.
 */
export function checkDesignTakeovers(takeovers: Takeover[], boundMs: number): string[] {
  const long = takeovers.filter((t) => t.long);
  const slow = long.filter((t) => t.by !== 'other' || t.fromKillMs === null || t.fromKillMs > boundMs);
  const findings: string[] = [];
  if (slow.length)
    findings.push(
      `takeover: ${slow.length} of ${long.length} lanes a killed worker held were not taken over by a live worker within ${boundMs} ms: ${examples(
        slow.map(
          (t) =>
            `kill ${t.kill}: run ${t.runId}'s lane ${t.nextRunId === null ? 'never ran again' : `ran again ${t.fromKillMs} ms after the kill (${t.fromHeartbeatMs} ms after its last heartbeat), run ${t.nextRunId}, by the ${t.by === 'other' ? 'live' : t.by} worker`}`,
        ),
      )}`,
    );
  if (long.length === 0) findings.push('takeover: no long kill hit a worker inside a run');
  return findings;
}
