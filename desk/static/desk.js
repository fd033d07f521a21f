// The desk's live screen pop: Server-Sent Events name the thread, the server renders it (escaped).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const pop = document.getElementById("screen-pop");
  if (!pop || !window.EventSource) return;
  const after = pop.dataset.after;
  const source = new EventSource(pop.dataset.events + (after ? `?after=${encodeURIComponent(after)}` : ""));
  source.addEventListener("screen_pop", async (message) => {
    const event = JSON.parse(message.data);
    if (!event.thread_id) {
      pop.replaceChildren(Object.assign(document.createElement("h2"), {textContent: "A call without a thread"}));
      return;
    }
    const response = await fetch(`/desk/threads/${encodeURIComponent(event.thread_id)}/panel`,
                                 {credentials: "same-origin"});
    if (!response.ok) return;
    // The fragment is rendered by the server with every field escaped; the page's CSP runs no inline script.
    pop.innerHTML = await response.text();
    pop.dataset.thread = event.thread_id;
    pop.focus();
  });
});
