import type { Held, ServeProcess, StoredRequest, StoredRun } from './fleet.ts';

/** Up to three examples of a finding, so a failure shows what went wrong without a dump. */
const examples = (items: string[]): string =>
  `${items.slice(0, 3).join('; ')}${items.length > 3 ? `; … ${items.length - 3} more` : ''}`;

const ms = (iso: string | null): number => (iso === null ? Number.POSITIVE_INFINITY : Date.parse(iso));
const show = (r: StoredRun): string =>
  `run ${r.id} ${r.sync} ${r.status} [${r.startedAt} – ${r.endedAt ?? '…'}] by ${r.holder}`;

/**
 * No two runs of one lane overlapped: per lane, in the order runs started, each starts no earlier
 * than every run before it ended (`toleranceMs` of clock granularity allowed). An abandoned run ends
 * at its last heartbeat, the last instant it could have written. Every run of a sync holds the lane
 * its bundle gives it.
 */
export function checkLanes(
  runs: StoredRun[],
  laneOfSync: ReadonlyMap<string, string>,
  toleranceMs: number,
): { findings: string[]; maxOverlapMs: number; lanes: Map<string, number> } {
  const findings: string[] = [];
  const wrongLane = runs.filter((r) => r.lane !== laneOfSync.get(r.sync));
  if (wrongLane.length)
    findings.push(
      `lanes: ${wrongLane.length} runs not in their bundle's lane: ${examples(
        wrongLane.map((r) => `${show(r)} in lane ${r.lane} (expected ${laneOfSync.get(r.sync)})`),
      )}`,
    );
  const byLane = new Map<string, StoredRun[]>();
  for (const r of runs) {
    if (r.lane === null) continue;
    byLane.set(r.lane, [...(byLane.get(r.lane) ?? []), r]);
  }
  const overlaps: string[] = [];
  let maxOverlapMs = 0;
  for (const laneRuns of byLane.values()) {
    const sorted = [...laneRuns].sort((a, b) => ms(a.startedAt) - ms(b.startedAt) || a.id - b.id);
    let latest: StoredRun | null = null;
    for (const r of sorted) {
      if (latest) {
        const overlap = Math.min(ms(latest.endedAt), ms(r.endedAt)) - ms(r.startedAt);
        if (overlap > 0) maxOverlapMs = Math.max(maxOverlapMs, overlap);
        if (overlap > toleranceMs) overlaps.push(`${show(latest)} and ${show(r)}: ${overlap} ms`);
      }
      if (!latest || ms(r.endedAt) > ms(latest.endedAt)) latest = r;
    }
  }
  if (overlaps.length)
    findings.push(`lanes: ${overlaps.length} runs overlapped a run of their lane: ${examples(overlaps)}`);
  return { findings, maxOverlapMs, lanes: new Map([...byLane].map(([l, rs]) => [l, rs.length])) };
}

/**
 * Every run ended `succeeded`, except the runs a SIGKILL cut short, which ended `abandoned` at
 * their last heartbeat (no later than the kill); no queue request failed or was left running.
 */
export function checkEnds(runs: StoredRun[], requests: StoredRequest[], kills: KillRecord[]): string[] {
  const findings: string[] = [];
  const killedRuns = new Map(kills.flatMap((k) => k.held.runs.map((r) => [r.id, k] as const)));
  const bad = runs.filter(
    (r) => r.status !== 'succeeded' && !(r.status === 'abandoned' && killedRuns.has(r.id)),
  );
  if (bad.length)
    findings.push(
      `runs: ${bad.length} runs neither succeeded nor abandoned by a kill: ${examples(
        bad.map((r) => `${show(r)}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}`),
      )}`,
    );
  const byId = new Map(runs.map((r) => [r.id, r]));
  const notAbandoned = [...killedRuns.keys()].filter((id) => byId.get(id)?.status !== 'abandoned');
  if (notAbandoned.length)
    findings.push(
      `runs: ${notAbandoned.length} runs a SIGKILL cut short did not end abandoned: ${examples(
        notAbandoned.map((id) => (byId.get(id) ? show(byId.get(id)!) : `run ${id} (gone)`)),
      )}`,
    );
  // Its interval must be the time it could have written: it cannot have beaten its heart after the kill.
  const late = [...killedRuns].filter(([id, k]) => {
    const r = byId.get(id);
    return r?.status === 'abandoned' && ms(r.endedAt) > k.at + 2;
  });
  if (late.length)
    findings.push(
      `runs: ${late.length} abandoned runs end after the SIGKILL that cut them short (when noticed, not at their last heartbeat): ${examples(
        late.map(([id, k]) => `${show(byId.get(id)!)}, killed at ${new Date(k.at).toISOString()}`),
      )}`,
    );
  const stuck = requests.filter((q) => q.status === 'running' || q.status === 'failed');
  if (stuck.length)
    findings.push(
      `requests: ${stuck.length} queue requests failed or still running: ${examples(
        stuck.map(
          (q) =>
            `request ${q.id} ${q.sync} ${q.status} (holder ${q.holder})${q.errorCode ? ` ${q.errorCode}: ${q.errorMessage}` : ''}`,
        ),
      )}`,
    );
  return findings;
}

