/**
 * Exact minimum-cost perfect matching of a dense n x n cost matrix (Jonker–Volgenant: column
 * reduction, reduction transfer, augmenting row reduction, then Dijkstra-style shortest augmenting
 * paths on reduced costs; dense O(n^3) worst case), in float64, with dual potentials so that a
 * caller can verify optimality independently.
 */

export interface AssignmentResult {
  /** Column assigned to each row. */
  rowToCol: Int32Array;
  /** Sum of the assigned costs. */
  totalCost: number;
  /** Dual potentials: cost[i*n+j] - rowDual[i] - colDual[j] >= 0, with equality on the assignment. */
  rowDual: Float64Array;
  colDual: Float64Array;
}

/** Throws unless cost is a finite n x m row-major matrix with positive integer sizes. */
export function checkCostMatrix(cost: Float64Array, n: number, m: number, caller: string): void {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 1 || m < 1) {
    throw new Error(`${caller}: sizes must be positive integers, got ${n}x${m}`);
  }
  if (cost.length !== n * m) throw new Error(`${caller}: cost has ${cost.length} entries, expected ${n}x${m} = ${n * m}`);
  for (let k = 0; k < cost.length; k++) {
    if (!Number.isFinite(cost[k])) throw new Error(`${caller}: cost[${k}] = ${cost[k]} is not finite`);
  }
}

const MAX_ROW_REDUCTION_PASSES = 32;

/**
 * Minimum-cost perfect matching of an n x n cost matrix (row-major), Jonker–Volgenant.
 * Invariant throughout: colDual is such that every assigned row's column attains
 * min_j (cost[i][j] - colDual[j]), which keeps reduced costs non-negative for Dijkstra.
 */
export function solveAssignment(cost: Float64Array, n: number): AssignmentResult {
  checkCostMatrix(cost, n, n, 'solveAssignment');
  const rowToCol = new Int32Array(n).fill(-1);
  const colToRow = new Int32Array(n).fill(-1);
  const v = new Float64Array(n);
  if (n === 1) {
    rowToCol[0] = 0;
    return { rowToCol, totalCost: cost[0], rowDual: Float64Array.of(0), colDual: Float64Array.of(cost[0]) };
  }
  const freeRows = columnReduction(cost, n, rowToCol, colToRow, v);
  let numFree = freeRows.length;
  // JV runs two passes; on clustered data (many columns share a nearest row) more passes keep
  // paying off, so continue while a pass still frees 5% of the remaining rows.
  for (let pass = 0; pass < MAX_ROW_REDUCTION_PASSES && numFree > 0; pass++) {
    const before = numFree;
    numFree = augmentingRowReduction(cost, n, rowToCol, colToRow, v, freeRows, numFree);
    if (pass >= 1 && numFree > 0.95 * before) break;
  }
  const search = new ShortestPathWorkspace(n);
  for (let k = 0; k < numFree; k++) augmentFromFreeRow(cost, n, freeRows[k], rowToCol, colToRow, v, search);

  const rowDual = new Float64Array(n);
  let totalCost = 0;
  for (let i = 0; i < n; i++) {
    const j = rowToCol[i];
    totalCost += cost[i * n + j];
    rowDual[i] = cost[i * n + j] - v[j];
  }
  return { rowToCol, totalCost, rowDual, colDual: v };
}

/**
 * Sets v[j] = min_i cost[i][j] and assigns each column to its minimising row when that row is
 * still free; then transfers reduction to rows that got exactly one column. Returns free rows.
 */
function columnReduction(
  cost: Float64Array,
  n: number,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
): Int32Array {
  const argminRow = new Int32Array(n);
  v.set(cost.subarray(0, n));
  // Row-major sweep: contiguous reads instead of a strided column walk.
  for (let i = 1; i < n; i++) {
    const base = i * n;
    for (let j = 0; j < n; j++) {
      if (cost[base + j] < v[j]) {
        v[j] = cost[base + j];
        argminRow[j] = i;
      }
    }
  }
  const matches = new Int32Array(n);
  for (let j = n - 1; j >= 0; j--) {
    const i = argminRow[j];
    if (matches[i]++ === 0) {
      rowToCol[i] = j;
      colToRow[j] = i;
    }
  }
  const free: number[] = [];
  for (let i = 0; i < n; i++) {
    if (matches[i] === 0) {
      free.push(i);
    } else if (matches[i] === 1) {
      // Lower v of the row's only column as far as the row's second-best column allows.
      const j1 = rowToCol[i];
      const base = i * n;
      let secondBest = Infinity;
      for (let j = 0; j < n; j++) {
        if (j !== j1) {
          const reduced = cost[base + j] - v[j];
          if (reduced < secondBest) secondBest = reduced;
        }
      }
      v[j1] = cost[base + j1] - secondBest;
    }
  }
  return Int32Array.from(free);
}

/**
 * One pass of JV's augmenting row reduction: each free row takes its best column (lowering
 * that column's v to the row's second-best reduced cost) and displaces the previous owner,
 * which is processed next. Returns the number of rows still free (stored at the front).
 */
