/**
 * The cells of a transfer experiment, derived from its protocol alone (pure, browser-safe): each
 * cell's id (the name of its result file cells/ID.json), its parameters, and the cells whose
 * results it reads. The single-process runner walks them in this order; a queue runs them on
 * many workers, releasing a cell once the cells it needs are on disk.
 */
import type { Family } from './families.js';
import type { Arm } from './transfer-summary.js';
import type { TransferProtocol } from './transfer-experiment.js';

export type PlannedCell =
  | { id: 'floor'; kind: 'floor'; needs: [] }
  | { id: 'classifier'; kind: 'classifier'; needs: [] }
  /** A source model, pre-trained once per (family, seed, n_s) and saved under models/ID. */
  | { id: string; kind: 'source'; family: Family; seed: number; ns: number; needs: [] }
  /** A target cell: trained on n_t target images, sampled and scored; one row of results.json. */
  | { id: string; kind: 'target'; family: Family; seed: number; arm: Arm; nt: number | 'all'; ns: number | null; needs: string[] };

export type TargetCell = Extract<PlannedCell, { kind: 'target' }>;
export type SourceCell = Extract<PlannedCell, { kind: 'source' }>;

export interface TransferPlan {
  cells: PlannedCell[];
  /** n_s -> the source images it uses (every n_s past the source's size takes all of it). */
  sourceSizes: Record<string, number>;
  /** n_s values that need no cells of their own (they use the same images as an earlier n_s). */
  skipped: { ns: number; sameAs: number; used: number }[];
}

export const sourceCellId = (family: Family, ns: number, seed: number): string => `${family}-source-ns${ns}-seed${seed}`;
export const targetCellId = (family: Family, arm: Arm, nt: number | 'all', ns: number | null, seed: number): string =>
  `${family}-${arm}-nt${nt}${ns === null ? '' : `-ns${ns}`}-seed${seed}`;

/**
 * Whether the cells score class fidelity: a conditional model's samples against their labels, or
 * an unconditional model of one class (the digit-3 task) by the share of its samples that a
 * classifier of all the target's classes assigns to that class.
 */
export function scoresClassFidelity(p: Pick<TransferProtocol, 'conditional' | 'classifier'>, classes?: readonly number[]): boolean {
  return p.classifier !== null && (p.conditional || classes?.length === 1);
}

/**
 * Every cell of the experiment in the order the single-process runner takes them. `sourceCount`
 * is the number of source images of the wanted classes (an n_s past it takes all of them);
 * `classes` the classes kept, if not all. A source cell comes just before the first cell that
 * needs it.
 */
export function planTransferCells(p: TransferProtocol, sourceCount: number, classes?: readonly number[]): TransferPlan {
  const cells: PlannedCell[] = [{ id: 'floor', kind: 'floor', needs: [] }];
  if (scoresClassFidelity(p, classes)) cells.push({ id: 'classifier', kind: 'classifier', needs: [] });
  const sourceSizes: Record<string, number> = {};
  const skipped: TransferPlan['skipped'] = [];
  const families = ([['diffusion', p.diffusion], ['flow', p.flow]] as const).filter(([, fp]) => fp);
  for (const [family, fp] of families) {
    const arms = fp!.arms;
    for (const seed of p.seeds) {
      const planned = new Set<string>();
      for (const nt of p.ntList) {
        if (arms.includes('baseline')) cells.push({ id: targetCellId(family, 'baseline', nt, null, seed), kind: 'target', family, seed, arm: 'baseline', nt, ns: null, needs: [] });
        const usedSizes = new Map<number, number>();
        for (const ns of p.nsList) {
          const used = Math.min(ns, sourceCount);
          sourceSizes[ns] = used;
          if (usedSizes.has(used)) {
            if (!skipped.some((x) => x.ns === ns)) skipped.push({ ns, sameAs: usedSizes.get(used)!, used });
            continue;
          }
          usedSizes.set(used, ns);
          const source = sourceCellId(family, ns, seed);
          let transferCell: string | null = null;
          for (const arm of ['transfer', 'variant'] as const) {
            if (!arms.includes(arm)) continue;
            if (!planned.has(source)) {
              cells.push({ id: source, kind: 'source', family, seed, ns, needs: [] });
              planned.add(source);
            }
            const id = targetCellId(family, arm, nt, ns, seed);
            cells.push({ id, kind: 'target', family, seed, arm, nt, ns, needs: [source] });
            transferCell ??= id;
          }
          // The compute-matched baseline reads the transfer arm's total steps.
          if (arms.includes('matched')) cells.push({ id: targetCellId(family, 'matched', nt, ns, seed), kind: 'target', family, seed, arm: 'matched', nt, ns, needs: [transferCell!] });
        }
      }
    }
  }
  return { cells, sourceSizes, skipped };
}
