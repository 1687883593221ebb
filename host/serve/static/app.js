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
