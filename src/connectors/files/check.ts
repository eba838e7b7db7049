import { access, constants, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CheckFinding, SyncShape } from '../../core/ports.ts';
import type { FilesConnection, FileTargetOptions } from './options.ts';
import { readSidecar, sidecarOf } from './target.ts';

/**
 * A JSON Lines target as `sluice check` sees it, touching nothing (opening it would create the file
 * and cut bytes past its sidecar's length): the file or the folder it would be made in is writable,
 * and its `.sluice` sidecar, where there is one, holds a length.
 */
export async function checkFileTarget(
  connection: FilesConnection,
  options: FileTargetOptions,
  shape: SyncShape,
): Promise<CheckFinding[]> {
  const path = resolve(shape.baseDir, connection.dir, options.path);
  const size = await stat(path).then(
    (s) => s.size,
    () => null,
  );
  if (size === null) {
    const folder = await nearestFolder(dirname(path));
    return (await writable(folder))
      ? [{ level: 'ok', message: `${path} does not exist yet: the first write creates it` }]
      : [{ level: 'problem', message: `${path} does not exist, and ${folder} is not writable` }];
  }
  if (!(await writable(path))) return [{ level: 'problem', message: `${path} is not writable by this user` }];
  try {
    const sidecar = await readSidecar(path);
    if (sidecar && sidecar.length < size)
      return [
        {
          level: 'warning',
          message: `${path} has ${size - sidecar.length} bytes past the ${sidecar.length} confirmed in ${sidecarOf(path)}: the next run cuts them`,
        },
      ];
  } catch (err) {
    return [{ level: 'problem', message: `${sidecarOf(path)}: ${(err as Error).message}` }];
  }
  return [{ level: 'ok', message: `${path} exists (${size} bytes) and is writable` }];
}

async function nearestFolder(dir: string): Promise<string> {
  let at = dir;
  while (
    dirname(at) !== at &&
    !(await stat(at).then(
      () => true,
      () => false,
    ))
  )
    at = dirname(at);
  return at;
}

async function writable(path: string): Promise<boolean> {
  return access(path, constants.W_OK).then(
    () => true,
    // EACCES or EROFS: not writable, which is what is asked.
    () => false,
  );
}
