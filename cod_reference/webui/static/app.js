// cod's web UI: hash routes #/jobs, #/jobs/<id>, #/nodes, drawn from the API (nothing else is fetched).
(function () {
  'use strict';
  const API = '/api/v1/orchestrator';
  const REFRESH_MS = 2000;
  const TERMINAL = new Set(['Completed', 'Failed', 'Stopped']);
  const app = document.getElementById('app');
  let timer = null;
  let generation = 0;          // a newer route makes older pending renders drop their results

  // ------------------------------------------------------------------ the API, with its token
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    localStorage.setItem('cod-token', params.get('token'));
    history.replaceState(null, '', location.pathname + location.hash);
  }
  function headers() {
    const token = localStorage.getItem('cod-token');
    return token ? { Authorization: 'Bearer ' + token } : {};
  }
  async function request(path, as) {
    const response = await fetch(path, { headers: headers() });
    if (response.status === 401 || response.status === 403) {
      document.getElementById('login').hidden = false;
      throw new Error('the API refused the request (' + response.status + '): give it a token above');
    }
    if (!response.ok) {
      let message = response.statusText, body = {};
      try { body = await response.json(); message = body.Message || message; } catch (e) { /* not JSON */ }
      const error = new Error(message);
      error.body = body;   // e.g. 410 Gone, Code 'Removed': a node's retention removed the logs or results
      throw error;
    }
    return as === 'text' ? response.text() : response.json();
  }
  const api = (path) => request(API + path);
  document.getElementById('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    localStorage.setItem('cod-token', document.getElementById('token').value);
    document.getElementById('login').hidden = true;
    route();
  });

  // ------------------------------------------------------------------ helpers
  const esc = (s) => String(s === undefined || s === null ? '' : s).replace(/[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const badge = (state) => `<span class="badge ${esc(state)}" data-state="${esc(state)}">${esc(state)}</span>`;
  const chips = (labels) => Object.entries(labels || {}).map(([k, v]) => `<span class="chip">${esc(k)}=${esc(v)}</span>`).join('');
  const short = (id) => esc(String(id || '').slice(0, 10));
  function when(ns) {
    if (!ns) return '';
    const d = new Date(Number(ns) / 1e6);
    return d.toISOString().replace('T', ' ').slice(0, 19);
  }
  function memory(bytes) {
    if (!bytes) return '0';
    const gib = bytes / 2 ** 30;
    return gib >= 1 ? gib.toFixed(1) + ' GiB' : (bytes / 2 ** 20).toFixed(0) + ' MiB';
  }
  function live(text) { document.getElementById('live').textContent = text; }
  function every(fn) {
    clearInterval(timer);
    const mine = generation;
    const tick = async () => {
      if (mine !== generation) return;
      try { await fn(mine); live('updated ' + new Date().toLocaleTimeString()); }
      catch (err) { live(''); showError(err); }
    };
    tick();
    timer = setInterval(tick, REFRESH_MS);
  }
  function showError(err) {
    let box = document.getElementById('error');
    if (!box) { box = document.createElement('p'); box.id = 'error'; box.className = 'error'; app.prepend(box); }
    box.textContent = 'Error: ' + err.message;
  }
  function clearError() { const box = document.getElementById('error'); if (box) box.remove(); }

  // ------------------------------------------------------------------ nodes
  function nodesPage() {
    app.innerHTML = '<h1>Nodes</h1><table id="nodes"><thead><tr><th>Node</th><th>Type</th><th>Approval</th>' +
      '<th>Connection</th><th>Labels</th><th>CPU free / max</th><th>Memory free / max</th><th>Running</th><th>Queued</th>' +
      '<th>Last heartbeat</th></tr></thead><tbody></tbody></table>';
    every(async (mine) => {
      const nodes = (await api('/nodes')).Nodes;
      if (mine !== generation) return;
      clearError();
      app.querySelector('#nodes tbody').innerHTML = nodes.map((n) => {
        const info = n.Info, max = info.MaxCapacity || {}, free = info.AvailableCapacity || {};
        const used = max.CPU ? 100 * (1 - (free.CPU || 0) / max.CPU) : 0;
        return `<tr data-node="${esc(info.NodeID)}"><td class="mono">${esc(info.NodeID)}</td><td>${esc(info.NodeType)}</td>` +
          `<td>${badge(n.Membership)}</td><td>${badge(n.Connection)}</td><td>${chips(info.Labels)}</td>` +
          `<td class="nowrap">${max.CPU !== undefined ? `<span class="bar"><span style="width:${used.toFixed(0)}%"></span></span>${(free.CPU || 0).toFixed(2)} / ${max.CPU.toFixed(2)}` : ''}</td>` +
          `<td class="nowrap">${max.Memory !== undefined ? `${memory(free.Memory)} / ${memory(max.Memory)}` : ''}</td>` +
          `<td data-running>${info.RunningExecutions ?? ''}</td><td>${info.EnqueuedExecutions ?? ''}</td>` +
          `<td class="nowrap">${when(n.LastHeartbeat)}</td></tr>`;
      }).join('');
    });
  }

  // ------------------------------------------------------------------ jobs
  const filters = { state: '', name: '', label: '' };
  function jobsPage() {
    app.innerHTML = '<h1>Jobs</h1><div class="filters">' +
      '<select id="f-state"><option value="">every state</option>' +
      ['Pending', 'Queued', 'Running', 'Completed', 'Failed', 'Stopped'].map((s) => `<option>${s}</option>`).join('') +
      '</select><input id="f-name" placeholder="name contains…"><input id="f-label" placeholder="label k=v,k2=v2">' +
      '<span class="muted" id="count"></span></div>' +
      '<table id="jobs"><thead><tr><th>Created</th><th>ID</th><th>Name</th><th>Type</th><th>State</th><th>Message</th></tr></thead><tbody></tbody></table>';
    const state = app.querySelector('#f-state'), name = app.querySelector('#f-name'), label = app.querySelector('#f-label');
    state.value = filters.state; name.value = filters.name; label.value = filters.label;
    let refresh = () => {};
    const changed = () => { filters.state = state.value; filters.name = name.value.trim().toLowerCase(); filters.label = label.value.trim(); refresh(); };
    state.addEventListener('change', changed);
    name.addEventListener('input', changed);
    label.addEventListener('change', changed);
    const load = async (mine) => {
      const query = new URLSearchParams({ limit: '500', reverse: 'true' });
      if (filters.label) query.set('labels', filters.label);
      const jobs = (await api('/jobs?' + query)).Items;
      if (mine !== generation) return;
      clearError();
      const shown = jobs.filter((j) => (!filters.state || j.State.StateType === filters.state) &&
        (!filters.name || String(j.Name).toLowerCase().includes(filters.name)));
      shown.sort((a, b) => b.CreateTime - a.CreateTime);
      app.querySelector('#count').textContent = `${shown.length} of ${jobs.length} job${jobs.length === 1 ? '' : 's'}`;
      app.querySelector('#jobs tbody').innerHTML = shown.map((j) =>
        `<tr data-job="${esc(j.ID)}" data-name="${esc(j.Name)}"><td>${when(j.CreateTime)}</td>` +
        `<td class="mono"><a href="#/jobs/${encodeURIComponent(j.ID)}">${short(j.ID)}</a></td>` +
        `<td><a href="#/jobs/${encodeURIComponent(j.ID)}">${esc(j.Name)}</a> ${chips(j.Labels)}</td><td>${esc(j.Type)}</td>` +
        `<td>${badge(j.State.StateType)}</td><td>${esc(j.State.Message)}</td></tr>`).join('') ||
        '<tr><td colspan="6" class="muted">No jobs match.</td></tr>';
    };
    refresh = () => load(generation).catch(showError);
    every(load);
  }

  // ------------------------------------------------------------------ one job
  function jobPage(id) {
    app.innerHTML = `<h1 id="job-title">Job <span class="mono">${esc(id)}</span></h1>` +
      '<div class="grid"><div class="card"><h2>Summary</h2><dl class="facts" id="facts"></dl></div>' +
      '<div class="card"><h2>Spec</h2><pre id="spec"></pre></div></div>' +
      '<h2>Executions</h2><table id="executions"><thead><tr><th>ID</th><th>Node</th><th>Partition</th><th>State</th>' +
      '<th>Desired</th><th>Exit</th><th>Message</th></tr></thead><tbody></tbody></table>' +
      '<h2>Output</h2><p id="logs-note" class="muted" hidden></p>' +
      '<div class="grid"><div><div class="muted">stdout</div><pre id="stdout"></pre></div>' +
      '<div><div class="muted">stderr</div><pre id="stderr"></pre></div></div>' +
      '<h2>Published results</h2><div id="results" class="muted">none yet</div>' +
      '<h2>Trace <small class="muted" id="trace-note"></small></h2><div id="trace"><p class="muted">shown when the job has finished</p></div>' +
      '<h2>History</h2><table id="history"><thead><tr><th>Time</th><th>Execution</th><th>Topic</th><th>Event</th></tr></thead><tbody></tbody></table>';
    let traceShown = false;
    every(async (mine) => {
      const data = await api(`/jobs/${encodeURIComponent(id)}?include=executions,history`);
      if (mine !== generation) return;
      clearError();
      const job = data.Job, state = job.State.StateType;
      app.querySelector('#job-title').innerHTML = `${esc(job.Name)} ${badge(state)}`;
      app.querySelector('#facts').innerHTML =
        `<dt>ID</dt><dd class="mono">${esc(job.ID)}</dd><dt>Type</dt><dd>${esc(job.Type)}</dd>` +
        `<dt>State</dt><dd>${badge(state)} ${esc(job.State.Message)}</dd><dt>Count</dt><dd>${esc(job.Count)}</dd>` +
        `<dt>Labels</dt><dd>${chips(job.Labels) || '<span class="muted">none</span>'}</dd>` +
        `<dt>Created</dt><dd>${when(job.CreateTime)}</dd><dt>Modified</dt><dd>${when(job.ModifyTime)}</dd>`;
      const spec = Object.assign({}, job); delete spec.State;
      app.querySelector('#spec').textContent = JSON.stringify(spec, null, 2);
      const execs = data.Executions.Items;
      app.querySelector('#executions tbody').innerHTML = execs.map((e) =>
        `<tr><td class="mono">${short(e.ID)}</td><td>${esc(e.NodeID)}</td><td>${esc(e.PartitionIndex)}</td>` +
        `<td>${badge(e.ComputeState.StateType)}</td><td>${esc(e.DesiredState.StateType)}</td>` +
        `<td>${esc((e.RunOutput || {}).ExitCode ?? '')}</td><td>${esc(e.ComputeState.Message)}</td></tr>`).join('') ||
        '<tr><td colspan="7" class="muted">none yet</td></tr>';
      app.querySelector('#history tbody').innerHTML = data.History.Items.map((h) =>
        `<tr><td>${esc(h.Time)}</td><td class="mono">${short(h.ExecutionID)}</td><td>${esc(h.Event.Topic)}</td>` +
        `<td>${esc(h.Event.Message)}</td></tr>`).join('');
      let logs, note = '';
      try {
        logs = await api(`/jobs/${encodeURIComponent(id)}/logs`);
      } catch (err) {   // removed by the node's retention: the heads kept with the execution's result
        if (!err.body || err.body.Code !== 'Removed') throw err;
        const gone = err.body.FilesRemoved || {};
        const out = (execs.find((e) => e.ID === gone.ExecutionID) || {}).RunOutput || {};
        logs = { Stdout: out.Stdout, Stderr: out.stderr };
        note = err.message + (out.StdoutTruncated || out.StderrTruncated
          ? '; only the first 4 KiB of each stream, kept with the result, is shown' : '; shown: all of it, kept with the result');
      }
      if (mine !== generation) return;
      const logsNote = app.querySelector('#logs-note');
      logsNote.textContent = note;
      logsNote.hidden = !note;
      app.querySelector('#stdout').textContent = logs.Stdout || '(nothing)';
      app.querySelector('#stderr').textContent = logs.Stderr || '(nothing)';
      if (!TERMINAL.has(state)) return;
      const results = (await api(`/jobs/${encodeURIComponent(id)}/results`)).Items;
      if (mine !== generation) return;
      app.querySelector('#results').innerHTML = results.length ? '<ul>' + results.map((r) => {
        const url = (r.Params || {}).URL;
        return `<li>partition ${esc(r.PartitionIndex)}, execution <span class="mono">${short(r.ExecutionID)}</span>: ` +
          (url ? `<a href="${esc(url)}" data-download="${esc(url.split('/').pop())}">${esc(url.split('/').pop())}</a>`
            : esc(r.Type || 'published')) + '</li>';
      }).join('') + '</ul>' : 'none';
      if (!traceShown) { traceShown = true; showTrace(id, mine); }
    });
  }
  async function showTrace(id, mine) {
    const box = app.querySelector('#trace');
    const base = `${API}/jobs/${encodeURIComponent(id)}/trace`;
    try {
      const page = await request(`${base}?format=html`, 'text');
      if (mine !== generation) return;
      const frame = document.createElement('iframe');
      frame.className = 'trace';
      frame.title = 'trace of the job';
      frame.src = URL.createObjectURL(new Blob([page], { type: 'text/html' }));
      box.replaceChildren(frame);
      app.querySelector('#trace-note').innerHTML =
        `· download: <a href="${frame.src}" download="trace-${esc(id)}.html">html</a>, ` +
        `<a href="${base}?format=chrome-trace" data-download="trace-${esc(id)}.json">chrome-trace</a> ` +
        '(Perfetto, speedscope), ' +
        `<a href="${base}?format=folded" data-download="trace-${esc(id)}.folded">folded stacks</a>`;
    } catch (err) {
      box.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }

  // results are API routes too: fetched with the token, then saved from memory (a result on another
  // node's API, another origin, is a plain link: the browser may not read it from here)
  app.addEventListener('click', async (e) => {
    const link = e.target.closest('a[data-download]');
    if (!link || link.dataset.fetched || new URL(link.href).origin !== location.origin) return;
    e.preventDefault();
    try {
      const response = await fetch(link.href, { headers: headers() });
      if (!response.ok) {
        let message = `HTTP ${response.status}`;
        try { message = (await response.json()).Message || message; } catch (err) { /* not JSON */ }
        throw new Error(`${link.dataset.download}: ${message}`);
      }
      const saved = document.createElement('a');
      saved.href = URL.createObjectURL(await response.blob());
      saved.download = link.dataset.download;
      saved.dataset.fetched = '1';
      saved.click();
    } catch (err) { showError(err); }
  });

  // ------------------------------------------------------------------ routes
  function route() {
    generation++;
    clearInterval(timer);
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const page = parts[0] || 'jobs';
    document.querySelectorAll('header nav a').forEach((a) => a.classList.toggle('active', a.dataset.nav === page));
    if (page === 'nodes') nodesPage();
    else if (page === 'jobs' && parts[1]) jobPage(parts[1]);
    else jobsPage();
    document.title = `cod · ${page === 'jobs' && parts[1] ? 'job ' + parts[1] : page}`;
  }
  window.addEventListener('hashchange', route);
  route();
})();