function augmentingRowReduction(
  cost: Float64Array,
  n: number,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
  freeRows: Int32Array,
  numFree: number,
): number {
  // Bounds the immediate re-processing chains so the pass always terminates.
  const maxSteps = 4 * n;
  let steps = 0;
  let k = 0;
  let stillFree = 0;
  while (k < numFree) {
    const i = freeRows[k++];
    steps++;
    const base = i * n;
    let best = Infinity;
    let second = Infinity;
    let bestCol = -1;
    let secondCol = -1;
    for (let j = 0; j < n; j++) {
      const reduced = cost[base + j] - v[j];
      if (reduced < second) {
        if (reduced < best) {
          second = best;
          secondCol = bestCol;
          best = reduced;
          bestCol = j;
        } else {
          second = reduced;
          secondCol = j;
        }
      }
    }
    let takenCol = bestCol;
    let displaced = colToRow[bestCol];
    const lowersDual = best < second;
    if (lowersDual) {
      v[bestCol] -= second - best;
    } else if (displaced >= 0) {
      // Tie: take the second column instead, which may be free.
      takenCol = secondCol;
      displaced = colToRow[secondCol];
    }
    if (displaced >= 0) rowToCol[displaced] = -1;
    rowToCol[i] = takenCol;
    colToRow[takenCol] = i;
    if (displaced >= 0) {
      if (lowersDual && steps < maxSteps) freeRows[--k] = displaced;
      else freeRows[stillFree++] = displaced;
    }
  }
  return stillFree;
}

/** Scratch arrays reused by every shortest-path search of one solve. */
class ShortestPathWorkspace {
  readonly dist: Float64Array;
  readonly predRow: Int32Array;
  /** Per column: UNREACHED, AT_MIN (distance final, waiting to be scanned) or SCANNED. */
  readonly state: Uint8Array;
  /** Columns whose distance is final: [0, numFinal) in the order they reached the minimum. */
  readonly finalCols: Int32Array;
  constructor(n: number) {
    this.dist = new Float64Array(n);
    this.predRow = new Int32Array(n);
    this.state = new Uint8Array(n);
    this.finalCols = new Int32Array(n);
  }
}

const UNREACHED = 0;
const AT_MIN = 1;

/**
 * Dijkstra on reduced costs from free row `start` to the nearest free column, then augments.
 * Loops run over all columns in index order with a state test: sequential reads of the cost
 * row beat gathering through a column permutation (~25% faster in V8 here).
 */
function augmentFromFreeRow(
  cost: Float64Array,
  n: number,
  start: number,
  rowToCol: Int32Array,
  colToRow: Int32Array,
  v: Float64Array,
  ws: ShortestPathWorkspace,
): void {
  const { dist, predRow, state, finalCols } = ws;
  const startBase = start * n;
  for (let j = 0; j < n; j++) {
    dist[j] = cost[startBase + j] - v[j];
    predRow[j] = start;
    state[j] = UNREACHED;
  }
  let numFinal = 0; // finalCols[0, numScanned) scanned, [numScanned, numFinal) at the minimum
  let numScanned = 0;
  let min = 0;
  let endCol = -1;
  search: for (;;) {
    if (numScanned === numFinal) {
      // Move every unreached column at the new minimum distance to the final set.
      min = Infinity;
      for (let j = 0; j < n; j++) {
        if (state[j] === UNREACHED && dist[j] <= min) {
          if (dist[j] < min) {
            min = dist[j];
            numFinal = numScanned;
          }
          finalCols[numFinal++] = j;
        }
      }
      for (let k = numScanned; k < numFinal; k++) {
        state[finalCols[k]] = AT_MIN;
        if (colToRow[finalCols[k]] < 0) {
          endCol = finalCols[k];
          break search;
        }
      }
    }
    // Scan one column at the minimum: relax the other columns through the row that owns it.
    const scanned = finalCols[numScanned++];
    const row = colToRow[scanned];
    const base = row * n;
    const rowOffset = cost[base + scanned] - v[scanned] - min;
    for (let j = 0; j < n; j++) {
      if (state[j] !== UNREACHED) continue;
      const h = cost[base + j] - v[j] - rowOffset;
      if (h < dist[j]) {
        dist[j] = h;
        predRow[j] = row;
        if (h <= min) {
          state[j] = AT_MIN;
          if (colToRow[j] < 0) {
            endCol = j;
            break search;
          }
          finalCols[numFinal++] = j;
        }
      }
    }
  }
  // Scanned columns get closer by (min - dist): keeps assigned rows' reduced costs at their minimum.
  for (let k = 0; k < numScanned; k++) {
    const j = finalCols[k];
    v[j] += dist[j] - min;
  }
  let col = endCol;
  for (;;) {
    const row = predRow[col];
    colToRow[col] = row;
    const previous = rowToCol[row];
    rowToCol[row] = col;
    if (row === start) break;
    col = previous;
  }
}
