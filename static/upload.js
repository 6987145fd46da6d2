// Progressive enhancement for evidence uploads. Without JavaScript the form posts as usual; with
// it, chosen files are listed with their sizes, files can also be dropped onto the file field,
// and while the form is sent each file shows its own progress bar.
(function () {
  "use strict";

  function humanSize(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB"];
    var value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? bytes + " bytes" : value.toFixed(1).replace(/\.0$/, "") + " " + units[unit];
  }

  function enhance(form) {
    var input = form.querySelector('input[type="file"]');
    if (!input || !window.FormData || !window.XMLHttpRequest) { return; }
    var field = input.closest(".field") || input.parentNode;
    var list = document.createElement("ul");
    list.className = "upload-list";
    list.setAttribute("aria-live", "polite");
    field.appendChild(list);
    var status = document.createElement("p");
    status.className = "upload-status";
    status.setAttribute("role", "status");
    form.appendChild(status);

    function files() { return Array.prototype.slice.call(input.files || []); }

    function showFiles() {
      list.innerHTML = "";
      files().forEach(function (file) {
        var item = document.createElement("li");
        var name = document.createElement("span");
        name.className = "upload-name";
        name.textContent = file.name + " (" + humanSize(file.size) + ")";
        var bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.hidden = true;
        bar.setAttribute("aria-label", "Upload progress for " + file.name);
        item.appendChild(name);
        item.appendChild(bar);
        list.appendChild(item);
      });
    }
    input.addEventListener("change", showFiles);

    // Dropping files is an extra: the button always works.
    field.classList.add("drop-zone");
    var hint = document.createElement("p");
    hint.className = "hint drop-hint";
    hint.textContent = "You can also drag files here.";
    input.parentNode.insertBefore(hint, input.nextSibling);
    ["dragenter", "dragover"].forEach(function (type) {
      field.addEventListener(type, function (event) {
        event.preventDefault();
        field.classList.add("drop-zone-active");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      field.addEventListener(type, function () { field.classList.remove("drop-zone-active"); });
    });
    field.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length || !window.DataTransfer) { return; }
      var merged = new DataTransfer();
      files().concat(Array.prototype.slice.call(event.dataTransfer.files)).forEach(function (file) {
        merged.items.add(file);
      });
      input.files = merged.files;
      showFiles();
    });

    form.addEventListener("submit", function (event) {
      var chosen = files();
      if (!chosen.length) { return; } // nothing large to send: a plain post is fine
      event.preventDefault();
      var data = new FormData(form);
      // The button pressed decides draft or submit; FormData leaves it out.
      if (event.submitter && event.submitter.name) { data.append(event.submitter.name, event.submitter.value); }
      var bars = list.querySelectorAll("progress");
      var total = chosen.reduce(function (sum, file) { return sum + file.size; }, 0);
      Array.prototype.forEach.call(bars, function (bar) { bar.hidden = false; });
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
      status.textContent = "Uploading " + chosen.length + (chosen.length === 1 ? " file" : " files") + "…";

      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", function (progress) {
        // Files are sent in order: share the bytes sent out among them.
        var sent = progress.loaded * (total / (progress.total || total || 1));
        chosen.forEach(function (file, index) {
          var done = Math.max(0, Math.min(file.size, sent));
          if (bars[index]) { bars[index].value = file.size ? Math.round(100 * done / file.size) : 100; }
          sent -= file.size;
        });
      });
      request.addEventListener("load", function () {
        if (request.status < 400 && request.responseURL) {
          window.location.assign(request.responseURL);
          return;
        }
        // An error page (with its error summary): show it as the browser would have.
        document.open();
        document.write(request.responseText);
        document.close();
      });
      request.addEventListener("error", function () {
        status.textContent = "The upload was interrupted and nothing was saved. Check your connection and try again.";
        Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = false; });
      });
      request.send(data);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-upload]"), enhance);
})();
