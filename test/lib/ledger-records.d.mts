import type { CopyRecord } from '@studio321/studiod';
export function copy(hash: string, target: string, size: number, path?: string): CopyRecord;