export type KillRecord = {
  n: number;
  victim: ServeProcess;
  survivor: ServeProcess;
  /** When the SIGKILL was sent (epoch ms). */
  at: number;
  held: Held;
  /** The newest run id when it was killed: a lane's next run has a greater one. */
  lastRunId: number;
  /** How long the victim stayed dead; long ones outlast the lease, so only the survivor can take over. */
  downMs: number;
  long: boolean;
  restart: ServeProcess | null;
};

export type Takeover = {
  kill: number;
  lane: string;
  long: boolean;
  /** From the SIGKILL to the lane's next run starting; null if it never did. */
  ms: number | null;
  by: 'survivor' | 'restarted' | 'other' | 'none';
};

/**
 * For every lane a killed process held: how long until the lane's next run started, and in which
 * process. A kill whose victim stayed dead past the lease must be taken over by the survivor, before
 * the victim was started again and within `boundMs`.
 */
export function checkTakeovers(
  kills: KillRecord[],
  runs: StoredRun[],
  boundMs: number,
): { findings: string[]; takeovers: Takeover[] } {
  const takeovers: Takeover[] = [];
  const failures: string[] = [];
  for (const k of kills) {
    for (const lane of k.held.lanes) {
      const next = runs.find((r) => r.id > k.lastRunId && r.lane === lane);
      const by: Takeover['by'] = !next
        ? 'none'
        : next.holder === k.survivor.holder
          ? 'survivor'
          : next.holder === k.restart?.holder
            ? 'restarted'
            : 'other';
      const took = next ? ms(next.startedAt) - k.at : null;
      takeovers.push({ kill: k.n, lane, long: k.long, ms: took, by });
      if (!k.long) continue;
      const restartedAt = k.restart?.spawnedAt ?? Number.POSITIVE_INFINITY;
      if (!next || by !== 'survivor' || ms(next.startedAt) >= restartedAt || took! > boundMs)
        failures.push(
          `kill ${k.n} (pid ${k.victim.pid}, down ${k.downMs} ms): lane ${lane} ${
            next
              ? `next ran ${took} ms after the kill, in the ${by} process (${next.holder}), run ${next.id}`
              : 'never ran again'
          }`,
        );
    }
  }
  const findings: string[] = [];
  const tested = takeovers.filter((t) => t.long).length;
  if (failures.length)
    findings.push(
      `takeover: ${failures.length} of ${tested} lanes held by a process that stayed dead past the lease were not taken over by the live process within ${boundMs} ms: ${examples(failures)}`,
    );
  if (tested === 0)
    findings.push('takeover: no kill left a lane held past the lease, so no takeover was tested');
  return { findings, takeovers };
}

export function describeTakeovers(takeovers: Takeover[]): string {
  const done = takeovers.filter((t) => t.ms !== null).map((t) => t.ms!);
  const sorted = [...done].sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const count = (by: Takeover['by']) => takeovers.filter((t) => t.by === by).length;
  return `${takeovers.length} lanes taken over (survivor ${count('survivor')}, restarted ${count('restarted')}, other ${count(
    'other',
  )}, none ${count('none')}); ms from kill to the lane's next run: ${
    sorted.length ? `min ${sorted[0]}, median ${pick(0.5)}, max ${sorted.at(-1)}` : 'none'
  }; each: ${takeovers
    .map((t) => `#${t.kill} ${t.lane} ${t.long ? 'long' : 'short'} ${t.ms ?? '-'} ms ${t.by}`)
    .join(', ')}`;
}
