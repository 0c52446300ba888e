"""The chat on a phone (issue #16): rules and script appended after ``rag.serve.chat_assets`` by
``rag.serve.web``. Below :data:`PHONE_MAX_WIDTH` the header shrinks, the conversation takes the
height the screen has left, so the question box and Ask sit on screen (and stay at its bottom
when the page scrolls), and the Sources column becomes a drawer: a citation opens it at its
card, "Back to answer" (or Escape) closes it and returns to the citation. Wider screens keep
the side column."""

from __future__ import annotations

# The chat and Sources columns (320 px minimum each, with Gradio's gaps and padding) stack
# below about this width: from there on the Sources column is a drawer.
PHONE_MAX_WIDTH = 700
_PHONE = f"(max-width: {PHONE_MAX_WIDTH}px)"

# Gradio prefixes the rules it is given inside an @media with its container's class, so rules
# for the page around it (html, the container itself) go in a <style> of the page's head.
_PAGE_CSS = f"""
<style>
@media {_PHONE} {{
  .gradio-container > .main {{ padding-left: 10px !important; padding-right: 10px !important; }}
  /* "clip" instead of Gradio's "hidden": it still cuts sideways overflow, but is no scroll box,
     so the sticky question row sticks to the screen rather than to this container. */
  .gradio-container {{ overflow-x: clip !important; overflow-y: visible !important; }}
  html.drawer-lock, html.drawer-lock body {{ overflow: hidden; }}
}}
</style>
"""

CSS = f"""
@media (min-width: {PHONE_MAX_WIDTH + 1}px) {{ .phone-only {{ display: none !important; }} }}
@media {_PHONE} {{
  #intro h1 {{ font-size: 1.35rem; margin: 0 0 2px; }}
  #intro p {{ font-size: 0.85rem; line-height: 1.35; margin: 0; }}
  #status {{ font-size: 0.85rem; }}
  /* The page script sets --chat-fit to the height left above the question row. */
  #chatbot {{ height: var(--chat-fit, calc(100dvh - 320px)) !important; min-height: 180px; }}
  #ask-row {{ position: sticky; bottom: 0; z-index: 30; flex-wrap: nowrap !important; gap: 8px;
    background: var(--background-fill-primary); padding: 6px 0 calc(6px + env(safe-area-inset-bottom, 0px));
    box-shadow: 0 -1px 0 var(--border-color-primary); }}
  /* The question's box without Gradio's frame around it: one border, not two, on a small screen. */
  #ask-row #question {{ min-width: 0 !important; padding: 0; border: none; background: none; box-shadow: none; }}
  #ask-row button {{ flex: 0 0 auto !important; min-width: 68px !important; }}
  /* One of Ask and Stop at a time: the other is disabled anyway, and the question gets the room. */
  #ask-row:has(#stop:enabled) #send:disabled, #ask-row #stop:disabled {{ display: none; }}
  #sources-open {{ align-self: flex-end; width: auto; margin-bottom: -8px; padding: 4px 14px; }}
  #sources-open[hidden] {{ display: none !important; }}

  /* The Sources drawer: not displayed until opened (so out of the tab order, the accessibility
     tree and axe's view), then sliding in. Not "visibility" with a transition: Gradio's buttons
     inside would animate their own, staying unfocusable for that moment. */
  #sources-column {{ display: none !important; position: fixed !important; inset: 0; z-index: 1000; margin: 0 !important;
    min-width: 0 !important; padding: 0 12px 24px; overflow-y: auto; overscroll-behavior: contain; flex-wrap: nowrap;
    background: var(--background-fill-primary); }}
  #sources-column.drawer-open {{ display: flex !important; animation: sources-drawer-in 0.2s ease-out; }}
  #sources-back {{ position: sticky; top: 0; z-index: 2; align-self: stretch; justify-content: flex-start;
    font-size: 1rem; padding: 10px 12px; margin-top: 10px;
    box-shadow: 0 0 0 10px var(--background-fill-primary); }}  /* a backdrop: the cards scroll under it */
  #sources-back::before {{ content: "\\2190" / ""; margin-right: 8px; }}
  #sources {{ max-height: none; overflow: visible; }}
}}
/* At the top level: Gradio keeps no @keyframes from inside an @media. */
@keyframes sources-drawer-in {{ from {{ transform: translateX(100%); }} to {{ transform: none; }} }}
@media {_PHONE} and (prefers-reduced-motion: reduce) {{
  #sources-column.drawer-open {{ animation: none; }}
}}
"""

