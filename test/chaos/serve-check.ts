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
 * Every run ended `succeeded`, except the runs a kill or a long freeze cut short, which ended
 * `abandoned` at their last heartbeat (no later than the SIGKILL or SIGSTOP); no queue request
 * failed or was left running.
 */
export function checkEnds(runs: StoredRun[], requests: StoredRequest[], strikes: Strike[]): string[] {
  const findings: string[] = [];
  const struck = new Map(strikes.flatMap((k) => k.held.runs.map((r) => [r.id, k] as const)));
  const bad = runs.filter((r) => r.status !== 'succeeded' && !(r.status === 'abandoned' && struck.has(r.id)));
  if (bad.length)
    findings.push(
      `runs: ${bad.length} runs neither succeeded nor abandoned by a kill or freeze: ${examples(
        bad.map((r) => `${show(r)}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}`),
      )}`,
    );
  const byId = new Map(runs.map((r) => [r.id, r]));
  // A run frozen about as long as its lease may have resumed and finished before anyone took it over.
  const notAbandoned = [...struck]
    .filter(([id, k]) => byId.get(id)?.status !== 'abandoned' && (k.kind === 'kill' || k.long))
    .map(([id]) => id);
  if (notAbandoned.length)
    findings.push(
      `runs: ${notAbandoned.length} runs a kill or long freeze cut short did not end abandoned: ${examples(
        notAbandoned.map((id) => (byId.get(id) ? show(byId.get(id)!) : `run ${id} (gone)`)),
      )}`,
    );
  // Its interval must be the time it could have written: it cannot have beaten its heart once stopped.
  const late = [...struck].filter(([id, k]) => {
    const r = byId.get(id);
    return r?.status === 'abandoned' && ms(r.endedAt) > k.at + 2;
  });
  if (late.length)
    findings.push(
      `runs: ${late.length} abandoned runs end after the kill or freeze that cut them short (when noticed, not at their last heartbeat): ${examples(
        late.map(([id, k]) => `${show(byId.get(id)!)}, ${k.kind} at ${new Date(k.at).toISOString()}`),
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

/** One process stopped: SIGKILLed and started again later, or frozen (SIGSTOP) and resumed (SIGCONT). */
export type Strike = {
  n: number;
  kind: 'kill' | 'freeze';
  victim: ServeProcess;
  survivor: ServeProcess;
  /** When the victim stopped: the SIGKILL, or the SIGSTOP of a freeze (epoch ms). */
  at: number;
  held: Held;
  /** The newest run id when it stopped: a lane's next run has a greater one. */
  lastRunId: number;
  /** How long the victim stayed dead or frozen. */
  downMs: number;
  /** Long enough past the lease that only the survivor can have taken the victim's lanes over in time. */
  long: boolean;
  /** When the victim's place was back: its restart spawned, or the frozen process resumed. */
  backAt: number | null;
  /** Whose runs are the victim's place's once back: the restarted process's, or the frozen one's own. */
  backHolder: string | null;
};

export type Takeover = {
  strike: number;
  kind: Strike['kind'];
  lane: string;
  long: boolean;
  /** From the SIGKILL or SIGSTOP to the lane's next run starting; null if it never did. */
  ms: number | null;
  /** Whose run was next: the live process's, the victim's place's once back, or someone else's. */
  by: 'survivor' | 'victim' | 'other' | 'none';
};

/**
 * For every lane a stopped process held: how long until the lane's next run started, and in which
 * process. A victim dead or frozen long past the lease must have its lanes taken over by the
 * survivor, before it was back and within `boundMs`. A dead pid on this host may be noticed at once;
 * a frozen process is alive, so only its lease running out lets its lanes go (as on another host).
 */
export function checkTakeovers(
  strikes: Strike[],
  runs: StoredRun[],
  boundMs: number,
): { findings: string[]; takeovers: Takeover[] } {
  const takeovers: Takeover[] = [];
  const failures: string[] = [];
  for (const k of strikes) {
    for (const lane of k.held.lanes) {
      const next = runs.find((r) => r.id > k.lastRunId && r.lane === lane);
      const by: Takeover['by'] = !next
        ? 'none'
        : next.holder === k.survivor.holder
          ? 'survivor'
          : next.holder === k.backHolder
            ? 'victim'
            : 'other';
      const took = next ? ms(next.startedAt) - k.at : null;
      takeovers.push({ strike: k.n, kind: k.kind, lane, long: k.long, ms: took, by });
      if (!k.long) continue;
      const backAt = k.backAt ?? Number.POSITIVE_INFINITY;
      if (!next || by !== 'survivor' || ms(next.startedAt) >= backAt || took! > boundMs)
        failures.push(
          `${k.kind} ${k.n} (pid ${k.victim.pid}, ${k.downMs} ms): lane ${lane} ${
            next
              ? `next ran ${took} ms after it, in the ${by} process (${next.holder}), run ${next.id}`
              : 'never ran again'
          }`,
        );
    }
  }
  const findings: string[] = [];
  const tested = takeovers.filter((t) => t.long).length;
  if (failures.length)
    findings.push(
      `takeover: ${failures.length} of ${tested} lanes held by a process dead or frozen past the lease were not taken over by the live process within ${boundMs} ms: ${examples(failures)}`,
    );
  if (tested === 0)
    findings.push('takeover: no process held a lane past the lease, so no takeover was tested');
  return { findings, takeovers };
}

export function describeTakeovers(takeovers: Takeover[]): string {
  const done = takeovers.filter((t) => t.ms !== null).map((t) => t.ms!);
  const sorted = [...done].sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const count = (by: Takeover['by']) => takeovers.filter((t) => t.by === by).length;
  return `${takeovers.length} lanes taken over (survivor ${count('survivor')}, victim ${count('victim')}, other ${count(
    'other',
  )}, none ${count('none')}); ms from kill or freeze to the lane's next run: ${
    sorted.length ? `min ${sorted[0]}, median ${pick(0.5)}, max ${sorted.at(-1)}` : 'none'
  }; each: ${takeovers
    .map((t) => `#${t.strike} ${t.kind} ${t.lane} ${t.long ? 'long' : 'short'} ${t.ms ?? '-'} ms ${t.by}`)
    .join(', ')}`;
}
