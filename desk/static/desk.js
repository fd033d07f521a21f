// The desk's live screen pop: Server-Sent Events name the thread, the server renders it (escaped).
"use strict";

// A stream refused (the server briefly without Redis answers 503) is not retried by the browser: we retry it,
// waiting longer each time up to a minute, from the last event seen so nothing is missed.
const FIRST_WAIT_MS = 5000;
const LONGEST_WAIT_MS = 60000;

document.addEventListener("DOMContentLoaded", () => {
  const pop = document.getElementById("screen-pop");
  if (!pop || !window.EventSource) return;
  let after = pop.dataset.after;
  let wait = FIRST_WAIT_MS;

  const show = async (message) => {
    if (message.lastEventId) after = message.lastEventId;
    const event = JSON.parse(message.data);
    if (!event.thread_id) {
      pop.replaceChildren(Object.assign(document.createElement("h2"), {textContent: "A call without a thread"}));
      return;
    }
    const response = await fetch(`/desk/threads/${encodeURIComponent(event.thread_id)}/panel`,
                                 {credentials: "same-origin"});
    if (!response.ok) return;
    // The fragment is rendered by the server with every field escaped; the page's CSP runs no inline script.
    pop.dataset.agentCall = event.agent_call_sid || "";  // phone.js shows this call's state in the thread
    pop.innerHTML = await response.text();
    pop.dataset.thread = event.thread_id;
    pop.focus();
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
