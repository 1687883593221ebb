// Roster's admin pages: small enhancements only; every page reads without JavaScript.
// No inline handlers anywhere (the CSP forbids them): behaviour is bound here.
'use strict';

// Times are rendered by the server as UTC (RFC 3339 in `datetime`); show them in the
// browser's own zone, keeping the UTC value in the tooltip.
function localTimes(root) {
  for (const el of root.querySelectorAll('time[datetime]')) {
    if (el.dataset.local) continue;
    const d = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(d.getTime())) continue;
    el.title = el.getAttribute('datetime');
    el.textContent = d.toLocaleString(undefined, {
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
    });
    el.dataset.local = '1';
  }
}

// Buttons that ask before doing something that cannot be undone (data-confirm="…").
document.addEventListener('submit', (e) => {
  const btn = e.submitter;
  const msg = (btn && btn.dataset.confirm) || e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});

document.addEventListener('DOMContentLoaded', () => localTimes(document));
document.addEventListener('htmx:afterSwap', (e) => localTimes(e.target));

// Mapping editor: "Go to line L, column C" puts the caret at the error in the textarea.
document.addEventListener('click', (e) => {
  const btn = e.target.closest('button.goto');
  if (!btn) return;
  const ta = document.getElementById('mapping');
  if (!ta) return;
  const line = Number(btn.dataset.line), column = Number(btn.dataset.column);
  const lines = ta.value.split('\n');
  let at = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
  at += Math.max(0, column - 1);
  ta.focus();
  ta.setSelectionRange(at, at);
});

// Plugin upload: the component goes as the request body, with the session's CSRF header, to
// /ui/plugins/upload?file=NAME; the answer is shown under the form. (Without JavaScript the
// form posts itself as multipart, and the whole page answers.)
document.addEventListener('submit', async (e) => {
  const form = e.target;
  if (!form.dataset || !form.dataset.upload) return;
  e.preventDefault();
  const input = form.querySelector('input[type=file]');
  const out = document.getElementById('upload-result');
  const file = input.files && input.files[0];
  if (!file) return;
  const name = (form.querySelector('input[name=file]').value || file.name).trim();
  const headers = JSON.parse(document.body.getAttribute('hx-headers') || '{}');
  headers['Content-Type'] = 'application/wasm';
  out.textContent = 'Uploading ' + name + '…';
  try {
    const resp = await fetch(form.dataset.upload + '?file=' + encodeURIComponent(name),
      { method: 'POST', body: file, headers, credentials: 'same-origin' });
    out.innerHTML = await resp.text();
    if (resp.ok) window.setTimeout(() => window.location.reload(), 1500);
  } catch (err) {
    out.textContent = 'The upload failed: ' + err;
  }
});