HEAD = _PAGE_CSS + """
<script>
(function () {
  const PHONE = window.matchMedia('%(phone)s');
  const FOCUSABLE = 'button, [href], summary, input, select, textarea, [tabindex]:not([tabindex="-1"])';
  let back = null;  // where "Back to answer" returns: the element that opened the drawer
  let backRef = null;  // and, for a citation, how to find it again if Gradio re-rendered it
  const drawer = () => document.getElementById('sources-column');
  const opener = () => document.getElementById('sources-open');
  const isOpen = () => { const d = drawer(); return !!d && d.classList.contains('drawer-open'); };
  const shown = (el) => el.getClientRects().length > 0;

  // A dialog on a phone, an ordinary column on wider screens.
  function roles() {
    const d = drawer(), o = opener();
    if (d && PHONE.matches) {
      d.setAttribute('role', 'dialog'); d.setAttribute('aria-modal', 'true'); d.setAttribute('aria-labelledby', 'sources-title');
    } else if (d) {
      ['role', 'aria-modal', 'aria-labelledby'].forEach(function (a) { d.removeAttribute(a); });
    }
    if (o) {
      o.setAttribute('aria-controls', 'sources-column'); o.setAttribute('aria-haspopup', 'dialog');
      o.setAttribute('aria-expanded', String(isOpen()));
    }
  }

  function open(from) {
    const d = drawer();
    if (!d || !PHONE.matches) return false;
    if (!isOpen()) {
      back = from;
      const cite = from && from.closest && from.closest('a.cite');
      backRef = cite ? [cite.getAttribute('href'), Array.from(document.querySelectorAll('#chatbot a.cite')).indexOf(cite)] : null;
    }
    d.classList.add('drawer-open');
    document.documentElement.classList.add('drawer-lock');
    roles();
    return true;
  }

  function close() {
    const d = drawer();
    if (!d || !isOpen()) return;
    d.classList.remove('drawer-open');
    document.documentElement.classList.remove('drawer-lock');
    roles();
    let target = back;
    if (target && !target.isConnected && backRef) {  // the message was re-rendered: the same citation, found again
      const all = Array.from(document.querySelectorAll('#chatbot a.cite'));
      target = all[backRef[1]] && all[backRef[1]].getAttribute('href') === backRef[0] ? all[backRef[1]]
        : document.querySelector('#chatbot a.cite[href="' + backRef[0] + '"]');
    }
    back = backRef = null;
    if (!target || !target.isConnected) target = document.querySelector('#question textarea');
    if (!target) return;
    target.focus({preventScroll: true});
    target.scrollIntoView({block: 'nearest'});
  }

  document.addEventListener('rag:show-source', function (e) { open(e.detail.link); });
  document.addEventListener('click', function (e) {
    const t = e.target.closest && e.target.closest('#sources-open, #sources-back');
    if (!t) return;
    if (t.id === 'sources-back') { close(); return; }
    if (open(t)) { const b = document.getElementById('sources-back'); if (b) b.focus(); }
  });
  document.addEventListener('keydown', function (e) {
    if (!isOpen()) return;
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); return; }
    if (e.key !== 'Tab') return;
    // aria-modal: Tab cycles inside the drawer.
    const items = Array.from(drawer().querySelectorAll(FOCUSABLE)).filter(function (el) { return !el.disabled && shown(el); });
    if (!items.length) return;
    const first = items[0], last = items[items.length - 1];
    const inside = drawer().contains(document.activeElement);
    if (e.shiftKey && (document.activeElement === first || !inside)) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && (document.activeElement === last || !inside)) { e.preventDefault(); first.focus(); }
  }, true);

  // "Sources (n)": the passages the newest answer cites; hidden before the first answer.
  function label() {
    const o = opener();
    if (!o) return;
    const turn = document.querySelector('#sources section.turn');
    o.hidden = !turn;
    const text = turn ? 'Sources (' + turn.querySelectorAll('details.src.cited').length + ')' : 'Sources';
    if (o.textContent.trim() !== text) o.textContent = text;
  }

  // The conversation takes the height left between its top and the question row's bottom.
  function fit() {
    const chat = document.getElementById('chatbot');
    if (!PHONE.matches || !chat || !shown(chat)) return;
    const gap = parseFloat(getComputedStyle(chat.parentElement).rowGap) || 0;
    let below = 0;
    ['filter-chips', 'sources-open', 'ask-row'].forEach(function (id) {
      const el = document.getElementById(id);
      if (el && shown(el)) below += el.getBoundingClientRect().height + gap;
    });
    const top = chat.getBoundingClientRect().top + window.scrollY;
    const height = Math.max(180, Math.floor(window.innerHeight - top - below - 4));
    const root = document.documentElement;
    if (Math.abs((parseFloat(root.style.getPropertyValue('--chat-fit')) || 0) - height) > 2) {
      root.style.setProperty('--chat-fit', height + 'px');
    }
  }

  function update() { roles(); label(); fit(); }
  PHONE.addEventListener('change', function () { if (!PHONE.matches) close(); update(); });
  window.addEventListener('resize', fit);
  document.addEventListener('click', function () { requestAnimationFrame(fit); });  // tab switches
  let queued = false;
  new MutationObserver(function () {
    if (queued) return;
    queued = true;
    requestAnimationFrame(function () { queued = false; update(); });
  }).observe(document.documentElement, {subtree: true, childList: true});
})();
</script>
""" % {"phone": _PHONE}
