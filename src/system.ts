import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const AT_PAGESZ = 6n;

let knownPageSize: number | undefined;

/** The kernel page size, read from the auxiliary vector (no child process needed) once per process. */
export function pageSize(): number {
  knownPageSize ??= readPageSize();
  return knownPageSize;
}

function readPageSize(): number {
  try {
    const auxv = readFileSync('/proc/self/auxv');
    for (let i = 0; i + 16 <= auxv.length; i += 16) {
      if (auxv.readBigUInt64LE(i) === AT_PAGESZ) return Number(auxv.readBigUInt64LE(i + 8));
    }
  } catch {
    // not Linux, or /proc is not mounted
  }
  return 4096;
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** Resolve a user through NSS (getent), so LDAP and sssd accounts work as they do for the agent. */
export function lookupUser(name: string): Account {
  const result = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  const fields = result.status === 0 ? result.stdout.trim().split(':') : [];
  if (fields.length < 4) throw new Error(`Failed to get user information for '${name}'`);
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

export function lookupGroup(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const result = spawnSync('getent', ['group', name], { encoding: 'utf8' });
  const fields = result.status === 0 ? result.stdout.trim().split(':') : [];
  if (fields.length < 3) throw new Error(`Unknown group '${name}'`);
  return Number(fields[2]);
}

/** setgid, initgroups (EPERM ignored, as Mesos's os::su does), setuid: before any file is created. */
export function switchUser(name: string): Account {
  const account = lookupUser(name);
  // Optional in the typings because Windows lacks them; always present on Linux.
  const posix = process as unknown as Required<Pick<NodeJS.Process, 'setgid' | 'setuid'>> & {
    initgroups(user: string, extraGroup: number): void;
  };
  posix.setgid(account.gid);
  try {
    posix.initgroups(name, account.gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
  posix.setuid(account.uid);
  return account;
}

/** True when this process leads its own session, as the launcher's setsid arranges. */
export function isSessionLeader(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the parenthesised command name: state ppid pgrp session ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[3]) === process.pid;
  } catch {
    return false;
  }
}
