"use strict";
// The coder's form: tasks come as JSON data and are shown with textContent only (never as
// markup); the answers are saved as CSV through a Blob download. No network, no storage.
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const main = document.getElementById("tasks");
  const chosen = new Map();

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function progress() {
    document.getElementById("progress").textContent =
      chosen.size + " / " + data.tasks.length + " 已答 answered";
  }

  document.getElementById("coder").textContent = data.coder;
  data.tasks.forEach(function (task, index) {
    const box = element("fieldset", "task");
    box.id = "task-" + task.task_id;
    box.dataset.taskId = task.task_id;
    box.appendChild(element("legend", "", (index + 1) + ". " + task.question));
    if (task.title) box.appendChild(element("p", "title", task.title));
    if (task.text) box.appendChild(element("p", "text", task.text));
    task.options.forEach(function (option, i) {
      const label = element("label");
      const input = element("input");
      input.type = "radio";
      input.name = task.task_id;
      input.value = String(i + 1);
      input.addEventListener("change", function () {
        chosen.set(task.task_id, input.value);
        box.classList.add("answered");
        progress();
      });
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + (i + 1) + ". " + option));
      box.appendChild(label);
    });
    main.appendChild(box);
  });
  progress();

  function field(value) {
    const text = String(value);
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  document.getElementById("save").addEventListener("click", function () {
    const lines = ["coder,task_id,answer"];
    data.tasks.forEach(function (task) {
      lines.push([data.coder, task.task_id, chosen.get(task.task_id) || ""].map(field).join(","));
    });
    const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    const link = element("a");
    link.href = URL.createObjectURL(blob);
    link.download = "answers_" + data.coder + ".csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    const left = data.tasks.length - chosen.size;
    document.getElementById("status").textContent = left
      ? "已保存;还有 " + left + " 题未答 saved; " + left + " task(s) unanswered"
      : "已保存 saved";
  });
})();
