"""The chat's stylesheet and page script (passed to ``Blocks.launch(css=, head=)`` by
``rag.serve.web``): citation links and previews, the progress line's ticking seconds, readable
contrast, and accessible names Gradio does not give."""

from __future__ import annotations

CSS = """
:root, .gradio-container {
  /* Gradio's defaults (#BBBBC2-ish on white, 1.9:1) fail WCAG AA's 4.5:1 for text. */
  --input-placeholder-color: #63636e !important;
  --body-text-color-subdued: #585862 !important;
  --block-info-text-color: #585862 !important;
}
::placeholder { color: #63636e !important; opacity: 1; }
#sources { max-height: 640px; overflow-y: auto; }
#sources .src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px; margin: 6px 0; }
#sources .src.flash { outline: 3px solid var(--color-accent); }
#sources .src-meta { color: #585862; font-size: 0.85em; }
#sources .src-url { margin: 4px 0; font-size: 0.85em; overflow-wrap: anywhere; }
#sources mark { background: #ffe58a; color: #1f1f1f; padding: 0 2px; }
#sources .article-text { white-space: pre-wrap; font-size: 0.9em; max-height: 320px; overflow-y: auto; }
#sources h3 { margin: 10px 0 4px; font-size: 1em; }
#sources summary:focus-visible, a.cite:focus-visible { outline: 3px solid #1d4ed8; outline-offset: 2px; }
.sources-heading { margin: 0; font-size: 1.2em; }
a.cite { color: #1e3a8a !important; text-decoration: underline; text-underline-offset: 2px; font-weight: 600;
         cursor: pointer; position: relative; white-space: nowrap; }
a.cite:hover { background: #e8efff; }
a.cite .cite-preview { display: none; position: absolute; z-index: 1000; left: 0; bottom: 1.6em; width: max-content;
  max-width: min(360px, 80vw); white-space: normal; font-weight: 400; background: #1f2937; color: #fff;
  padding: 6px 8px; border-radius: 6px; font-size: 0.85em; line-height: 1.35; text-decoration: none;
  box-shadow: 0 2px 8px rgba(0,0,0,.25); }
a.cite:hover .cite-preview, a.cite:focus .cite-preview, a.cite:focus-within .cite-preview { display: block; }
/* Lift the message with the open preview above its neighbours' copy buttons. */
#chatbot .message-wrap > *:has(a.cite:hover), #chatbot .message-wrap > *:has(a.cite:focus) { position: relative; z-index: 20; }
.phase { color: #4b4b55; font-style: italic; }
.phase .elapsed { font-variant-numeric: tabular-nums; }
.filter-chips { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; font-size: 0.9em; color: #3f3f46; }
.filter-chips ul { display: contents; list-style: none; margin: 0; padding: 0; }
.filter-chips .chip { background: #e8efff; color: #1e3a8a; border: 1px solid #9db4f0; border-radius: 999px;
  padding: 1px 10px; }
.filter-chips .chips-hint { color: #585862; }
details.why summary { cursor: pointer; color: #4b4b55; }
#date-error:not(:has(.field-error)), #filter-chips:not(:has(.chip)) { display: none; }
#date-error .field-error { color: #b91c1c; margin: 0; padding-left: 1.2em; font-size: 0.9em; }
#stop:disabled, #send:disabled { opacity: 0.6; cursor: not-allowed; }
/* The theme's orange primary and red stop buttons with white text are 3.6:1 and 3.8:1; darker
   shades keep the look at 5:1 or more. */
button.primary { background: #c2410c !important; border-color: #c2410c !important; color: #fff !important; }
button.primary:hover:not(:disabled) { background: #9a3412 !important; }
button.stop { background: #b91c1c !important; border-color: #b91c1c !important; color: #fff !important; }
button.stop:hover:not(:disabled) { background: #991b1b !important; }
button[role="tab"].selected { color: #c2410c !important; }  /* the theme's #f97316 is 2.8:1 */
/* The status line never scrolls (an unfocusable scroll box fails axe): it wraps instead. */
#status, #status * { overflow: visible !important; overflow-wrap: anywhere; }
"""

