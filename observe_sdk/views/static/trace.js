// The trace view: a timeline and an icicle flame graph of the same spans, drawn on canvases.
// Data: see observe_sdk/views/html.py.  Nothing is fetched; everything below a pixel is merged.
(function () {
  'use strict';
  const ROW = 18;            // px per row
  const AXIS = 22;           // px of the time axis above the timeline
  const MIN_BAR = 1;         // narrower bars are merged with their neighbours
  const data = JSON.parse(document.getElementById('trace-data').textContent);
  const N = data.d.length;
  const ids = data.ids;                 // [name, raw name, function index, manual]
  const extra = data.x;                 // row -> {tags, alloc, logs, metrics, error}

  // ---------------------------------------------------------------- decode the spans
  const start = new Float64Array(N), dur = new Float64Array(N), self = new Float64Array(N);
  const parent = new Int32Array(N), depth = new Int32Array(N), ident = Int32Array.from(data.n);
  const trackOf = new Int32Array(N);
  let clock = 0;
  for (let i = 0; i < N; i++) {
    clock += data.s[i];
    start[i] = clock;
    dur[i] = self[i] = data.d[i];
    const p = data.p[i] ? i - data.p[i] : -1;
    parent[i] = p;
    if (p >= 0) { depth[i] = depth[p] + 1; self[p] -= dur[i]; }
  }
  for (let i = 0; i < N; i++) if (self[i] < 0) self[i] = 0;
  const tracks = data.tracks;
  tracks.forEach((t, k) => trackOf.fill(k, t.first, t.first + t.count));

  // rows of the timeline: per track a title row, then one row per depth; each row's spans in time order
  let rowCount = 0;
  const rowsOfTrack = tracks.map((t) => {
    let maxDepth = -1;
    for (let i = t.first; i < t.first + t.count; i++) if (depth[i] > maxDepth) maxDepth = depth[i];
    const counts = new Int32Array(maxDepth + 1);
    for (let i = t.first; i < t.first + t.count; i++) counts[depth[i]]++;
    const rows = Array.from(counts, (c) => new Int32Array(c));
    const fill = new Int32Array(maxDepth + 1);
    for (let i = t.first; i < t.first + t.count; i++) rows[depth[i]][fill[depth[i]]++] = i;
    // spans of one depth in time order (the network's asynchronous spans can outlive their parents,
    // so cousins may overlap or come out of order), and the longest of them bounds the searches
    const longest = new Float64Array(rows.length);
    rows.forEach((list, d) => {
      let sorted = true;
      for (let k = 0; k < list.length; k++) {
        if (k && start[list[k]] < start[list[k - 1]]) sorted = false;
        if (dur[list[k]] > longest[d]) longest[d] = dur[list[k]];
      }
      if (!sorted) list.sort((a, b) => start[a] - start[b]);
    });
    const top = rowCount;
    rowCount += rows.length + 1;
    return { top, rows, longest };
  });
  // the first span of a row that may still be running at time t
  function firstAt(list, longest, t) {
    let lo = 0, hi = list.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (start[list[mid]] < t - longest) lo = mid + 1; else hi = mid; }
    return lo;
  }
  // the view spans the spans (a trace's own start and end, from instantiation to finish, only without spans)
  let traceStart = Infinity, traceEnd = -Infinity;
  for (let i = 0; i < N; i++) { traceStart = Math.min(traceStart, start[i]); traceEnd = Math.max(traceEnd, start[i] + dur[i]); }
  if (!N) tracks.forEach((t) => { traceStart = Math.min(traceStart, t.start); traceEnd = Math.max(traceEnd, t.end); });
  if (!isFinite(traceStart)) { traceStart = 0; traceEnd = 1; }
  if (traceEnd <= traceStart) traceEnd = traceStart + 1;

  // ---------------------------------------------------------------- the flame graph's tree (merged by call path)
  const nodeOf = new Int32Array(N);
  const nParent = [-1], nIdent = [-1], nTotal = [0], nSelf = [0], nCount = [0], nKids = [[]];
  const childIndex = new Map();
  const idCount = ids.length + 1;
  for (let i = 0; i < N; i++) {
    const pn = parent[i] < 0 ? 0 : nodeOf[parent[i]];
    const key = pn * idCount + ident[i];
    let node = childIndex.get(key);
    if (node === undefined) {
      node = nParent.length;
      childIndex.set(key, node);
      nParent.push(pn); nIdent.push(ident[i]); nTotal.push(0); nSelf.push(0); nCount.push(0); nKids.push([]);
      nKids[pn].push(node);
    }
    nodeOf[i] = node;
    nTotal[node] += dur[i]; nSelf[node] += self[i]; nCount[node] += 1;
    if (parent[i] < 0) nTotal[0] += dur[i];
  }
  const NODES = nParent.length;
  // a node is as wide as its time, or as its children together when they outlive it (a network's
  // spans may end after their parent: an asynchronous submit returns before the execution ends)
  const nWidth = new Float64Array(NODES);
  for (let n = NODES - 1; n > 0; n--) {
    nWidth[n] = Math.max(nWidth[n], nTotal[n]);
    nWidth[nParent[n]] += nWidth[n];
  }
  const nX = new Float64Array(NODES), nDepth = new Int32Array(NODES);
  let flameDepth = 0;
  (function layout() {
    const stack = [0];
    while (stack.length) {
      const n = stack.pop();
      nKids[n].sort((a, b) => nWidth[b] - nWidth[a]);
      let x = nX[n];
      for (const k of nKids[n]) {
        nX[k] = x; x += nWidth[k]; nDepth[k] = nDepth[n] + 1;
        if (nDepth[k] > flameDepth) flameDepth = nDepth[k];
        stack.push(k);
      }
    }
  })();

  // ---------------------------------------------------------------- colours and text
  const hueOf = ids.map(([name, , , manual]) => {
    let h = 0;
    for (let c = 0; c < name.length; c++) h = (h * 31 + name.charCodeAt(c)) >>> 0;
    return manual ? 190 + (h % 70) : 8 + (h % 48);
  });
  const colour = ids.map(([, , , manual], k) => `hsl(${hueOf[k]}, ${manual ? 55 : 75}%, ${manual ? 68 : 64}%)`);
  const merged = ids.map((_, k) => `hsl(${hueOf[k]}, 12%, 74%)`);
  function fmtDur(ns) {
    if (ns >= 1e9) return (ns / 1e9).toFixed(3) + ' s';
    if (ns >= 1e6) return (ns / 1e6).toFixed(3) + ' ms';
    if (ns >= 1e3) return (ns / 1e3).toFixed(1) + ' µs';
    return Math.round(ns) + ' ns';
  }
  const fmtInt = (n) => n.toLocaleString('en-US');
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

  // ---------------------------------------------------------------- state
  const view = { t0: traceStart, t1: traceEnd, f0: 0, f1: nWidth[0] || 1, flameRoot: 0 };
  let selected = -1;          // span row selected in the timeline
  let selectedNode = -1;      // node selected in the flame graph
  let match = null;           // Uint8Array over identities when searching
  let matchQuery = '';
  const stats = { bars: 0, merged: 0, blocks: 0, nodes: 0, hiddenNodes: 0 };
  let timelineBars = [], flameBars = [];

  // ---------------------------------------------------------------- canvases
  function setup(id) {
    const canvas = document.getElementById(id);
    const scroller = canvas.parentElement;
    return { canvas, scroller, spacer: scroller.querySelector('.spacer'), ctx: canvas.getContext('2d'), w: 0, h: 0 };
  }
  const tl = setup('timeline'), fl = setup('flame');
  function resize(c, contentHeight) {
    const dpr = window.devicePixelRatio || 1;
    const w = c.scroller.clientWidth, h = c.scroller.clientHeight;
    if (w !== c.w || h !== c.h) {
      c.w = w; c.h = h;
      c.canvas.width = Math.max(1, Math.round(w * dpr)); c.canvas.height = Math.max(1, Math.round(h * dpr));
      c.canvas.style.width = w + 'px'; c.canvas.style.height = h + 'px';
    }
    c.spacer.style.height = Math.max(0, contentHeight - h) + 'px';
    c.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  let charWidth = 7;
  function label(ctx, text, x, y, w) {
    const fits = Math.floor((w - 6) / charWidth);
    if (fits < 3) return;
    ctx.fillText(text.length > fits ? text.slice(0, fits - 1) + '…' : text, x + 3, y + ROW / 2 + 1);
  }

  // ---------------------------------------------------------------- timeline
  function niceStep(span, px) {
    const raw = span / Math.max(1, px / 90);
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
    return 10 * pow;
  }
  function drawTimeline() {
    resize(tl, AXIS + rowCount * ROW);
    const { ctx, w, h } = tl;
    const scrollY = tl.scroller.scrollTop;
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    const scale = w / (view.t1 - view.t0);
    timelineBars = [];
    stats.bars = stats.merged = stats.blocks = 0;
    tracks.forEach((t, k) => {
      const { top, rows } = rowsOfTrack[k];
      const titleY = AXIS + top * ROW - scrollY;
      if (titleY + ROW > AXIS && titleY < h) {
        ctx.fillStyle = '#eef0f5'; ctx.fillRect(0, titleY, w, ROW);
        ctx.fillStyle = '#374151';
        const faults = t.errors.length ? `  ·  ${t.errors.length} fault${t.errors.length > 1 ? 's' : ''}` : '';
        ctx.fillText(`${t.title}  ·  ${fmtInt(t.count)} spans${faults}`, 6, titleY + ROW / 2 + 1);
      }
      rows.forEach((list, d) => {
        const y = AXIS + (top + 1 + d) * ROW - scrollY;
        if (y + ROW <= AXIS || y >= h || !list.length) return;
        drawRow(ctx, list, rowsOfTrack[k].longest[d], y, scale);
      });
    });
    drawAxis(ctx, w, scale);
  }
  function drawRow(ctx, list, longest, y, scale) {
    let runFirst = -1, runCount = 0, runX0 = 0, runX1 = 0;
    const flush = () => {
      if (!runCount) return;
      if (runCount === 1) { bar(ctx, runFirst, runX0, Math.max(runX1, runX0 + 1), y); }
      else {
        ctx.fillStyle = match && !match[ident[runFirst]] ? '#e5e7eb' : merged[ident[runFirst]];
        const x1 = Math.max(runX1, runX0 + 1);
        ctx.fillRect(runX0, y + 1, x1 - runX0, ROW - 2);
        timelineBars.push({ row: runFirst, name: ids[ident[runFirst]][0], x: runX0, y, w: x1 - runX0, h: ROW, merged: runCount });
        stats.merged += runCount; stats.blocks++;
      }
      runCount = 0;
    };
    for (let k = firstAt(list, longest, view.t0); k < list.length; k++) {
      const i = list[k];
      if (start[i] > view.t1) break;
      if (start[i] + dur[i] < view.t0) continue;
      const x0 = (start[i] - view.t0) * scale, x1 = (start[i] + dur[i] - view.t0) * scale;
      if (x1 - x0 < MIN_BAR) {
        if (runCount && x0 <= runX1 + 1) { runX1 = Math.max(runX1, x1); runCount++; }
        else { flush(); runFirst = i; runCount = 1; runX0 = x0; runX1 = x1; }
        continue;
      }
      flush();
      bar(ctx, i, x0, x1, y);
    }
    flush();
  }
  function bar(ctx, i, x0, x1, y) {
    const cx0 = Math.max(x0, -2), cx1 = Math.min(x1, tl.w + 2);
    const dim = match && !match[ident[i]];
    ctx.fillStyle = dim ? '#e5e7eb' : colour[ident[i]];
    const bw = Math.max(1, cx1 - cx0 - (cx1 - cx0 > 3 ? 1 : 0));
    ctx.fillRect(cx0, y + 1, bw, ROW - 2);
    const x = extra[i];
    if (x && x.error) { ctx.strokeStyle = '#dc2626'; ctx.lineWidth = 2; ctx.strokeRect(cx0 + 1, y + 2, bw - 2, ROW - 4); }
    if (i === selected) { ctx.strokeStyle = '#111827'; ctx.lineWidth = 2; ctx.strokeRect(cx0 + 1, y + 2, Math.max(1, bw - 2), ROW - 4); }
    if (x && (x.logs || x.metrics) && x1 - x0 >= 6 && !dim) markers(ctx, x, y);
    ctx.fillStyle = dim ? '#9ca3af' : '#1f2937';
    label(ctx, ids[ident[i]][0], Math.max(cx0, 0), y, Math.min(cx1, tl.w) - Math.max(cx0, 0));
    timelineBars.push({ row: i, name: ids[ident[i]][0], depth: depth[i], x: x0, y, w: x1 - x0, h: ROW, merged: 0 });
    stats.bars++;
  }
  // a log (triangle: red for ERROR and WARN) or a metric (blue diamond) at its time, on the span's bar
  function markers(ctx, x, y) {
    const scale = tl.w / (view.t1 - view.t0);
    const mark = (t, colour, diamond) => {
      const px = (t - view.t0) * scale;
      ctx.fillStyle = colour;
      ctx.beginPath();
      if (diamond) { ctx.moveTo(px, y + 1); ctx.lineTo(px + 4, y + 5); ctx.lineTo(px, y + 9); ctx.lineTo(px - 4, y + 5); }
      else { ctx.moveTo(px - 4, y + 1); ctx.lineTo(px + 4, y + 1); ctx.lineTo(px, y + 8); }
      ctx.closePath();
      ctx.fill();
    };
    (x.logs || []).forEach(([t, sev]) => mark(t, sev === 'ERROR' || sev === 'WARN' ? '#b91c1c' : '#374151', false));
    (x.metrics || []).forEach(([t]) => mark(t, '#1d4ed8', true));
  }
  function drawAxis(ctx, w, scale) {
    ctx.fillStyle = '#f9fafb'; ctx.fillRect(0, 0, w, AXIS);
    ctx.strokeStyle = '#d1d5db'; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, AXIS - 0.5); ctx.lineTo(w, AXIS - 0.5); ctx.stroke();
    const step = niceStep(view.t1 - view.t0, w);
    ctx.fillStyle = '#4b5563';
    for (let t = Math.ceil((view.t0 - traceStart) / step) * step; t + traceStart <= view.t1; t += step) {
      const x = (t + traceStart - view.t0) * scale;
      ctx.fillRect(x, AXIS - 6, 1, 6);
      ctx.fillText(fmtDur(t).replace(/\.0+ /, ' ').replace(/(\.\d*?)0+ /, '$1 '), x + 3, AXIS / 2);
    }
  }
  function timelineHit(px, py) {
    const y = py + tl.scroller.scrollTop - AXIS;
    if (py < AXIS) return -1;
    const r = Math.floor(y / ROW);
    for (let tk = 0; tk < tracks.length; tk++) {
      const { top, rows, longest } = rowsOfTrack[tk];
      const d = r - top - 1;
      if (d < 0 || d >= rows.length) continue;
      const list = rows[d];
      const scale = tl.w / (view.t1 - view.t0);
      const t = view.t0 + px / scale, slack = 2 / scale;
      let best = -1;     // the shortest span under the pointer (give or take two pixels)
      for (let k = firstAt(list, longest[d], t - slack); k < list.length; k++) {
        const i = list[k];
        if (start[i] > t + slack) break;
        if (start[i] + dur[i] >= t - slack && (best < 0 || dur[i] < dur[best])) best = i;
      }
      return best;
    }
    return -1;
  }

  // ---------------------------------------------------------------- flame graph
  function drawFlame() {
    resize(fl, (flameDepth + 1) * ROW);
    const { ctx, w, h } = fl;
    const scrollY = fl.scroller.scrollTop;
    ctx.clearRect(0, 0, w, h);
    ctx.font = '12px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    flameBars = [];
    stats.nodes = stats.hiddenNodes = 0;
    const scale = w / (view.f1 - view.f0);
    const rootDepth = nDepth[view.flameRoot];
    // the row on top: the node zoomed into (or "all"), full width
    const stack = [view.flameRoot];
    while (stack.length) {
      const n = stack.pop();
      const x0 = n === view.flameRoot ? 0 : (nX[n] - view.f0) * scale;
      const x1 = n === view.flameRoot ? w : (nX[n] + nWidth[n] - view.f0) * scale;
      if (x1 < 0 || x0 > w) continue;
      if (x1 - x0 < MIN_BAR) { stats.hiddenNodes++; continue; }
      const y = (nDepth[n] - rootDepth) * ROW - scrollY;
      if (y < h) {
        if (y + ROW > 0) {
          const dim = match && n && !match[nIdent[n]];
          const cx0 = Math.max(0, x0), cx1 = Math.min(w, x1);
          ctx.fillStyle = n === 0 ? '#cbd5e1' : dim ? '#e5e7eb' : colour[nIdent[n]];
          ctx.fillRect(cx0, y + 1, Math.max(1, cx1 - cx0 - 1), ROW - 2);
          if (n === selectedNode) { ctx.strokeStyle = '#111827'; ctx.lineWidth = 2; ctx.strokeRect(cx0 + 1, y + 2, Math.max(1, cx1 - cx0 - 3), ROW - 4); }
          ctx.fillStyle = dim ? '#9ca3af' : '#1f2937';
          const name = n === 0 ? `all spans (${fmtDur(nTotal[0])})` : `${ids[nIdent[n]][0]} (${fmtDur(nTotal[n])})`;
          label(ctx, name, cx0, y, cx1 - cx0);
          flameBars.push({ node: n, name: n === 0 ? '(all)' : ids[nIdent[n]][0], x: x0, y, w: x1 - x0, h: ROW, calls: nCount[n] });
          stats.nodes++;
        }
        for (const k of nKids[n]) stack.push(k);
      }
    }
  }
  function flameHit(px, py) {
    for (const b of flameBars) if (px >= b.x && px < b.x + b.w && py >= b.y && py < b.y + b.h) return b.node;
    return -1;
  }

  // ---------------------------------------------------------------- details
  const details = document.getElementById('details');
  function listOf(items) { return '<ul>' + items.join('') + '</ul>'; }
  function at(ns) { return '+' + fmtDur(ns - traceStart); }
  function showSpan(i) {
    const [name, raw, index, manual] = ids[ident[i]];
    const x = extra[i] || {};
    const path = [];
    for (let p = parent[i]; p >= 0; p = parent[p]) path.push(p);
    const kids = [];
    let html = `<h3>${esc(name)}</h3>`;
    if (x.error) html += `<p class="error">Error: ${esc(x.error)}</p>`;
    html += '<table>' +
      `<tr><th>raw name</th><td>${esc(raw)}</td></tr>` +
      `<tr><th>kind</th><td>${manual ? 'manual span' : 'function #' + index}</td></tr>` +
      `<tr><th>duration</th><td>${fmtDur(dur[i])}</td></tr>` +
      `<tr><th>self time</th><td>${fmtDur(self[i])}</td></tr>` +
      `<tr><th>start</th><td>${at(start[i])}</td></tr>` +
      `<tr><th>depth</th><td>${depth[i]}</td></tr>` +
      `<tr><th>trace</th><td>${esc(tracks[trackOf[i]].title)}</td></tr>` +
      `<tr><th>allocations</th><td>${x.alloc ? `${x.alloc} page${x.alloc > 1 ? 's' : ''} (${x.alloc * 64} KiB)` : 'none'}</td></tr>` +
      '</table>';
    if (x.tags && x.tags.length) html += '<h4>Tags</h4>' + listOf(x.tags.map((t) => `<li>${esc(t)}</li>`));
    if (x.logs) html += '<h4>Logs</h4>' + listOf(x.logs.map(([t, sev, msg]) => `<li><span class="sev-${esc(sev)}">${esc(sev)}</span> ${esc(msg)} <small>${at(t)}</small></li>`));
    if (x.metrics) html += '<h4>Metrics</h4>' + listOf(x.metrics.map(([t, fmt, v]) => `<li>${esc(v)} <small>${esc(fmt)}, ${at(t)}</small></li>`));
    if (path.length) html += '<h4>Called from</h4><div class="path">' + path.map((p) => `<a data-row="${p}">${esc(ids[ident[p]][0])}</a>`).join(' ← ') + '</div>';
    for (let k = i + 1; k < N && depth[k] > depth[i]; k++) if (parent[k] === i) kids.push(k);
    if (kids.length) html += `<h4>Children</h4><p>${fmtInt(kids.length)} span${kids.length > 1 ? 's' : ''}</p>`;
    details.innerHTML = html;
    details.dataset.row = String(i);
  }
  function showNode(n) {
    if (n === 0) { details.innerHTML = `<h3>all spans</h3><table><tr><th>spans</th><td>${fmtInt(N)}</td></tr><tr><th>total</th><td>${fmtDur(nTotal[0])}</td></tr></table>`; return; }
    const [name, raw] = ids[nIdent[n]];
    const path = [];
    for (let p = nParent[n]; p > 0; p = nParent[p]) path.push(ids[nIdent[p]][0]);
    details.innerHTML = `<h3>${esc(name)}</h3><table>` +
      `<tr><th>raw name</th><td>${esc(raw)}</td></tr>` +
      `<tr><th>calls</th><td>${fmtInt(nCount[n])}</td></tr>` +
      `<tr><th>total time</th><td>${fmtDur(nTotal[n])} (${(100 * nTotal[n] / (nTotal[0] || 1)).toFixed(1)}%)</td></tr>` +
      `<tr><th>self time</th><td>${fmtDur(nSelf[n])}</td></tr></table>` +
      (path.length ? '<h4>Called from</h4><div>' + path.map(esc).join(' ← ') + '</div>' : '');
    delete details.dataset.row;
  }
  details.addEventListener('click', (e) => {
    const a = e.target.closest('a[data-row]');
    if (a) select(Number(a.dataset.row), true);
  });

  // ---------------------------------------------------------------- actions
  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }
  function draw() {
    drawTimeline();
    drawFlame();
    document.getElementById('status').textContent =
      `Timeline: ${fmtInt(stats.bars)} bars drawn, ${fmtInt(stats.merged)} spans below a pixel merged into ${fmtInt(stats.blocks)} blocks` +
      ` · Flame graph: ${fmtInt(stats.nodes)} nodes drawn, ${fmtInt(stats.hiddenNodes)} below a pixel not drawn` +
      ` · view ${fmtDur(view.t1 - view.t0)} of ${fmtDur(traceEnd - traceStart)}`;
  }
  function zoomTime(t0, t1) {
    const min = 10;
    if (t1 - t0 < min) { const c = (t0 + t1) / 2; t0 = c - min / 2; t1 = c + min / 2; }
    const pad = (traceEnd - traceStart) * 0.02;
    view.t0 = Math.max(traceStart - pad, t0); view.t1 = Math.min(traceEnd + pad, t1);
    redraw();
  }
  function select(i, reveal) {
    selected = i; selectedNode = i >= 0 ? nodeOf[i] : -1;
    if (i >= 0) {
      showSpan(i);
      if (reveal) {
        const tooThin = dur[i] / (view.t1 - view.t0) * tl.w < 3;
        if (tooThin || start[i] < view.t0 || start[i] + dur[i] > view.t1) {
          const m = dur[i] * 2 + 1;   // the span, and some of what happens around it
          zoomTime(start[i] - m, start[i] + dur[i] + m);
        }
        const row = rowsOfTrack[trackOf[i]].top + 1 + depth[i];
        const y = AXIS + row * ROW;
        if (y < tl.scroller.scrollTop + AXIS || y + ROW > tl.scroller.scrollTop + tl.h) tl.scroller.scrollTop = Math.max(0, y - tl.h / 2);
      }
    }
    redraw();
  }
  function zoomFlame(n) {
    view.flameRoot = n;
    view.f0 = n === 0 ? 0 : nX[n];
    view.f1 = n === 0 ? (nWidth[0] || 1) : nX[n] + Math.max(nWidth[n], 1e-9);
    redraw();
  }

  // timeline: wheel zooms around the cursor, drag pans, click selects, double-click zooms to a span
  let drag = null;
  tl.canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const rect = tl.canvas.getBoundingClientRect();
    const t = view.t0 + (e.clientX - rect.left) / tl.w * (view.t1 - view.t0);
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const dt = (e.deltaX || e.deltaY) / tl.w * (view.t1 - view.t0);
      zoomTime(view.t0 + dt, view.t1 + dt);
      return;
    }
    const f = Math.exp(e.deltaY * 0.002);
    zoomTime(t - (t - view.t0) * f, t + (view.t1 - t) * f);
  }, { passive: false });
  tl.canvas.addEventListener('mousedown', (e) => {
    drag = { x: e.clientX, y: e.clientY, t0: view.t0, t1: view.t1, top: tl.scroller.scrollTop, moved: false };
  });
  window.addEventListener('mousemove', (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    const dt = dx / tl.w * (drag.t1 - drag.t0);
    view.t0 = drag.t0 - dt; view.t1 = drag.t1 - dt;
    tl.scroller.scrollTop = drag.top - dy;
    redraw();
  });
  window.addEventListener('mouseup', (e) => {
    if (drag && !drag.moved && e.target === tl.canvas) {
      const rect = tl.canvas.getBoundingClientRect();
      const i = timelineHit(e.clientX - rect.left, e.clientY - rect.top);
      if (i >= 0) select(i, false);
    }
    drag = null;
  });
  tl.canvas.addEventListener('dblclick', (e) => {
    const rect = tl.canvas.getBoundingClientRect();
    const i = timelineHit(e.clientX - rect.left, e.clientY - rect.top);
    if (i >= 0) { const m = dur[i] * 0.05 + 1; zoomTime(start[i] - m, start[i] + dur[i] + m); }
  });
  fl.canvas.addEventListener('click', (e) => {
    const rect = fl.canvas.getBoundingClientRect();
    const n = flameHit(e.clientX - rect.left, e.clientY - rect.top);
    if (n < 0) return;
    selectedNode = n; selected = -1;
    showNode(n);
    zoomFlame(n === view.flameRoot ? Math.max(0, nParent[n]) : n);
  });
  tl.scroller.addEventListener('scroll', redraw);
  fl.scroller.addEventListener('scroll', redraw);
  window.addEventListener('resize', redraw);
  document.getElementById('reset').addEventListener('click', () => { zoomTime(traceStart, traceEnd); zoomFlame(0); });

  // search by name: matching spans keep their colours, the rest turn grey; Enter selects the next match
  const search = document.getElementById('search'), matches = document.getElementById('matches');
  search.addEventListener('input', () => {
    matchQuery = search.value.trim().toLowerCase();
    if (!matchQuery) { match = null; matches.textContent = ''; redraw(); return; }
    match = new Uint8Array(ids.length);
    ids.forEach(([name, raw], k) => { match[k] = name.toLowerCase().includes(matchQuery) || raw.toLowerCase().includes(matchQuery) ? 1 : 0; });
    let count = 0;
    for (let i = 0; i < N; i++) count += match[ident[i]];
    matches.textContent = `${fmtInt(count)} match${count === 1 ? '' : 'es'}`;
    redraw();
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { search.value = ''; search.dispatchEvent(new Event('input')); return; }
    if (e.key !== 'Enter' || !match) return;
    for (let k = 1; k <= N; k++) {
      const i = (Math.max(selected, -1) + k) % N;
      if (match[ident[i]]) { select(i, true); return; }
    }
  });

  // ---------------------------------------------------------------- header, faults, first frame
  const faults = [];
  tracks.forEach((t) => {
    t.errors.forEach((m) => faults.push(`<li>${esc(t.title)}: ${esc(m)}</li>`));
    if (t.dropped) faults.push(`<li>${esc(t.title)}: ${fmtInt(t.dropped)} events dropped (event cap)</li>`);
  });
  const errorSpans = Object.keys(extra).filter((k) => extra[k].error).map(Number);
  errorSpans.slice(0, 20).forEach((i) => faults.push(`<li>span <a data-row="${i}" href="#">${esc(ids[ident[i]][0])}</a>: ${esc(extra[i].error)}</li>`));
  if (errorSpans.length > 20) faults.push(`<li>… and ${fmtInt(errorSpans.length - 20)} more spans with errors</li>`);
  const faultBox = document.getElementById('faults');
  if (faults.length) {
    faultBox.hidden = false;
    faultBox.innerHTML = `<strong>Faults (${faults.length})</strong><ul>${faults.join('')}</ul>`;
    faultBox.addEventListener('click', (e) => {
      const a = e.target.closest('a[data-row]');
      if (a) { e.preventDefault(); select(Number(a.dataset.row), true); }
    });
  }
  // t0 is nanoseconds since the epoch, as a string: more digits than a double holds
  const began = new Date(Number(BigInt(data.t0) / 1000000n) + traceStart / 1e6);
  document.getElementById('summary').textContent =
    `${fmtInt(N)} spans · ${tracks.length} trace${tracks.length === 1 ? '' : 's'} · ${fmtDur(traceEnd - traceStart)}` +
    (data.t0 !== '0' ? ` · ${began.toISOString().replace('T', ' ').slice(0, 23)} UTC` : '');
  tl.canvas.setAttribute('aria-label', `timeline of ${fmtInt(N)} spans`);
  fl.canvas.setAttribute('aria-label', 'flame graph of the same spans, merged by call path');
  charWidth = (() => { const c = tl.ctx; c.font = '12px system-ui, sans-serif'; return c.measureText('abcdefghijklmnopqrstuvwxyz_0123').width / 31; })();
  draw();

  // what the page shows, for tests and for anyone scripting it from the console
  window.traceView = {
    ready: true,
    spanCount: N,
    loadMs: performance.now(),
    stats: () => Object.assign({}, stats),
    timelineBars: () => timelineBars.map((b) => Object.assign({}, b)),
    flameBars: () => flameBars.map((b) => Object.assign({}, b)),
    select: (row) => select(row, true),
    find: (name) => { for (let i = 0; i < N; i++) if (ids[ident[i]][0] === name) return i; return -1; },
    zoomFlameTo: (row) => { zoomFlame(nodeOf[row]); draw(); },
    zoomToRow: (row) => { const m = dur[row] * 0.05 + 1; zoomTime(start[row] - m, start[row] + dur[row] + m); draw(); },
    zoom: (t0, t1) => { zoomTime(t0, t1); draw(); },
    reset: () => { zoomTime(traceStart, traceEnd); zoomFlame(0); draw(); },
    draw,
  };
  document.body.dataset.ready = 'true';
})();
