// The job page, live: each history entry the server streams (Server-Sent Events fed by WatchJob) is added
// to the timeline, and the state badge, the fields and the diagram's highlight follow it, without a reload.
// Text goes in through textContent only, never as markup. EventSource reconnects by itself and sends the
// last entry's seq as Last-Event-ID, so the server resumes right after it.
"use strict";

(function () {
  const root = document.getElementById("job");
  // A page of older entries has no event stream: only the newest entries follow the job.
  if (!root || !root.dataset.events || !window.EventSource) return;
  let seq = Number(root.dataset.seq);
  const live = document.getElementById("live");

  function setStatus(status, text) {
    live.dataset.status = status;
    live.textContent = text;
  }

  function badge(state) {
    const span = document.createElement("span");
    span.className = "badge state-" + state;
    span.textContent = state;
    return span;
  }

  function setStateClass(element, state) {
    for (const name of Array.from(element.classList)) {
      if (name.startsWith("state-")) element.classList.remove(name);
    }
    element.classList.add("state-" + state);
  }

  function addToTimeline(entry) {
    const item = document.createElement("li");
    item.className = "entry fresh";
    item.dataset.seq = String(entry.seq);
    const parts = [
      ["when mono small", entry.timestamp.replace("T", " ")],
      ["seq mono", "#" + entry.seq],
      ["event", entry.event],
    ];
    for (const [className, text] of parts) {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      item.appendChild(span);
    }
    const transition = document.createElement("span");
    transition.className = "transition";
    if (entry.from_state) {
      transition.appendChild(badge(entry.from_state));
      transition.appendChild(document.createTextNode(" → "));
    }
    transition.appendChild(badge(entry.to_state));
    item.appendChild(transition);
    const source = document.createElement("span");
    source.className = "source muted small";
    source.textContent = entry.source;
    item.appendChild(source);
    if (entry.data && Object.keys(entry.data).length) {
      const data = document.createElement("pre");
      data.className = "data";
      data.textContent = JSON.stringify(entry.data);
      item.appendChild(data);
    }
    const timeline = document.getElementById("timeline");
    timeline.insertBefore(item, timeline.firstChild);  // newest first
  }

  function updateDiagram(entry) {
    const svg = document.getElementById("fsm");
    if (!svg) return;
    for (const edge of svg.querySelectorAll("g.edge, g.label")) {  // a line and its label apart
      const events = edge.dataset.events.split(" ");
      if (edge.dataset.source === (entry.from_state || "") && edge.dataset.target === entry.to_state &&
          events.includes(entry.event)) {
        edge.classList.add("taken");
      }
    }
    for (const loop of svg.querySelectorAll("g.edge.loop")) {
      loop.classList.toggle("here", loop.dataset.source === entry.to_state);
    }
    for (const node of svg.querySelectorAll("g.node")) {
      const here = node.dataset.state === entry.to_state;
      node.classList.toggle("current", here);
      if (here) node.classList.add("visited");
    }
    const swatch = document.getElementById("legend-current");
    if (swatch) setStateClass(swatch, entry.to_state);
  }

  function updatePath(state) {
    const path = document.getElementById("path");
    const badges = path.querySelectorAll(".badge");
    if (badges.length && badges[badges.length - 1].textContent === state) return;
    if (badges.length) {
      const arrow = document.createElement("span");
      arrow.className = "arrow";
      arrow.textContent = "→";
      path.appendChild(arrow);
    }
    path.appendChild(badge(state));
  }

  function apply(entry) {
    if (entry.seq <= seq) return;  // already shown (a reconnect overlapping what the page had)
    seq = entry.seq;
    root.dataset.seq = String(seq);
    const state = document.getElementById("job-state");
    state.textContent = entry.to_state;
    setStateClass(state, entry.to_state);
    document.getElementById("job-seq").textContent = String(entry.seq);
    document.getElementById("job-last-event").textContent = entry.event;
    document.getElementById("job-updated").textContent = entry.timestamp.replace("T", " ");
    document.getElementById("job-head").textContent = entry.hash;
    addToTimeline(entry);
    updateDiagram(entry);
    updatePath(entry.to_state);
  }

  const source = new EventSource(root.dataset.events + "?after=" + seq);
  source.addEventListener("open", () => setStatus("live", "live"));
  source.addEventListener("error", () => {
    // CLOSED: the server refused the stream (signed out, job deleted); CONNECTING: it retries by itself.
    if (source.readyState === EventSource.CLOSED) setStatus("closed", "not live: reload the page");
    else setStatus("reconnecting", "reconnecting…");
  });
  source.addEventListener("entry", (message) => apply(JSON.parse(message.data)));
  source.addEventListener("failure", (message) => {
    const failure = JSON.parse(message.data);
    setStatus("reconnecting", "interrupted: " + failure.reason);
  });
})();