# The page script: Gradio re-renders messages, so each part re-applies itself on DOM changes.
HEAD = """
<script>
(function () {
  // A citation scrolls the sources panel to its passage, opens it and moves focus there.
  document.addEventListener('click', function (e) {
    const link = e.target.closest && e.target.closest('a[href*="#src-"]');
    if (!link) return;
    e.preventDefault(); e.stopPropagation();
    const el = document.getElementById(link.getAttribute('href').split('#')[1]);
    if (!el) return;
    // On a phone the Sources column is a drawer: it opens first (rag.serve.phone_assets).
    document.dispatchEvent(new CustomEvent('rag:show-source', {detail: {link: link}}));
    el.open = true;
    el.scrollIntoView({behavior: 'smooth', block: 'center'});
    const summary = el.querySelector('summary');
    if (summary) summary.focus({preventScroll: true});
    el.classList.add('flash');
    setTimeout(function () { el.classList.remove('flash'); }, 2000);
  }, true);

  // A citation's preview opens above it, moved to stay inside the conversation's box.
  function placePreview(e) {
    const link = e.target.closest && e.target.closest('a.cite');
    const tip = link && link.querySelector('.cite-preview');
    if (!tip) return;
    tip.style.left = '0px'; tip.style.top = ''; tip.style.bottom = '';
    const box = (link.closest('#chatbot') || document.body).getBoundingClientRect();
    let r = tip.getBoundingClientRect();
    const over = r.right - (box.right - 8);
    if (over > 0) tip.style.left = -Math.min(over, Math.max(0, r.left - box.left - 8)) + 'px';
    r = tip.getBoundingClientRect();
    if (r.top < box.top + 4) { tip.style.bottom = 'auto'; tip.style.top = '1.6em'; }
  }
  document.addEventListener('mouseover', placePreview);
  document.addEventListener('focusin', placePreview);

  // Messages get an aria-label of their raw HTML from Gradio: give them their text instead.
  function labelMessages() {
    document.querySelectorAll('#chatbot [data-testid="bot"], #chatbot [data-testid="user"]').forEach(function (m) {
      const who = m.getAttribute('data-testid') === 'bot' ? 'Answer' : 'Question';
      const clone = m.cloneNode(true);
      clone.querySelectorAll('.cite-preview').forEach(function (p) { p.remove(); });
      const label = who + ': ' + clone.textContent.replace(/\\s+/g, ' ').trim().slice(0, 500);
      if (m.getAttribute('aria-label') !== label) m.setAttribute('aria-label', label);
    });
  }

  // The progress line's seconds tick between server updates (which carry the elapsed time).
  let started = null;
  function tick() {
    const phase = document.querySelector('#chatbot .phase');
    if (!phase) { started = null; return; }
    const reported = parseFloat(phase.getAttribute('data-elapsed') || '0');
    if (started === null || (Date.now() - started) / 1000 < reported) started = Date.now() - reported * 1000;
    const el = phase.querySelector('.elapsed');
    const text = Math.floor((Date.now() - started) / 1000) + ' s';
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Gradio's date fields have a visual label only and an unnamed calendar button.
  function labelDateFields() {
    document.querySelectorAll('#since, #until').forEach(function (block) {
      const name = block.id === 'since' ? 'Published from' : 'Published until';
      const input = block.querySelector('input');
      if (input && input.getAttribute('aria-label') !== name) input.setAttribute('aria-label', name + ' (YYYY-MM-DD)');
      const button = block.querySelector('button.calendar');
      if (button && !button.getAttribute('aria-label')) button.setAttribute('aria-label', 'Pick the ' + name.toLowerCase() + ' date');
      const error = document.querySelector('#date-error .field-error');
      if (input) input.setAttribute('aria-invalid', error ? 'true' : 'false');
    });
  }

  let queued = false;
  new MutationObserver(function () {
    if (queued) return;
    queued = true;
    requestAnimationFrame(function () { queued = false; labelMessages(); labelDateFields(); });
  }).observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true,
                                         attributeFilter: ['aria-label']});
  setInterval(tick, 250);
})();
</script>
"""
