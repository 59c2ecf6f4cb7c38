// The live page and the HTML report: one renderer of the run model (src/ui/model.ts).
// Live: a snapshot and then deltas over server-sent events, with stop and retry.
// Report: the final snapshot embedded in the file, thumbnails as data: URIs, no network.
'use strict';

(function () {
  const SYMBOLS = { queued: '·', running: '▶', done: '✓', failed: '✗', retrying: '↻', cancelled: '⊘', skipped: '–' };
  const WORDS = {
    queued: 'queued',
    running: 'running',
    done: 'done',
    failed: 'failed',
    retrying: 'to retry',
    cancelled: 'cancelled',
    skipped: 'already complete',
  };
  const OUTCOMES = {
    waiting: 'waiting',
    running: 'running',
    collecting: 'fetching outputs',
    done: 'done',
    failed: 'failed',
    lost: 'lost',
    cancelled: 'stopped',
  };

  const app = document.getElementById('app');
  const embedded = document.getElementById('distray-data');
  const report = embedded ? JSON.parse(embedded.textContent) : null;
  const live = report === null;

  let run = null;
  let selected = null;
  const cells = new Map();
  let renderQueued = false;
  let connection = 'connecting';

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function secs(s) {
    if (s === null || s === undefined || !Number.isFinite(s)) return '?';
    if (s < 9.95) return `${s.toFixed(1)}s`;
    // Rounded first: 119.6 s is 2m00s, not 1m60s.
    const t = Math.round(s);
    if (t < 60) return `${t}s`;
    if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`;
    return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`;
  }

  /** With --stitch the tiles of a frame share its picture, embedded once in the report (with its first finished tile). */
  function thumbUrl(t, size) {
    if (!live) {
      const thumbs = report.thumbs || {};
      if (thumbs[t.i]) return thumbs[t.i];
      // A chunk's pictures are its frames': its first frame's stands for it.
      if (t.count !== undefined && thumbs[`f${t.frame}`]) return thumbs[`f${t.frame}`];
      if (!run.perFrame) return null;
      const same = run.tasks.find((o) => o.frame === t.frame && thumbs[o.i]);
      return same ? thumbs[same.i] : null;
    }
    return `${size}/${t.i}?v=${t.copies}`;
  }

  // ---- state ----

  function applySnapshot(s) {
    run = {
      title: s.title,
      perFrame: s.perFrame,
      startedAt: s.startedAt,
      tasks: s.tasks,
      hosts: new Map(s.hosts.map((h) => [h.name, h])),
      bars: new Map(s.bars.map((b) => [`${b.i}:${b.attempt}`, b])),
      failures: s.failures,
      failuresSeen: s.failures.length,
      progress: s.progress,
      receivedAt: Date.now(),
      latest: s.latest,
      retryable: s.retryable,
      end: s.end,
    };
    cells.clear();
    build();
  }

  /** Seconds since the run started, now: the server's reading when it last sent, counted on here between its messages (a running render sends none). */
  function elapsedNow() {
    const p = run.progress;
    const sent = p.now ?? p.at;
    if (!live || run.end) return Math.max(sent, p.at);
    return sent + Math.max(0, (Date.now() - run.receivedAt) / 1000);
  }

  // The elapsed time, the ETA and the running bars move every second, events or not.
  if (live)
    setInterval(() => {
      if (run && !run.end) render();
    }, 1000);

  function applyDelta(d) {
    if (!run) return;
    for (const t of d.tasks) {
      run.tasks[t.i] = t;
      updateCell(t);
    }
    for (const h of d.hosts) run.hosts.set(h.name, h);
    for (const b of d.bars) run.bars.set(`${b.i}:${b.attempt}`, b);
    run.failures.push(...d.failures);
    run.failuresSeen += d.failures.length;
    // As the server keeps them: the newest 500.
    if (run.failures.length > 500) run.failures.splice(0, run.failures.length - 500);
    run.progress = d.progress;
    run.receivedAt = Date.now();
    run.latest = d.latest;
    run.retryable = d.retryable;
    run.end = d.end;
    queueRender();
  }

  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 50);
  }

  // ---- building the page ----

  const parts = {};

  function build() {
    app.replaceChildren();
    detailShown = null;
    failuresShown = null;
    document.title = `distray: ${run.title}`;
    // The counts change several times a second: not a live region (a screen reader would never stop); the end of the run is announced once.
    parts.status = el('p', { class: 'counts', id: 'progress-text' });
    parts.announce = el('p', { class: 'visually-hidden', role: 'status' });
    parts.bar = el('progress', { max: 1, value: 0, 'aria-label': 'done' });
    parts.conn = el('span', { class: 'note' });
    // What distray answered to a button (a retry it refused, a stop it could not hear).
    parts.message = el('p', { class: 'note', id: 'message', role: 'alert' });
    const header = el(
      'header',
      {},
      el('h1', { text: `distray: ${run.title}` }),
      el('div', { class: 'status' }, parts.bar, parts.status, parts.conn),
      parts.message,
      parts.announce,
    );
    if (live) {
      parts.stop = el('button', { id: 'stop', class: 'danger', type: 'button', onclick: confirmStop }, 'Stop the run…');
      header.querySelector('.status').append(parts.stop);
    }
    parts.summary = el(
      'section',
      { class: 'summary', 'aria-labelledby': 'h-summary', hidden: true },
      el('h2', { id: 'h-summary', text: 'Summary' }),
      el('pre', { id: 'summary' }),
    );

    parts.grid = el('ul', { class: 'grid', id: 'grid', 'aria-label': 'tasks' });
    const legend = el('ul', { class: 'legend', 'aria-label': 'legend' });
    for (const s of Object.keys(SYMBOLS))
      legend.append(
        el(
          'li',
          {},
          el(
            'span',
            { class: `cell s-${s}` },
            el('span', { class: 'sym', 'aria-hidden': 'true', text: SYMBOLS[s] }),
            WORDS[s],
          ),
        ),
      );
    legend.append(el('li', { text: '◇ a speculative copy races it' }));
    // In frame order (with --chunk, parts formed as the run goes come after the others in the list).
    for (const t of [...run.tasks].filter(Boolean).sort((a, b) => a.frame - b.frame)) parts.grid.append(makeCell(t));

    parts.picture = el('img', { id: 'picture', alt: '', hidden: true });
    parts.caption = el('figcaption', { id: 'picture-caption', text: 'No picture yet.' });
    parts.detail = el('div', { id: 'detail' });
    const side = el(
      'section',
      { 'aria-labelledby': 'h-picture' },
      el('h2', { id: 'h-picture', text: 'Picture' }),
      el('figure', {}, parts.picture, parts.caption),
      parts.detail,
    );
    const gridSection = el(
      'section',
      { 'aria-labelledby': 'h-tasks' },
      el('h2', { id: 'h-tasks', text: 'Frames' }),
      el('p', { class: 'note', text: 'Select a frame to see its picture, where it ran, or why it failed.' }),
      legend,
      parts.grid,
    );

    parts.hosts = el('tbody');
    const hostTable = el(
      'div',
      { class: 'table-wrap' },
      el(
        'table',
        { id: 'hosts' },
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ...['host', 'state', 'slots busy', 'tasks done', 'mean s/task', 'median s/task', 'failures'].map((h, k) =>
              el('th', { scope: 'col', class: k >= 2 ? 'num' : null, text: h }),
            ),
          ),
        ),
        parts.hosts,
      ),
    );
    parts.failures = el('div', { id: 'failures' });
    parts.timeline = el('div', { class: 'timeline', id: 'timeline' });

    app.append(
      header,
      parts.summary,
      el('div', { class: 'layout' }, gridSection, side),
      el('section', { 'aria-labelledby': 'h-hosts' }, el('h2', { id: 'h-hosts', text: 'Hosts' }), hostTable),
      el(
        'section',
        { 'aria-labelledby': 'h-failures' },
        el('h2', { id: 'h-failures', text: 'Failures' }),
        parts.failures,
      ),
      el(
        'section',
        { 'aria-labelledby': 'h-timeline' },
        el('h2', { id: 'h-timeline', text: 'Timeline' }),
        el('p', {
          class: 'note',
          text: 'One row per host slot; ✗ and hatched: a failed attempt; ◇ and dashed: a speculative copy; grey: lost, cancelled, or beaten by another copy.',
        }),
        parts.timeline,
      ),
    );
    if (!live) app.append(contactSheet());
    if (live) app.append(dialog());
    render();
  }

  function makeCell(t) {
    const button = el('button', {
      type: 'button',
      class: 'cell',
      'data-i': t.i,
      'aria-pressed': 'false',
      onclick: () => select(t.i),
    });
    const li = el('li', {}, button);
    cells.set(t.i, button);
    paintCell(button, t);
    return li;
  }

  function paintCell(button, t) {
    const spec = t.live > 1;
    button.className = `cell s-${t.state}`;
    button.dataset.state = t.state;
    const where = t.host && (t.state === 'running' || t.state === 'done') ? ` on ${t.host}` : '';
    button.setAttribute(
      'aria-label',
      `${t.label}: ${WORDS[t.state]}${where}${spec ? ', with a speculative copy' : ''}`,
    );
    button.title = button.getAttribute('aria-label');
    button.dataset.frame = String(t.frame);
    // With --chunk a cell is its frames ("5-8", from "frames 5-8").
    button.replaceChildren(
      el('span', { class: 'sym', 'aria-hidden': 'true', text: SYMBOLS[t.state] + (spec ? '◇' : '') }),
      t.tile === null ? t.label.replace(/^frames? /, '') : `${t.frame}.${t.tile}`,
    );
  }

  /** Puts a cell where its frame goes in the grid. */
  function place(li, frame) {
    if (!parts.grid) return;
    const after = [...parts.grid.children].find((o) => o !== li && Number(o.firstChild.dataset.frame) > frame);
    parts.grid.insertBefore(li, after ?? null);
  }

  function updateCell(t) {
    const button = cells.get(t.i);
    if (button) {
      const moved = button.dataset.frame !== String(t.frame);
      paintCell(button, t);
      // With --chunk, a queued run of frames loses its first ones to a slot: it moves to where its frames now start.
      if (moved) place(button.parentNode, t.frame);
    }
    // With --chunk, tasks are formed as the run goes: a new one gets its cell, in frame order.
    else if (parts.grid) place(makeCell(t), t.frame);
  }

  function select(i) {
    if (selected !== null) cells.get(selected)?.setAttribute('aria-pressed', 'false');
    selected = i;
    cells.get(i)?.setAttribute('aria-pressed', 'true');
    render();
  }

  // ---- rendering the changing parts ----

  function render() {
    if (!run) return;
    const p = run.progress;
    const unit = p.unit || 'frames';
    const now = elapsedNow();
    const since = now - (p.now ?? p.at);
    // The bar is what is done: a stopped or failed run's bar stops short.
    parts.bar.max = Math.max(1, p.total);
    parts.bar.value = p.done + p.skipped;
    const bits = [`${p.done + p.skipped}/${p.total} ${unit} done`];
    if (p.skipped) bits.push(`${p.skipped} already complete`);
    if (p.failed) bits.push(`${p.failed} failed`);
    if (p.cancelled) bits.push(`${p.cancelled} cancelled`);
    if (p.running) bits.push(`${p.running} running`);
    bits.push(`${secs(now)} elapsed`);
    if (p.rate !== null) bits.push(`${(p.rate * 60).toFixed(1)}/min`);
    if (p.eta !== null && !run.end) bits.push(`ETA ${secs(Math.max(0, p.eta - since))}`);
    const state = run.end ? `Ended (exit ${run.end.exitCode}).` : 'Running.';
    parts.status.textContent = `${state} ${bits.join(', ')}`;
    parts.conn.textContent = live && !run.end && connection !== 'open' ? '(reconnecting to distray…)' : '';
    if (parts.stop && run.end) {
      parts.stop.disabled = true;
      parts.stop.textContent = run.end.exitCode === 130 ? 'Stopped' : 'The run has ended';
    }
    if (run.end) {
      const said = `The run has ended (exit ${run.end.exitCode}).`;
      if (parts.announce.textContent !== said) parts.announce.textContent = said;
      parts.summary.hidden = false;
      parts.summary.querySelector('pre').textContent = run.end.lines.join('\n');
    }
    renderPicture();
    renderHosts();
    renderFailures();
    renderTimeline();
  }

  let detailShown = '';
  function renderPicture() {
    const i = selected ?? run.latest;
    const t = i === null ? null : run.tasks[i];
    const own = t ? run.failures.filter((f) => f.i === t.i) : [];
    // Rebuilt only when it changes: a focused Retry button must stay focused while the run goes on.
    const detailKey = t ? `${t.i}:${t.state}:${own.length}:${run.retryable}` : '';
    if (detailKey !== detailShown) {
      detailShown = detailKey;
      parts.detail.replaceChildren();
      if (own.length > 0) parts.detail.append(failureBlock(own[own.length - 1]));
      if (t && t.state === 'failed' && live) parts.detail.append(retryButton(t));
    }
    if (!t) {
      parts.picture.hidden = true;
      parts.caption.textContent = 'No picture yet.';
      return;
    }
    const showing = selected === null ? 'Latest: ' : '';
    if ((t.state === 'done' || t.state === 'skipped') && t.image) {
      const src = thumbUrl(t, live ? 'picture' : 'thumb');
      if (src && parts.picture.getAttribute('src') !== src) parts.picture.src = src;
      parts.picture.alt = `picture of ${t.label}`;
      parts.picture.hidden = !src;
      parts.caption.textContent = `${showing}${t.label}${t.host ? `, rendered on ${t.host}` : ''}${t.seconds !== null ? ` in ${secs(t.seconds)}` : ''}`;
    } else {
      parts.picture.hidden = true;
      parts.picture.removeAttribute('src');
      const where = t.host && t.state === 'running' ? ` on ${t.host}` : '';
      parts.caption.textContent = `${t.label}: ${WORDS[t.state]}${where}${t.image || t.state !== 'done' ? '' : ' (its outputs are not images)'}`;
    }
  }

  function renderHosts() {
    const rows = [...run.hosts.values()].sort((a, b) => a.name.localeCompare(b.name));
    parts.hosts.replaceChildren(
      ...rows.map((h) =>
        el(
          'tr',
          { 'data-host': h.name },
          el('th', { scope: 'row', text: h.name }),
          el('td', { text: h.reason ? `${h.state}: ${h.reason}` : h.state }),
          el('td', { class: 'num', text: `${h.busy}/${h.slots}` }),
          el('td', { class: 'num', text: String(h.tasksDone) }),
          el('td', { class: 'num', text: h.meanSeconds === null ? '–' : h.meanSeconds.toFixed(2) }),
          el('td', { class: 'num', text: h.medianSeconds === null ? '–' : h.medianSeconds.toFixed(2) }),
          el('td', { class: 'num', text: String(h.failures) }),
        ),
      ),
    );
  }

  let failuresShown = '';
  function renderFailures() {
    const key = `${run.failuresSeen}:${run.retryable}:${run.tasks.filter((t) => t.state === 'failed').length}`;
    if (key === failuresShown) return;
    failuresShown = key;
    if (run.failures.length === 0) {
      parts.failures.replaceChildren(el('p', { class: 'note', text: 'None.' }));
      return;
    }
    const list = run.failures.slice(-100).reverse();
    const nodes = list.map((f) => {
      const t = run.tasks[f.i];
      const block = failureBlock(f);
      if (live && t && t.state === 'failed' && list.find((g) => g.i === f.i) === f) block.append(retryButton(t));
      return block;
    });
    if (run.failures.length > list.length)
      nodes.push(
        el('p', {
          class: 'note',
          text: `… and ${run.failures.length - list.length} earlier failures (the JSON report lists every failed task)`,
        }),
      );
    parts.failures.replaceChildren(...nodes);
  }

  function failureBlock(f) {
    const box = el(
      'article',
      { class: 'failure', 'data-i': f.i },
      el('h3', { text: `✗ ${f.label}, attempt ${f.attempt} on ${f.host} (at ${secs(f.at)})` }),
      el('p', { text: f.message }),
    );
    if (f.tail)
      box.append(
        el(
          'details',
          { open: true },
          el('summary', { text: 'last output' }),
          el('pre', { class: 'tail', text: f.tail }),
        ),
      );
    return box;
  }

  function retryButton(t) {
    const wrap = el('p', {});
    const button = el(
      'button',
      { type: 'button', class: 'retry', 'data-i': t.i, disabled: !run.retryable, onclick: () => confirmRetry(t) },
      `Retry ${t.label}…`,
    );
    wrap.append(button);
    if (!run.retryable)
      wrap.append(
        ' ',
        el('span', {
          class: 'note',
          text: 'The run has ended: run the same command again to render the failed tasks (complete ones are skipped).',
        }),
      );
    return wrap;
  }

  function renderTimeline() {
    const bars = [...run.bars.values()];
    if (bars.length === 0) {
      parts.timeline.replaceChildren(el('p', { class: 'note', text: 'Nothing has started yet.' }));
      return;
    }
    const now = elapsedNow();
    let span = now;
    for (const b of bars) span = Math.max(span, b.end ?? b.freed ?? b.start ?? b.queued);
    span = Math.max(span, 0.001);
    const rows = new Map();
    for (const b of bars) {
      const key = `${b.host}\u0000${String(b.lane).padStart(4, '0')}`;
      if (!rows.has(key)) rows.set(key, []);
      rows.get(key).push(b);
    }
    const nodes = [];
    for (const key of [...rows.keys()].sort()) {
      const list = rows.get(key);
      const track = el('div', { class: 'tl-track' });
      for (const b of list) {
        const from = b.start ?? b.queued;
        // A running bar grows with the time.
        const to = b.end ?? b.freed ?? now;
        const spec = b.speculative ? ' spec' : '';
        const mark = b.outcome === 'failed' ? '✗' : b.speculative ? '◇' : '';
        const words = `${b.label} attempt ${b.attempt}${b.speculative ? ' (speculative copy)' : ''}: ${OUTCOMES[b.outcome]}${b.ignored ? ', beaten by another copy' : ''}, ${secs(from)} to ${secs(to)}`;
        track.append(
          el(
            'div',
            {
              class: `bar o-${b.outcome}${spec}${b.ignored ? ' ignored' : ''}`,
              style: null,
              title: words,
              role: 'img',
              'aria-label': words,
              'data-i': b.i,
            },
            `${mark}${b.label.replace(/^frame /, '')}`,
          ),
        );
        const bar = track.lastChild;
        bar.style.left = `${(100 * from) / span}%`;
        bar.style.width = `${Math.max(0.2, (100 * (to - from)) / span)}%`;
      }
      const first = list[0];
      nodes.push(
        el(
          'div',
          { class: 'tl-row' },
          el('div', { class: 'tl-name', text: `${first.host} slot ${first.lane + 1}` }),
          track,
        ),
      );
    }
    nodes.push(
      el(
        'div',
        { class: 'tl-axis', 'aria-hidden': 'true' },
        el('span', { text: '0s' }),
        el('span', { text: secs(span / 2) }),
        el('span', { text: secs(span) }),
      ),
    );
    parts.timeline.replaceChildren(...nodes);
  }

  function contactSheet() {
    const list = el('ul', { class: 'sheet', id: 'sheet' });
    const frames = new Set();
    // In frame order: with --chunk the parts formed as the run went come after the others in the list.
    for (const t of [...run.tasks].filter(Boolean).sort((a, b) => a.frame - b.frame)) {
      if (t.state !== 'done' && t.state !== 'skipped') continue;
      if (t.count !== undefined && t.last !== undefined) {
        // A chunk: a picture of each of its frames.
        const step = t.count > 1 ? (t.last - t.frame) / (t.count - 1) : 0;
        for (let k = 0; k < t.count; k++) {
          const f = t.frame + k * step;
          const src = (report.thumbs || {})[`f${f}`];
          const body =
            t.image && src
              ? el('img', { src, alt: `picture of frame ${f}`, loading: 'lazy' })
              : el('div', { class: 'noimg', text: t.image ? 'no picture' : 'not an image' });
          list.append(
            el(
              'li',
              {},
              el(
                'figure',
                {},
                body,
                el('figcaption', { text: `${SYMBOLS[t.state]} frame ${f}${t.host ? ` (${t.host})` : ''}` }),
              ),
            ),
          );
        }
        continue;
      }
      if (run.perFrame) {
        if (frames.has(t.frame)) continue;
        frames.add(t.frame);
      }
      const src = thumbUrl(t, 'thumb');
      const body =
        t.image && src
          ? el('img', { src, alt: `picture of ${t.label}`, loading: 'lazy' })
          : el('div', { class: 'noimg', text: t.image ? 'no picture' : 'not an image' });
      const caption = run.perFrame
        ? `frame ${t.frame}`
        : `${SYMBOLS[t.state]} ${t.label}${t.host ? ` (${t.host})` : ''}`;
      list.append(el('li', {}, el('figure', {}, body, el('figcaption', { text: caption }))));
    }
    return el(
      'section',
      { 'aria-labelledby': 'h-sheet' },
      el('h2', { id: 'h-sheet', text: 'Contact sheet' }),
      list.childElementCount ? list : el('p', { class: 'note', text: 'No frame was rendered.' }),
    );
  }

  // ---- confirmations and actions (live only) ----

  let confirmAction = null;

  function dialog() {
    parts.dialog = el(
      'dialog',
      { id: 'confirm', 'aria-labelledby': 'confirm-text' },
      el('p', { id: 'confirm-text' }),
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', id: 'confirm-no', onclick: () => parts.dialog.close() }, 'Cancel'),
        el('button', { type: 'button', id: 'confirm-yes', class: 'danger', onclick: confirmed }),
      ),
    );
    return parts.dialog;
  }

  function ask(text, yes, action) {
    parts.dialog.querySelector('#confirm-text').textContent = text;
    parts.dialog.querySelector('#confirm-yes').textContent = yes;
    confirmAction = action;
    parts.dialog.showModal();
    parts.dialog.querySelector('#confirm-no').focus();
  }

  function confirmed() {
    parts.dialog.close();
    const action = confirmAction;
    confirmAction = null;
    if (action) action();
  }

  function confirmStop() {
    ask(
      'Stop the run? Every renderer is stopped, as with Ctrl+C; finished frames are kept and a rerun of the same command finishes the rest.',
      'Stop the run',
      () => {
        parts.stop.disabled = true;
        parts.stop.textContent = 'Stopping…';
        post('stop');
      },
    );
  }

  function confirmRetry(t) {
    ask(
      `Render ${t.label} again? It goes back to the front of the queue, with its attempts counted afresh.`,
      `Retry ${t.label}`,
      () => post(`retry/${t.i}`),
    );
  }

  function post(path) {
    parts.message.textContent = '';
    fetch(path, { method: 'POST' })
      .then((res) => (res.ok ? null : res.text().then((text) => alertText(text))))
      .catch(() => alertText('distray did not answer; is the run still going?'));
  }

  function alertText(text) {
    parts.message.textContent = text.trim();
  }

  // ---- start ----

  if (live) {
    const source = new EventSource('events');
    source.addEventListener('open', () => {
      connection = 'open';
      queueRender();
    });
    source.addEventListener('error', () => {
      connection = 'lost';
      // Once the run has ended the process exits: nothing is left to reconnect to.
      if (run && run.end) source.close();
      queueRender();
    });
    source.addEventListener('snapshot', (e) => {
      applySnapshot(JSON.parse(e.data));
      if (run.end) source.close();
    });
    source.addEventListener('delta', (e) => {
      applyDelta(JSON.parse(e.data));
      // The run is over and its summary shown: nothing more will come, and the process is about to exit.
      if (run && run.end) source.close();
    });
  } else {
    applySnapshot(report.snapshot);
  }
})();
