/**
 * Exact balanced transportation problem (integer supplies and demands) by the primal network
 * simplex, in float64, with dual potentials so that a caller can verify optimality independently.
 */
import { checkCostMatrix } from './assignment.js';

export interface TransportResult {
  /** Positive flows as parallel arrays (row, column, amount). */
  rows: Int32Array;
  cols: Int32Array;
  amounts: Float64Array;
  /** Sum of amount * cost over the flows. */
  totalCost: number;
  /** Dual potentials: cost[i*m+j] - rowDual[i] - colDual[j] >= 0, with equality where flow > 0. */
  rowDual: Float64Array;
  colDual: Float64Array;
}

/**
 * Spanning-tree basis of the network simplex: sources are nodes 0..n-1, sinks n..n+m-1 and
 * an artificial root n+m. Each non-root node stores the tree arc to its parent (arc ids
 * 0..n*m-1 are the real arcs i -> n+j, id n*m + node is the node's artificial root arc),
 * whether that arc points up (node -> parent), and its flow. Children are kept in
 * doubly-linked sibling lists so a re-hung subtree can be walked in O(size).
 */
class SpanningTree {
  readonly parent: Int32Array;
  readonly parentArc: Int32Array;
  readonly pointsUp: Uint8Array;
  readonly flow: Float64Array;
  readonly depth: Int32Array;
  readonly potential: Float64Array;
  readonly firstChild: Int32Array;
  readonly nextSibling: Int32Array;
  readonly prevSibling: Int32Array;
  private readonly stack: Int32Array;

  constructor(readonly numNodes: number) {
    this.parent = new Int32Array(numNodes).fill(-1);
    this.parentArc = new Int32Array(numNodes).fill(-1);
    this.pointsUp = new Uint8Array(numNodes);
    this.flow = new Float64Array(numNodes);
    this.depth = new Int32Array(numNodes);
    this.potential = new Float64Array(numNodes);
    this.firstChild = new Int32Array(numNodes).fill(-1);
    this.nextSibling = new Int32Array(numNodes).fill(-1);
    this.prevSibling = new Int32Array(numNodes).fill(-1);
    this.stack = new Int32Array(numNodes);
  }

  attach(node: number, parent: number): void {
    this.parent[node] = parent;
    const head = this.firstChild[parent];
    this.nextSibling[node] = head;
    this.prevSibling[node] = -1;
    if (head >= 0) this.prevSibling[head] = node;
    this.firstChild[parent] = node;
  }

  detach(node: number): void {
    const prev = this.prevSibling[node];
    const next = this.nextSibling[node];
    if (prev >= 0) this.nextSibling[prev] = next;
    else this.firstChild[this.parent[node]] = next;
    if (next >= 0) this.prevSibling[next] = prev;
    this.parent[node] = -1;
  }

  /** Adds `shift` to the potentials of the subtree of `top` and recomputes its depths. */
  refreshSubtree(top: number, shift: number): void {
    const { stack, depth, potential, firstChild, nextSibling, parent } = this;
    let size = 0;
    stack[size++] = top;
    while (size > 0) {
      const node = stack[--size];
      depth[node] = depth[parent[node]] + 1;
      potential[node] += shift;
      for (let child = firstChild[node]; child >= 0; child = nextSibling[child]) stack[size++] = child;
    }
  }

  /** Lowest common ancestor of a and b: the apex of the cycle an entering arc a-b closes. */
  apex(a: number, b: number): number {
    const { depth, parent } = this;
    while (a !== b) {
      if (depth[a] >= depth[b]) a = parent[a];
      else b = parent[b];
    }
    return a;
  }

