/* Stepscope keyboard navigation: j / k move through the rows of a list, Enter opens the row.
 * Our own file, served from 'self' (the CSP allows no inline script). A list is any table
 * inside <main> whose body rows hold a link; the row's [data-open] link, else its first
 * link, is the one Enter follows. Rows replaced by an HTMX swap are found afresh each time. */
(function () {
  "use strict";
  var CURRENT = "kbd-current";

  function rows() {
    return Array.prototype.filter.call(
      document.querySelectorAll("main table tbody tr"),
      function (row) { return row.querySelector("a[href]") !== null; }
    );
  }

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function move(step) {
    var all = rows();
    if (all.length === 0) { return; }
    var index = all.findIndex(function (row) { return row.classList.contains(CURRENT); });
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1)
                         : Math.min(all.length - 1, Math.max(0, index + step));
    if (index >= 0) {
      all[index].classList.remove(CURRENT);
      all[index].removeAttribute("aria-selected");
    }
    all[next].classList.add(CURRENT);
    all[next].setAttribute("aria-selected", "true");
    all[next].scrollIntoView({ block: "nearest" });
  }

  function open() {
    var row = document.querySelector("main table tbody tr." + CURRENT);
    if (!row) { return false; }
    var link = row.querySelector("a[data-open]") || row.querySelector("a[href]");
    if (!link) { return false; }
    window.location.assign(link.href);
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) { return; }
    if (event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "Enter" && open()) { event.preventDefault(); }
  });
})();
