"use strict";
(function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-filter]"));
  var findings = Array.prototype.slice.call(document.querySelectorAll("[data-finding]"));
  var controls = Array.prototype.slice.call(document.querySelectorAll("details.control"));
  var shown = document.getElementById("shown-count");
  function wanted(kind) {
    var set = {};
    boxes.forEach(function (box) {
      if (box.getAttribute("data-filter") === kind && box.checked) { set[box.value] = true; }
    });
    return set;
  }
  function apply() {
    var planes = wanted("plane"), severities = wanted("severity"), statuses = wanted("status");
    var visible = 0;
    findings.forEach(function (el) {
      var ok = planes[el.getAttribute("data-plane")] && severities[el.getAttribute("data-severity")] &&
        statuses[el.getAttribute("data-status")];
      el.hidden = !ok;
      if (ok) { visible += 1; }
    });
    controls.forEach(function (control) {
      control.hidden = control.querySelector("[data-finding]:not([hidden])") === null;
    });
    if (shown) { shown.textContent = String(visible); }
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  apply();
})();