  /**
   * Sends the most flow possible around the cycle apex -> tail (down the tree), tail -> head
   * (the entering arc), head -> apex (up the tree); only tree arcs pointing against that
   * direction lose flow. Returns the amount and the node whose parent arc leaves: the last
   * blocking arc in cycle order (Cunningham's rule, which keeps the tree strongly feasible).
   */
  pushAroundCycle(tail: number, head: number, apex: number): { theta: number; leaving: number; leavingOnTailSide: boolean } {
    const { parent, pointsUp, flow } = this;
    let theta = Infinity;
    let leaving = -1;
    let leavingOnTailSide = false;
    for (let node = tail; node !== apex; node = parent[node]) {
      if (pointsUp[node] && flow[node] < theta) {
        theta = flow[node];
        leaving = node;
        leavingOnTailSide = true;
      }
    }
    for (let node = head; node !== apex; node = parent[node]) {
      if (!pointsUp[node] && flow[node] <= theta) {
        theta = flow[node];
        leaving = node;
        leavingOnTailSide = false;
      }
    }
    if (leaving < 0) throw new Error('solveTransport: cycle without a blocking arc (internal error)');
    if (theta > 0) {
      for (let node = tail; node !== apex; node = parent[node]) flow[node] += pointsUp[node] ? -theta : theta;
      for (let node = head; node !== apex; node = parent[node]) flow[node] += pointsUp[node] ? theta : -theta;
    }
    return { theta, leaving, leavingOnTailSide };
  }

  /**
   * Drops the parent arc of `leaving` and re-hangs the subtree it cut off from `inner` (the
   * entering arc's end inside that subtree) under `outer`: parent links on the path
   * inner..leaving are reversed, each node taking over its old child's arc and flow.
   */
  rehang(inner: number, outer: number, leaving: number, enteringArc: number, innerPointsUp: boolean, enteringFlow: number): void {
    const { parent, parentArc, pointsUp, flow } = this;
    let carriedArc = enteringArc;
    let carriedUp = innerPointsUp ? 1 : 0;
    let carriedFlow = enteringFlow;
    let newParent = outer;
    for (let node = inner; ; ) {
      const oldParent = parent[node];
      const oldArc = parentArc[node];
      const oldUp = pointsUp[node];
      const oldFlow = flow[node];
      this.detach(node);
      parentArc[node] = carriedArc;
      pointsUp[node] = carriedUp;
      flow[node] = carriedFlow;
      this.attach(node, newParent);
      if (node === leaving) break;
      // The old parent hangs below `node` through the same arc, now seen from the other end.
      carriedArc = oldArc;
      carriedUp = oldUp ? 0 : 1;
      carriedFlow = oldFlow;
      newParent = node;
      node = oldParent;
    }
  }

  /** Recomputes every potential from the root so that all tree arcs have zero reduced cost. */
  recomputePotentials(root: number, arcCost: (arc: number) => number): void {
    const { stack, potential, firstChild, nextSibling, parent, parentArc, pointsUp } = this;
    let size = 0;
    potential[root] = 0;
    for (let child = firstChild[root]; child >= 0; child = nextSibling[child]) stack[size++] = child;
    while (size > 0) {
      const node = stack[--size];
      const c = arcCost(parentArc[node]);
      // Tree arc tail -> head has cost + p[tail] - p[head] = 0.
      potential[node] = pointsUp[node] ? potential[parent[node]] - c : potential[parent[node]] + c;
      for (let child = firstChild[node]; child >= 0; child = nextSibling[child]) stack[size++] = child;
    }
  }
}

/**
 * Exact balanced transportation problem with integer supplies (rows) and demands (columns):
 * minimise sum cost[i][j] * flow[i][j], by the primal network simplex. The start is the
 * artificial star (every node linked to a root by a big-M arc, a strongly feasible tree);
 * the entering arc is the most negative reduced cost in a block of ~sqrt(n*m) arcs; the
 * leaving arc follows Cunningham's strongly-feasible rule (the last blocking arc along the
 * cycle from its apex), which prevents cycling on degenerate pivots. Reduced costs above
 * -1e-14 * bigM count as non-negative, so the optimum is exact up to float rounding.
 */
