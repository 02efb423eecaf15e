// The activity page, live: each entry of the event feed (Server-Sent Events fed by WatchEvents) is added
// at the top of the table. Text goes in through textContent only, never as markup. EventSource reconnects
// by itself and sends the last entry's (or bookmark's) cursor as Last-Event-ID: the server resumes there.
"use strict";

(function () {
  const table = document.getElementById("activity");
  if (!table || !window.EventSource) return;
  const rows = document.getElementById("activity-rows");
  const empty = document.getElementById("activity-empty");
  const live = document.getElementById("live");
  const base = table.dataset.events.split("/activity/events")[0];
  const MAX_ROWS = 500;

  function setStatus(status, text) {
    live.dataset.status = status;
    live.textContent = text;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text === null || text === undefined ? "-" : String(text);
    return td;
  }

  function add(entry) {
    const tr = document.createElement("tr");
    tr.className = "activity-entry";
    tr.dataset.job = entry.job_uuid;
    tr.dataset.seq = entry.seq;
    tr.dataset.event = entry.event;
    tr.appendChild(cell(entry.feed_time));
    const job = document.createElement("td");
    const link = document.createElement("a");
    link.href = base + "/jobs/" + encodeURIComponent(entry.job_uuid);
    link.textContent = entry.job_uuid.slice(0, 8);
    job.appendChild(link);
    tr.appendChild(job);
    tr.appendChild(cell(entry.seq));
    tr.appendChild(cell(entry.event));
    tr.appendChild(cell(entry.from_state));
    const to = cell(entry.to_state);
    if (entry.to_state) {
      const badge = document.createElement("span");
      badge.className = "badge state-" + entry.to_state;
      badge.textContent = entry.to_state;
      to.textContent = "";
      to.appendChild(badge);
    }
    tr.appendChild(to);
    tr.appendChild(cell(entry.source));
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
    empty.hidden = true;
  }

  const source = new EventSource(table.dataset.events);
  source.addEventListener("open", () => setStatus("live", "live"));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) setStatus("closed", "not live: reload the page");
    else setStatus("reconnecting", "reconnecting…");
  });
  source.addEventListener("entry", (message) => add(JSON.parse(message.data)));
  source.addEventListener("failure", (message) => {
    setStatus("reconnecting", "interrupted: " + JSON.parse(message.data).reason);
  });
})();
