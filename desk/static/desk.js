// The desk's live screen pop: Server-Sent Events name the thread, the server renders it (escaped, in words).
"use strict";

// A stream refused (the server briefly without Redis answers 503) is not retried by the browser: we retry it,
// waiting longer each time up to a minute, from the last event seen so nothing is missed.
const FIRST_WAIT_MS = 5000;
const LONGEST_WAIT_MS = 60000;
// While a call goes on, how often the page asks whether it ended, to open the outcome form.
const CALL_CHECK_MS = 2000;

// The outcome form appears once the call has ended: the server renders it when the call's record says so. Until
// then the page asks again, and then shows the thread as the call left it (its state, its timeline, the form); the
// softphone may say the call ended at once with a "desk:call-ended" event on the document.
const watchCallEnd = () => {
  const pending = document.querySelector('#after-call[data-state="live"]');
  const briefing = pending && pending.closest(".briefing");
  if (!briefing) return;
  const check = async () => {
    if (!briefing.isConnected) return;  // another pop replaced this one
    const response = await fetch(pending.dataset.refresh, {credentials: "same-origin"}).catch(() => null);
    const fresh = response && response.ok
      ? new DOMParser().parseFromString(await response.text(), "text/html") : null;
    const after = fresh && fresh.getElementById("after-call");
    if (!after || after.dataset.state === "live") {
      setTimeout(check, CALL_CHECK_MS);
      return;
    }
    if (briefing.isConnected) briefing.replaceWith(document.adoptNode(after.closest(".briefing")));
  };
  document.addEventListener("desk:call-ended", check, {once: true});
  setTimeout(check, CALL_CHECK_MS);
};

document.addEventListener("DOMContentLoaded", () => {
  watchCallEnd();
  const pop = document.getElementById("screen-pop");
  if (!pop || !window.EventSource) return;
  const announce = document.getElementById("pop-announce");
  let after = pop.dataset.after;
  let wait = FIRST_WAIT_MS;

  const show = async (message) => {
    if (message.lastEventId) after = message.lastEventId;
    const event = JSON.parse(message.data);
    const call = encodeURIComponent(event.call_sid || "");
    const url = event.thread_id
      ? `/desk/threads/${encodeURIComponent(event.thread_id)}/panel?call=${call}`
      : `/desk/calls/${call}/panel`;
    const response = await fetch(url, {credentials: "same-origin"});
    if (!response.ok) return;
    // The fragment is rendered by the server with every field escaped; the page's CSP runs no inline script.
    pop.dataset.agentCall = event.agent_call_sid || "";  // phone.js shows this call's state in the thread
    pop.innerHTML = await response.text();
    pop.dataset.thread = event.thread_id || "";
    const briefing = pop.querySelector("[data-announce]");
    if (announce && briefing) announce.textContent = briefing.dataset.announce;
    pop.focus({preventScroll: true});  // read from its top: scrolled to only when it is out of sight
    const top = pop.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight / 2) pop.scrollIntoView({block: "start"});
    watchCallEnd();
  };

  const listen = () => {
    const source = new EventSource(pop.dataset.events + (after ? `?after=${encodeURIComponent(after)}` : ""));
    source.addEventListener("open", () => { wait = FIRST_WAIT_MS; });
    source.addEventListener("screen_pop", show);
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return;  // the browser reconnects by itself
      setTimeout(listen, wait);
      wait = Math.min(wait * 2, LONGEST_WAIT_MS);
    });
  };
  listen();
});