export function solveTransport(cost: Float64Array, n: number, m: number, supply: Int32Array, demand: Int32Array): TransportResult {
  checkCostMatrix(cost, n, m, 'solveTransport');
  if (supply.length !== n || demand.length !== m) {
    throw new Error(`solveTransport: ${supply.length} supplies and ${demand.length} demands for a ${n}x${m} cost matrix`);
  }
  const sum = (values: Int32Array) => values.reduce((s, x) => s + x, 0);
  if (supply.some((x) => x < 0) || demand.some((x) => x < 0) || sum(supply) !== sum(demand)) {
    throw new Error(`solveTransport: supplies (sum ${sum(supply)}) and demands (sum ${sum(demand)}) must be non-negative and balanced`);
  }
  const numArcs = n * m;
  const root = n + m;
  let maxAbsCost = 0;
  for (let k = 0; k < numArcs; k++) maxAbsCost = Math.max(maxAbsCost, Math.abs(cost[k]));
  const costScale = maxAbsCost > 0 ? maxAbsCost : 1;
  // Any real path costs at most (n+m)*max|cost|, so big-M arcs end with no flow.
  const bigM = (n + m + 1) * costScale;
  // Potentials reach ~bigM, so reduced costs carry rounding of a few ulps of bigM.
  const tolerance = 1e-14 * bigM;
  const arcCost = (arc: number) => (arc < numArcs ? cost[arc] : bigM);

  const tree = new SpanningTree(n + m + 1);
  const { parentArc, pointsUp, flow, depth, potential } = tree;
  for (let node = 0; node < root; node++) {
    const amount = node < n ? supply[node] : -demand[node - n];
    parentArc[node] = numArcs + node;
    // Supplies flow up to the root, demands down from it; zero-flow arcs point down (strong feasibility).
    pointsUp[node] = amount > 0 ? 1 : 0;
    flow[node] = Math.abs(amount);
    depth[node] = 1;
    tree.attach(node, root);
  }
  tree.recomputePotentials(root, arcCost);

  const blockSize = Math.max(10, Math.ceil(Math.sqrt(numArcs)));
  let cursor = 0;
  /** Block pricing: the most negative reduced cost among the next blockSize arcs that has one. */
  const findEnteringArc = (): number => {
    let best = -1;
    let bestReduced = -tolerance;
    let inBlock = 0;
    let i = Math.floor(cursor / m);
    let j = cursor - i * m;
    for (let scanned = 0; scanned < numArcs; scanned++) {
      const reduced = cost[cursor] + potential[i] - potential[n + j];
      if (reduced < bestReduced) {
        bestReduced = reduced;
        best = cursor;
      }
      cursor++;
      if (++j === m) {
        j = 0;
        if (++i === n) {
          i = 0;
          cursor = 0;
        }
      }
      if (++inBlock === blockSize) {
        if (best >= 0) return best;
        inBlock = 0;
      }
    }
    return best;
  };

  let pivots = 0;
  for (let entering = findEnteringArc(); entering >= 0; entering = findEnteringArc()) {
    const tail = Math.floor(entering / m);
    const head = n + (entering - tail * m);
    const { theta, leaving, leavingOnTailSide } = tree.pushAroundCycle(tail, head, tree.apex(tail, head));
    const inner = leavingOnTailSide ? tail : head;
    const outer = leavingOnTailSide ? head : tail;
    const reduced = cost[entering] + potential[tail] - potential[head];
    tree.rehang(inner, outer, leaving, entering, inner === tail, theta);
    // The re-hung subtree shifts by the entering arc's reduced cost so that arc becomes tight.
    tree.refreshSubtree(inner, inner === tail ? -reduced : reduced);
    // Incremental shifts accumulate rounding; re-derive potentials from the tree now and then.
    if (++pivots % (n + m) === 0) tree.recomputePotentials(root, arcCost);
  }
  tree.recomputePotentials(root, arcCost);
  return collectTransportResult(tree, cost, n, m);
}

function collectTransportResult(tree: SpanningTree, cost: Float64Array, n: number, m: number): TransportResult {
  const numArcs = n * m;
  const rows: number[] = [];
  const cols: number[] = [];
  const amounts: number[] = [];
  let totalCost = 0;
  for (let node = 0; node < n + m; node++) {
    const arc = tree.parentArc[node];
    const amount = tree.flow[node];
    if (amount === 0) continue;
    if (arc >= numArcs) throw new Error(`solveTransport: artificial arc of node ${node} keeps flow ${amount} (internal error)`);
    const i = Math.floor(arc / m);
    rows.push(i);
    cols.push(arc - i * m);
    amounts.push(amount);
    totalCost += amount * cost[arc];
  }
  const rowDual = new Float64Array(n);
  const colDual = new Float64Array(m);
  for (let i = 0; i < n; i++) rowDual[i] = -tree.potential[i];
  for (let j = 0; j < m; j++) colDual[j] = tree.potential[n + j];
  return {
    rows: Int32Array.from(rows),
    cols: Int32Array.from(cols),
    amounts: Float64Array.from(amounts),
    totalCost,
    rowDual,
    colDual,
  };
}
