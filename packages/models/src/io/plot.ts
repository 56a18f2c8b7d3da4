/** A small SVG line chart (log-x optional) for "error vs n_s" plots; no dependencies. */

export interface Series {
  name: string;
  /** Points (x, y, optional ± spread). */
  points: { x: number; y: number; spread?: number }[];
  dashed?: boolean;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#7f7f7f'];

export function lineChartSvg(title: string, xLabel: string, yLabel: string, series: Series[], opts: { logX?: boolean } = {}): string {
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 170, t: 40, b: 50 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error('lineChartSvg: no points');
  const fx = (x: number) => (opts.logX ? Math.log10(x) : x);
  const xs = all.map((p) => fx(p.x));
  const ys = all.flatMap((p) => [p.y - (p.spread ?? 0), p.y + (p.spread ?? 0)]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0) * 0.1 || Math.abs(y1) * 0.1 || 1;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number) => m.l + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const y = y0 + ((y1 - y0) * k) / 4;
    out.push(`<line x1="${m.l - 4}" y1="${py(y)}" x2="${m.l}" y2="${py(y)}" stroke="black"/>`);
    out.push(`<text x="${m.l - 6}" y="${py(y) + 4}" text-anchor="end">${y.toPrecision(3)}</text>`);
  }
  for (const x of [...new Set(all.map((p) => p.x))].sort((a, b) => a - b)) {
    out.push(`<line x1="${px(x)}" y1="${H - m.b}" x2="${px(x)}" y2="${H - m.b + 4}" stroke="black"/>`);
    out.push(`<text x="${px(x)}" y="${H - m.b + 17}" text-anchor="middle">${x}</text>`);
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    out.push(
      `<polyline fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`,
    );
    for (const p of pts) {
      out.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${c}"/>`);
      if (p.spread) out.push(`<line x1="${px(p.x)}" y1="${py(p.y - p.spread)}" x2="${px(p.x)}" y2="${py(p.y + p.spread)}" stroke="${c}"/>`);
    }
    out.push(`<line x1="${W - m.r + 12}" y1="${m.t + 18 * i}" x2="${W - m.r + 36}" y2="${m.t + 18 * i}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${W - m.r + 42}" y="${m.t + 18 * i + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
