import { readFileSync } from 'node:fs';

/** Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ... */
export function procStat(pid: number | 'self'): { comm: string; state: string; ppid: number; pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { comm, state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]) };
}

/** Whether a process has exited: gone, or a zombie its (adoptive) parent has not reaped yet. */
export function hasExited(pid: number): boolean {
  try {
    return procStat(pid).state === 'Z';
  } catch {
    return true;
  }
}

/** A kB figure from /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS. */
export function procStatusKb(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no ${field} for ${pid}`);
  return Number(match[1]);
}

/** Direct children of a process. */
export function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}
