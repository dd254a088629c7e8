"use strict";
(function () {
  const data = JSON.parse(document.getElementById("labcheck-data").textContent);
  const tbody = document.querySelector("#matrix tbody");
  const panel = document.getElementById("details");

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function table(headers, rows) {
    const t = el("table");
    const head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", h)); });
    t.appendChild(head);
    rows.forEach(function (cells) {
      const tr = el("tr");
      cells.forEach(function (c) {
        const td = el("td");
        if (c instanceof Node) td.appendChild(c); else if (c) td.appendChild(el("pre", c));
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }

  function show(button) {
    const host = data.hosts[button.dataset.host];
    const stepId = button.dataset.step;
    const cell = host.cells[stepId];
    document.querySelectorAll(".cell.selected").forEach(function (b) { b.classList.remove("selected"); });
    button.classList.add("selected");
    const status = cell ? cell.status : "not-run";
    document.getElementById("d-title").textContent = data.steps[stepId] + " — " + button.dataset.host;
    const statusLine = document.getElementById("d-status");
    statusLine.replaceChildren(el("span", data.symbols[status], "sym s-" + status), document.createTextNode(" " + data.labels[status]));
    document.getElementById("d-when").textContent = cell
      ? "checked " + cell.checked + (cell.changed ? " · " + (cell.previous ? "was " + cell.previous + ", changed " : "since ") + cell.changed : "")
      : (host.reachable ? "no run has checked this step on this host yet" : "host unreachable: " + host.error);
    document.getElementById("d-reason").textContent = cell && cell.reason ? "why: " + cell.reason : "";
    const hint = document.getElementById("d-hint");
    hint.replaceChildren();
    if (cell && cell.hint) {
      const box = el("div", null, "hint");
      box.appendChild(el("strong", "hint: "));
      box.appendChild(el("code", cell.hint));
      hint.appendChild(box);
    }
    const checks = document.getElementById("d-checks");
    checks.replaceChildren();
    if (cell && cell.checks.length) {
      checks.appendChild(el("h3", "Checks"));
      checks.appendChild(table(["check", "", "expected", "actual", "reason"], cell.checks.map(function (c) {
        return [c.check + ": " + c.summary, el("span", c.passed ? "✔ ok" : "✘ failed", c.passed ? "ok" : "bad"),
                c.expected, c.actual, c.reason];
      })));
    }
    const actions = document.getElementById("d-actions");
    actions.replaceChildren();
    if (cell && cell.actions.length) {
      actions.appendChild(el("h3", "Actions"));
      actions.appendChild(table(["action", "", "output"], cell.actions.map(function (a) {
        return [a.description, el("span", a.ok ? "✔ ran" : "✘ failed", a.ok ? "ok" : "bad"),
                [a.error, a.output].filter(Boolean).join("\n")];
      })));
    }
    panel.hidden = false;
  }

  tbody.addEventListener("click", function (event) {
    const button = event.target.closest("button.cell");
    if (button) show(button);
  });
  document.getElementById("close").addEventListener("click", function () {
    panel.hidden = true;
    document.querySelectorAll(".cell.selected").forEach(function (b) { b.classList.remove("selected"); });
  });

  const rows = Array.prototype.slice.call(tbody.querySelectorAll("tr.host-row"));
  function progress(row) { return Number(row.dataset.done) / Math.max(1, Number(row.dataset.total)); }
  function byName(a, b) { return a.dataset.host.localeCompare(b.dataset.host, undefined, {numeric: true}); }
  function apply() {
    const sort = document.getElementById("sort").value;
    const sorted = rows.slice().sort(function (a, b) {
      if (sort === "progress-asc") return progress(a) - progress(b) || byName(a, b);
      if (sort === "progress-desc") return progress(b) - progress(a) || byName(a, b);
      return byName(a, b);
    });
    const onlyUnfinished = document.getElementById("unfinished").checked;
    let shown = 0;
    sorted.forEach(function (row) {
      const hide = onlyUnfinished && row.dataset.done === row.dataset.total;
      row.classList.toggle("hidden", hide);
      if (!hide) shown += 1;
      tbody.appendChild(row);
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " hosts shown";
  }
  document.getElementById("sort").addEventListener("change", apply);
  document.getElementById("unfinished").addEventListener("change", apply);
  apply();
})();
